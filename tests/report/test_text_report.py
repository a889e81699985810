"""Reports and the gate for text tasks: the task's score name instead of top-1 accuracy,
text robustness rows, no crash on missing image-only keys, a bounded sensitivity note."""

from __future__ import annotations

import json

import pytest

from netpress.errors import FormatError
from netpress.evaluate.behaviour_table import behaviour_table as rich_behaviour_table
from netpress.evaluate.gate import check_budgets
from netpress.pipeline.run_files import _spread
from netpress.report.tables import behaviour_table, stages_table, summary_table
from netpress.report.write import write_report

LM_BEHAVIOUR = {
    "split": "test", "examples": 40, "score_name": "token_accuracy", "accuracy": 0.31,
    "baseline_accuracy": 0.32, "accuracy_drop_pp": 1.0, "next_token_agreement": 0.9,
    "mean_abs_logprob_change": 0.05, "seed": 0,
    "token_dropout": [{"rate": 0.1, "accuracy": 0.2, "baseline_accuracy": 0.21}],
    "token_swap": [{"rate": 0.1, "accuracy": 0.3, "baseline_accuracy": 0.3}],
    "fgsm_embedding": [{"eps": 0.02, "accuracy": 0.29, "baseline_accuracy": 0.3}],
}
LM_RECORD = {
    "model": "hf:lm", "task": "causal-lm", "score_name": "token_accuracy", "data": "text:x",
    "accuracy": 0.31, "baseline_accuracy": 0.32, "accuracy_drop_pp": 1.0, "size_bytes": 100,
    "baseline_size_bytes": 800, "compression_ratio": 8.0, "next_token_agreement": 0.9,
    "metrics": {"perplexity": 120.5, "token_accuracy": 0.31},
    "baseline_metrics": {"perplexity": 110.0}, "threads": 2,
    "latency_ms": {"batch1_p50": 1.0, "batch1_p95": 1.2, "batchN_p50": 9.0, "batch_n": 40},
    "baseline_latency_ms": {"batch1_p50": 1.0, "batch1_p95": 1.2, "batchN_p50": 9.0, "batch_n": 40},
}


def test_tables_name_the_score_and_show_text_robustness():
    rows = summary_table(LM_RECORD)[1]
    labels = [r[0] for r in rows]
    assert "test next-token accuracy" in labels and "next-token accuracy drop" in labels
    assert ["test perplexity", "120.50", "110.00"] in rows
    assert ["next-token agreement with baseline", "90.00%", ""] in rows
    b = [r[0] for r in behaviour_table(LM_BEHAVIOUR)[1]]
    assert b[0] == "test next-token accuracy"
    assert {"token dropout rate=0.1", "token swaps rate=0.1", "embedding FGSM eps=0.02"} <= set(b)
    assert not any(x.startswith(("Gaussian", "expected calibration")) for x in b)
    assert stages_table([], 0.32, "token_accuracy")[0][3] == "val next-token accuracy after"
    assert stages_table([], 0.9)[0][3] == "val accuracy after"  # images as before
    cos = summary_table({"score_name": "cosine", "accuracy": 0.98765})[1][2]
    assert cos == ["test cosine to reference", "0.9877", "–"]
    assert rich_behaviour_table(LM_BEHAVIOUR).row_count == 5  # score, 3 perturbations, agreement


def test_gate_names_the_score_and_refuses_class_drop_without_classes():
    [check] = check_budgets(LM_RECORD, max_acc_drop=2)
    assert check.passed and check.text.startswith("PASS  next-token accuracy drop: 1.00 pp")
    [check] = check_budgets({"accuracy_drop_pp": 0.3}, max_acc_drop=0.5)
    assert check.text.startswith("PASS  accuracy drop")  # images as before
    with pytest.raises(FormatError, match="causal-lm model has no classes"):
        check_budgets({**LM_RECORD, "behaviour": LM_BEHAVIOUR}, max_class_drop=1)


def test_report_of_a_text_run_renders(tmp_path):
    run = {"kind": "compress", "model": "hf:lm", "data": "text:x", "task": "causal-lm",
           "score_name": "token_accuracy", "seed": 0, "threads": 2, "status": "done",
           "baseline_val_accuracy": 0.3,
           "stages": [{"technique": "WeightShare", "seconds": 1.0, "val_accuracy": 0.29}]}
    sens = {"kind": "unstructured", "sparsities": [0.0, 0.5], "baseline": 0.3,
            "layers": {"a": [0.3, 0.2]}, "sizes": {"a": 10},
            "sampled": {"layers_total": 9, "layers_swept": 1}, "note": "bounded sweep: 1 of 9"}
    for name, obj in (("run.json", run), ("record.json", LM_RECORD),
                      ("behaviour.json", LM_BEHAVIOUR), ("sensitivity.json", sens)):
        (tmp_path / name).write_text(json.dumps(obj))
    paths = write_report(tmp_path)
    md = paths["markdown"].read_text()
    assert "test next-token accuracy" in md and "Robustness (test next-token accuracy)" in md
    html = paths["html"].read_text()
    assert "val next-token accuracy after" in html and "bounded sweep: 1 of 9" in html
    rep = json.loads(paths["json"].read_text())
    assert rep["score_name"] == "token_accuracy" and "sensitivity" in rep["plots"]


def test_spread_keeps_first_and_last():
    assert _spread(list("abcdefghij"), 3) == ["a", "e", "j"]
    assert _spread(list("ab"), 6) == ["a", "b"]
