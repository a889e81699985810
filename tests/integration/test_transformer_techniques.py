"""Every recipe technique on a tiny random BERT sentence encoder, through the runner:
each stage is applied with the embedding task, baked, saved as a checkpoint, rebuilt, and
the artifact reloads with the same outputs (no download; tiny model, a few texts)."""

import pytest
import torch

from netpress.context import Context
from netpress.encode.artifact import decode_artifact, model_from_artifact
from netpress.pipeline.recipe import parse_recipe
from netpress.pipeline.runner import run_recipe
from netpress.tasks.build import TextOptions, load_task
from netpress.zoo import build_model

STAGES = {
    "magnitude": "{_type: MagnitudePrune, sparsity: 0.5}",
    "agp": "{_type: GradualPrune, sparsity: 0.5, epochs: 1, frequency: 2}",
    "nm": "{_type: NMSparsity, n: 2, m: 4}",
    "heads-ffn": "{_type: TransformerPrune, heads: 0.25, ffn: 0.5, batches: 1}",
    "w4-gptq": "{_type: WeightOnly, bits: 4, group_size: 16, method: gptq}",
    "w8-rtn": "{_type: WeightOnly, bits: 8, group_size: 0, method: rtn}",
    "qat": "{_type: WeightOnly, bits: 4, group_size: 16, method: rtn}, {_type: Qat, epochs: 1}",
    "lowrank": "{_type: LowRank, energy: 0.9}",
    "kmeans": "{_type: WeightShare, bits: 4, finetune_epochs: 1}",
    "student": "{_type: Distill, drop: ['1'], width: 1.0, alpha: 0.0, epochs: 1}",
    "finetune": "{_type: MagnitudePrune, sparsity: 0.3}, {_type: Finetune, epochs: 1}",
}


@pytest.fixture(scope="module")
def encoder(tiny_text_models):
    spec = tiny_text_models["enc"]
    model = build_model(spec)
    task = load_task(spec, tiny_text_models["text"], model, text=TextOptions(max_length=12))
    return spec, model, task


@pytest.mark.parametrize("name", sorted(STAGES))
def test_technique_runs_and_its_artifact_reloads(encoder, name):
    spec, model, task = encoder
    recipe = parse_recipe(f"name: {name}\nstages: [{STAGES[name]}]")
    run = run_recipe(model, recipe, Context(task, seed=0, batch_size=16), spec)
    assert 0.0 < run.stages[-1].val_accuracy <= 1.0 + 1e-6  # the cosine to the reference
    header, state = decode_artifact(run.artifact)
    loaded = model_from_artifact(header, state)
    assert torch.allclose(task.predict(loaded, "test")[0], task.predict(run.model, "test")[0],
                          atol=1e-5)


def test_hidden_state_distillation_into_a_layer_dropped_student(encoder):
    """FitNets hints between transformer layers: (N, T, D) hidden states, tuple outputs."""
    spec, model, task = encoder
    recipe = parse_recipe("stages: [{_type: Distill, drop: ['1'], width: 1.0, alpha: 0.5, "
                          "epochs: 1, hints: ['model.encoder.layer.0=model.encoder.layer.1']}]")
    run = run_recipe(model, recipe, Context(task, seed=0, batch_size=16), spec)
    from netpress.techniques.prune.heads import attention_blocks

    assert len(attention_blocks(run.model)) == 1
    assert 0.0 < run.stages[-1].val_accuracy <= 1.0
