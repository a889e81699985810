"""Layer-dropping students of transformers: the layers to drop chosen on validation data."""

import copy
import itertools

import pytest

from netpress.config import apply
from netpress.context import Context
from netpress.errors import ConfigError
from netpress.tasks.build import TextOptions, load_task
from netpress.techniques.distill import Distill
from netpress.techniques.distill.distill import choose_layers_to_drop, drop_transformer_layers
from netpress.techniques.prune.heads import attention_blocks
from netpress.zoo import build_model


@pytest.fixture(scope="module")
def encoder4(make_tiny_hf, tiny_text_models):
    spec = make_tiny_hf("encoder", 4)
    model = build_model(spec)
    task = load_task(spec, tiny_text_models["text"], model, text=TextOptions(max_length=12))
    return model, task


def test_drop_count_picks_the_cheapest_layers_on_validation(encoder4):
    model, task = encoder4
    ctx = Context(task, seed=0)
    chosen = choose_layers_to_drop(model, 2, ctx)
    scores = {c: task.score(drop_transformer_layers(copy.deepcopy(model), tuple(map(str, c))), "val")
              for c in itertools.combinations(range(4), 2)}
    assert tuple(map(int, chosen)) == max(scores, key=scores.get)
    with pytest.raises(ConfigError, match="must keep one"):
        choose_layers_to_drop(model, 4, ctx)


def test_distill_with_drop_count_trains_and_improves(encoder4):
    model, task = encoder4
    ctx = Context(task, seed=0, batch_size=16)
    cfg = Distill(width=1.0, alpha=0.0, drop_count=2, epochs=3, lr=3e-3)
    untrained = drop_transformer_layers(copy.deepcopy(model),
                                        choose_layers_to_drop(model, 2, ctx))
    student = apply(copy.deepcopy(model), cfg, ctx)
    assert len(attention_blocks(student)) == 2
    assert task.score(student, "train") > task.score(untrained, "train")
    with pytest.raises(ConfigError, match="either drop or drop_count"):
        Distill(drop=("1",), drop_count=1)
