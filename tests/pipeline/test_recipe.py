from pathlib import Path

import pytest
import torch

from netpress import Context
from netpress.encode.artifact import decode_artifact, model_from_artifact
from netpress.errors import ConfigError
from netpress.pipeline import load_recipe, parse_recipe, run_recipe
from netpress.techniques.cluster import WeightShare
from netpress.zoo import build_model

ROOT = Path(__file__).resolve().parents[2]

TINY = """\
name: tiny
stages:
  - _type: MagnitudePrune
    sparsity: 0.8
    scope: layer
  - _type: WeightShare
    bits: 3
    bias_bits: 3
    finetune_epochs: 1
    lr: 0.001
artifact:
  coder: huffman
"""


def test_shipped_recipe_is_valid():
    r = load_recipe(ROOT / "recipes" / "deep-compression.yaml")
    assert r.name == "deep-compression" and r.coder == "auto"
    assert [type(s).__name__ for s in r.stages] == ["GradualPrune", "WeightShare"]
    assert r.lines == (12, 18)


@pytest.mark.parametrize("text, expected", [
    ("stages:\n  - _type: WeightShare\n    bits: 4\n    colour: red\n",
     "line 4 (stage 1): unknown key 'colour' for WeightShare"),
    ("stages:\n  - _type: WeightShare\n    init: kmeans\n", "line 3 (stage 1)"),
    ("stages:\n  - _type: MagnitudePrune\n    sparsity: 1.5\n",
     "line 3 (stage 1): sparsity must be between 0 and 1"),
    ("stages:\n  - _type: Nope\n", "line 2 (stage 1): unknown technique 'Nope'"),
    ("stagez: []\n", "line 1: unknown key 'stagez'"),
    ("stages: []\n", "non-empty list"),
    ("stages:\n  - _type: WeightShare\nartifact:\n  coder: zip\n",
     "line 4: artifact coder 'zip'"),
    ("stages: [}\n", "not valid YAML"),
    ("stages:\n  - _type: WeightShare\n    bits: four\n",
     "line 3 (stage 1).bits: expected an integer, got 'four'"),
    ("stages:\n  - _type: Finetune\n  - _type: Finetune\n    epochs: 0\n",
     "line 4 (stage 2): epochs must be >= 1"),
    ("stages:\n  - _type: StaticInt8\n", "line 2 (stage 1): StaticInt8 converts the model"),
    ("stages:\n  - _type: MagnitudePrune\n    sparsity: 0.5\n    check: 1.0\n",
     "line 4 (stage 1): check must be a mapping with one key, max_drop_pp"),
    ("stages:\n  - _type: MagnitudePrune\n    sparsity: 0.5\n    check: {max_drop_pp: -1}\n",
     "line 4 (stage 1): check max_drop_pp must be a number in [0, 100)"),
    ("stages:\n  - _type: LowRank\n    conv: svd\n", "line 3 (stage 1).conv: 'svd' is not one of"),
    ("stages:\n  - 5\n", "line 2 (stage 1): a technique config needs a '_type' key"),
    ("- _type: WeightShare\n", "a recipe is a mapping with a 'stages' list"),
    ("stages:\n  - _type: WeightShare\nartifact: ans\n", "'artifact' must be a mapping"),
    ("stages:\n  - _type: WeightShare\nartifact:\n  level: 9\n", "line 4: unknown artifact key 'level'"),
    ("stages:\n  - _type: GradualPrune\n    sparsity: 0.9\n    lr: true\n",
     "line 4 (stage 1).lr: expected a number, got True"),
])
def test_errors_name_the_key_and_line(text, expected):
    with pytest.raises(ConfigError) as e:
        parse_recipe(text, "r.yaml")
    assert str(e.value).startswith("r.yaml") and expected in str(e.value)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(ConfigError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_run_recipe_end_to_end_is_deterministic(digits):
    recipe = parse_recipe(TINY)
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model("lenet-300-100")
        result = run_recipe(model, recipe, Context(digits, batch_size=64, threads=1), "lenet-300-100")
        outs.append(result)
    a, b = outs
    assert a.artifact == b.artifact  # same seed, same bytes
    assert [s.technique for s in a.stages] == ["MagnitudePrune", "WeightShare"]
    header, state = decode_artifact(a.artifact)
    assert header["recipe"]["stages"][1] == WeightShare(bits=3, bias_bits=3, finetune_epochs=1,
                                                        lr=0.001).to_dict()
    assert header["metrics"]["test_accuracy"] == a.test_accuracy
    w = state["1.weight"]
    assert abs(float((w == 0).float().mean()) - 0.8) < 1e-3
    assert w[w != 0].unique().numel() <= 8
    loaded = model_from_artifact(header, state)
    x = digits.test[0]
    with torch.no_grad():
        assert torch.equal(loaded(x), a.model(x))
