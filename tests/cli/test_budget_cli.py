"""What a user types first: targets and budgets with defaults, no --weights, no --out."""

import json

import pytest

from netpress.cli import main
from netpress.cli.prune import build_config
from netpress.recovery import RECOVERY
from netpress.targets import Targets
from netpress.techniques.prune import GradualPrune


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A baseline cache shared by the tests of this file (the first command fills it)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _cache_env(cache, monkeypatch):
    monkeypatch.setenv("NETPRESS_CACHE", str(cache))


def test_a_target_gets_the_measured_gradual_schedule():
    cfg = build_config("agp", 0.92, None, 2, 4, "l1", 1, None, RECOVERY["prune"].lr, 1.0, (),
                       Targets(), RECOVERY["prune"].self_distill, RECOVERY["prune"].temperature)
    assert isinstance(cfg, GradualPrune) and (cfg.epochs, cfg.patience) == (40, 8)
    assert (cfg.end_fraction, cfg.lr, cfg.self_distill, cfg.temperature) == (0.3, 1e-3, 0.7, 2.0)
    fixed = build_config("agp", 0.92, None, 2, 4, "l1", 1, 5, 1e-3, 1.0, (), Targets())
    assert (fixed.epochs, fixed.patience, fixed.end_fraction) == (5, 0, 0.75)


def test_target_without_weights_uses_the_cached_baseline(capsys, cache):
    code, stdout, err = run(capsys, "prune", "--model", "lenet-300-100", "--data", "digits",
                            "--sparsity", "0.9", "-e", "4", "--json")
    assert code == 0, err
    rec = json.loads(stdout)
    # no --weights: the zoo baseline was trained once and cached
    assert [p.name for p in cache.iterdir()] == ["lenet-300-100-digits-s0-e20.safetensors"]
    assert rec["weight_sparsity"] == pytest.approx(0.9, abs=1e-4)
    assert rec["config"]["_type"] == "GradualPrune" and rec["config"]["self_distill"] == 0.7
    assert rec["accuracy_drop_pp"] < 3.0


def test_budget_finds_a_sparsity_within_it(capsys):
    code, stdout, err = run(capsys, "prune", "--model", "lenet-300-100", "--data", "digits",
                            "--max-drop-pp", "1.0", "--json")
    assert code == 0, err
    rec = json.loads(stdout)
    b = rec["budget"]
    kept = [s for s in b["steps"] if s["within_budget"]]
    assert rec["method"] == "budget" and kept
    assert rec["weight_sparsity"] == pytest.approx(kept[-1]["sparsity"], abs=1e-4)
    assert rec["weight_sparsity"] >= 0.8  # digits' 300 val images: 1 pp is 3 images
    assert kept[-1]["val_score"] >= b["baseline_val_score"] - 0.01
    # the kept rung's final recovery never leaves it worse on validation
    assert b["final"]["epochs"] >= 1 and b["final"]["val_after"] >= b["final"]["val_before"]


def test_target_and_budget_together_is_an_error(capsys):
    code, _, err = run(capsys, "prune", "--model", "lenet-300-100", "--data", "digits",
                       "--sparsity", "0.9", "--max-drop-pp", "0.3")
    assert code == 2 and "not both" in err and "Traceback" not in err


def test_lowrank_recovers_by_default(capsys):
    code, stdout, err = run(capsys, "lowrank", "--model", "lenet-300-100", "--data", "digits",
                            "--params-ratio", "0.3", "--json")
    assert code == 0, err
    rec = json.loads(stdout)
    r = rec["recovery"]
    assert r["lr"] == 5e-4 and 1 <= r["best_epoch"] <= r["epochs"] <= 10
    assert rec["params"] <= 0.3 * 266_610 and rec["out"] is None


def test_quantize_gptq_reports_the_method_kept(capsys):
    code, stdout, err = run(capsys, "quantize", "--model", "lenet-300-100", "--data", "digits",
                            "--scheme", "w4-gptq", "--group-size", "32", "--rounds", "1",
                            "--backend", "torch", "--json")
    assert code == 0, err
    rec = json.loads(stdout)
    w = rec["weight_method"]
    assert w["kept"] in ("gptq", "rtn") and w[f"{w['kept']}_val"] == max(w["gptq_val"],
                                                                           w["rtn_val"])
    assert rec["chosen_form"] == f"torch-w4-{w['kept']}"


def test_lowrank_budget_keeps_the_smallest_ratio_within_it(capsys):
    code, stdout, err = run(capsys, "lowrank", "--model", "lenet-300-100", "--data", "digits",
                            "--max-drop-pp", "2.0", "--json")
    assert code == 0, err
    rec = json.loads(stdout)
    b = rec["budget"]
    kept = [s for s in b["steps"] if s["within_budget"]]
    assert kept and b["chosen_params_ratio"] == kept[-1]["params_ratio"]
    assert all(s["within_budget"] for s in b["steps"][:-1])  # it stops at the first miss
    assert rec["params"] <= b["chosen_params_ratio"] * 266_610
    assert kept[-1]["val_score"] >= b["baseline_val_score"] - 0.02


def test_quantize_budget_builds_the_fewest_bits_within_it(capsys):
    code, stdout, err = run(capsys, "quantize", "--model", "lenet-300-100", "--data", "digits",
                            "--max-drop-pp", "1.0", "--group-size", "32", "--rounds", "1",
                            "--backend", "torch", "--json")
    assert code == 0, err
    rec = json.loads(stdout)
    b = rec["budget"]
    assert [s["within_budget"] for s in b["steps"]] == [False] * (len(b["steps"]) - 1) + [True]
    assert rec["scheme"] == f"w{b['bits']}-{b['method']}" and rec["weight_bits"]
    assert b["steps"][-1]["val_score"] >= b["baseline_val_score"] - 0.01


def test_distill_budget_keeps_the_narrowest_student_within_it(capsys):
    code, stdout, err = run(capsys, "distill", "--teacher", "lenet-300-100", "--data", "digits",
                            "--max-drop-pp", "3.0", "--json")
    assert code == 0, err
    rec = json.loads(stdout)
    b = rec["budget"]
    kept = [s for s in b["steps"] if s["within_budget"]]
    assert kept and b["chosen_width"] == kept[-1]["width"]
    assert all(s["within_budget"] for s in b["steps"][:-1])
    assert rec["params"] == kept[-1]["params"] < 266_610
    assert kept[-1]["val_score"] >= b["baseline_val_score"] - 0.03
