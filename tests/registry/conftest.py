"""Run folders as `netpress compress` leaves them, small enough to register in a second."""

import json

import pytest
import torch

from netpress.encode.artifact import artifact_bytes
from netpress.io import save_weights, write_json
from netpress.report.card import build_card, card_markdown
from netpress.report.data import RunData
from netpress.zoo import build_model

SPEC = "lenet5"


def make_run(root, seed: int, drop_pp: float, ratio: float):
    """A run folder: run.json, baseline weights, model.netpress, report.json, model card."""
    root.mkdir(parents=True)
    torch.manual_seed(seed)
    model = build_model(SPEC)
    save_weights(model, root / "base.safetensors")
    example = torch.zeros(1, 1, 28, 28)
    (root / "model.netpress").write_bytes(artifact_bytes(model, SPEC, example=example))
    (root / "baseline.netpress").write_bytes(artifact_bytes(model, SPEC, example=example))
    run = {"version": 1, "kind": "compress", "model": SPEC, "weights": str(root / "base.safetensors"),
           "data": "digits", "seed": seed, "status": "done",
           "recipe": {"name": f"r{seed}", "stages": [{"_type": "MagnitudePrune", "sparsity": 0.5}]}}
    report = {"model": SPEC, "accuracy": 0.9, "baseline_accuracy": 0.9 + drop_pp / 100,
              "accuracy_drop_pp": drop_pp, "compression_ratio": ratio, "size_bytes": 1000,
              "baseline_size_bytes": int(1000 * ratio), "latency_ms": {"batch1_p50": 0.1}}
    write_json(root / "run.json", run)
    write_json(root / "report.json", report)
    card = build_card(RunData(root, run, record=report))
    write_json(root / "model_card.json", card)
    (root / "model_card.md").write_text(card_markdown(card))
    return root


@pytest.fixture
def runs(tmp_path):
    return {"pass1": make_run(tmp_path / "r1", 1, 0.3, 12.0),
            "fail": make_run(tmp_path / "r2", 2, 2.5, 12.0),
            "pass3": make_run(tmp_path / "r3", 3, 0.1, 15.0)}


@pytest.fixture
def uri(tmp_path):
    return f"sqlite:///{tmp_path / 'reg' / 'mlflow.db'}"


def read_json(path):
    return json.loads(path.read_text())
