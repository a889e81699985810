import copy
import json

import pytest

from netpress.cli import main

REPORT = {
    "accuracy_drop_pp": 0.29,
    "compression_ratio": 45.5,
    "latency_ms": {"batch1_p50": 0.41, "batch1_p95": 0.6, "batchN_p50": 3.0, "batch_n": 256},
    "behaviour": {"max_class_drop_pp": 1.5},
}


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def report(tmp_path):
    p = tmp_path / "report.json"
    p.write_text(json.dumps(REPORT))
    return p


def test_gate_passes(capsys, report):
    code, out, err = run(capsys, "gate", report, "--max-acc-drop", "0.5", "--min-ratio", "10",
                         "--max-latency-ms", "1", "--max-class-drop", "2")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 5 and all(line.startswith("PASS") for line in lines[:4])
    assert "accuracy drop: 0.29 pp <= 0.5 pp" in lines[0]
    assert lines[-1] == "gate: PASS, all 4 budgets hold"


def test_gate_fails_with_exit_1(capsys, report):
    code, out, _ = run(capsys, "gate", report, "--max-acc-drop", "0.2", "--min-ratio", "10")
    assert code == 1
    assert out.splitlines()[0].startswith("FAIL  accuracy drop: 0.29 pp > 0.2 pp")
    assert out.splitlines()[1].startswith("PASS  compression ratio")
    assert "gate: FAIL, 1 of 2 budgets broken (max_acc_drop)" in out


def test_gate_json(capsys, report):
    code, out, _ = run(capsys, "gate", report, "--min-ratio", "50", "--json")
    assert code == 1
    rec = json.loads(out)
    assert rec["passed"] is False and rec["report"] == str(report)
    assert rec["checks"] == [{"name": "min_ratio", "value": 45.5, "limit": 50.0, "passed": False,
                              "text": "FAIL  compression ratio: 45.5 × < 50 × (--min-ratio)"}]
    code, out, _ = run(capsys, "gate", report.parent, "--min-ratio", "40", "--json")
    assert code == 0 and json.loads(out)["passed"] is True  # a run folder works too


def test_gate_bad_input_exits_2(capsys, tmp_path, report):
    code, _, err = run(capsys, "gate", tmp_path / "missing.json", "--min-ratio", "10")
    assert code == 2 and err.startswith("error: report not found")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "gate", bad, "--min-ratio", "10")
    assert code == 2 and "not valid JSON" in err
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"accuracy_drop_pp": 0.1}))
    code, _, err = run(capsys, "gate", partial, "--max-acc-drop", "1", "--min-ratio", "10")
    assert code == 2 and "no compression_ratio, which --min-ratio needs" in err
    code, _, err = run(capsys, "gate", report)
    assert code == 2 and "no budget given" in err and "--max-class-drop" in err
    code, _, err = run(capsys, "gate", report, "--min-ratio", "0")
    assert code == 2 and "--min-ratio must be > 0" in err
    assert len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def small_artifact(tmp_path_factory):
    from netpress import api
    from netpress.data import load_split
    from netpress.encode.artifact import save_artifact
    from netpress.techniques.prune.magnitude import prune_to

    d = tmp_path_factory.mktemp("validate")
    w = d / "base.safetensors"
    model, _ = api.train("lenet-300-100", load_split("digits"), epochs=1, seed=0, out=w, threads=1)
    pruned = copy.deepcopy(model)
    prune_to(pruned, 0.9)
    art = d / "m.netpress"
    save_artifact(pruned, art, "lenet-300-100")
    return d, w, art


def test_validate_json_and_out(capsys, small_artifact):
    from netpress import api
    from netpress.data import load_split
    from netpress.encode.artifact import load_artifact

    d, w, art = small_artifact
    out_path = d / "behaviour.json"
    code, out, err = run(capsys, "validate", "--model", "lenet-300-100", "--weights", w,
                         "--artifact", art, "--data", "digits", "--threads", "1", "--json",
                         "--out", out_path)
    assert code == 0, err
    rec = json.loads(out)
    assert json.loads(out_path.read_text()) == rec
    split = load_split("digits")
    net, _ = load_artifact(art)
    base = api.load_model("lenet-300-100", w)
    ev = api.evaluate(net, split, reference=base)
    assert rec["accuracy"] == pytest.approx(ev.accuracy)
    assert rec["baseline_accuracy"] == pytest.approx(api.evaluate(base, split).accuracy)
    assert rec["agreement"] == pytest.approx(ev.agreement) and rec["agreement"] < 1
    assert rec["kl"] == pytest.approx(ev.kl, rel=1e-5) and rec["kl"] > 0
    assert rec["examples"] == 300 and rec["model"] == "lenet-300-100"
    assert [r["sigma"] for r in rec["noise"]] == [0.1, 0.2]
    assert [r["eps"] for r in rec["fgsm"]] == [0.02, 0.05]
    assert rec["fgsm"][1]["baseline_accuracy"] < rec["baseline_accuracy"] - 0.1
    assert rec["max_class_drop_pp"] == max(rec["per_class"]["drop_pp"])

    # the written behaviour.json feeds the gate directly
    limit = rec["max_class_drop_pp"]
    code, out, _ = run(capsys, "gate", out_path, "--max-class-drop", limit + 0.01)
    assert code == 0 and out.startswith("PASS  largest class drop")
    code, out, _ = run(capsys, "gate", out_path, "--max-class-drop", limit - 0.01)
    assert code == 1


def test_validate_table_and_levels(capsys, small_artifact):
    d, w, art = small_artifact
    code, out, err = run(capsys, "validate", "-m", "lenet-300-100", "-w", w, "-a", art,
                         "--data", "digits", "--threads", "1", "--noise", "0.3", "--eps", "0.1",
                         "--eps", "0.2")
    assert code == 0, err
    assert "noise σ=0.3" in out and "FGSM ε=0.1" in out and "FGSM ε=0.2" in out
    assert "per-class accuracy" in out and "◀ largest" in out
    code, _, err = run(capsys, "validate", "-m", "lenet-300-100", "-w", w, "-a", d / "no.netpress",
                       "--data", "digits")
    assert code == 2 and "artifact not found" in err
    code, _, err = run(capsys, "validate", "-m", "lenet-300-100", "-w", w, "-a", art,
                       "--data", "digits", "--eps", "-0.1")
    assert code == 2 and "--eps must be >= 0" in err
