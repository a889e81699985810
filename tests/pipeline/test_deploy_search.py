"""The deploy search on a tiny encoder: every grid point it runs is measured as deployed
(the file's bytes, its score, speed-ups against torch eager), the best is feasible and its
file is the one written, budgets mark trials infeasible, and a resumed study skips the
points it has."""

import json

import pytest

from netpress.errors import ConfigError
from netpress.pipeline import deploy_search as ds
from netpress.pipeline.deploy_search import DeployBudgets, run_deploy_search


@pytest.fixture(scope="module")
def enc(tiny_text_models):
    from netpress.tasks.build import TextOptions, load_task
    from netpress.zoo import build_model

    spec = tiny_text_models["enc"]
    model = build_model(spec).eval()
    task = load_task(spec, tiny_text_models["text"], model, text=TextOptions(max_length=12))
    return spec, model, task


def test_search_measures_each_form_as_deployed(enc, tmp_path, monkeypatch):
    spec, model, task = enc
    monkeypatch.setattr(ds, "HEADS", (0.0,))
    monkeypatch.setattr(ds, "FFN", (0.0, 0.5))
    res = run_deploy_search(model, spec, task, DeployBudgets(100.0), 8, tmp_path, (1, 4),
                            limit=8, passes=1, threads=1)
    assert len(res.trials) == 8
    assert {(t["params"]["ffn"], t["params"]["form"]) for t in res.trials} == \
        {(f, form) for f in (0.0, 0.5) for form in ds.FORMS}
    for t in res.trials:
        assert set(t["speedup"]) == {"b1", "b4"} and all(v > 0 for v in t["speedup"].values())
        assert t["min_speedup"] == min(t["speedup"].values())
        assert 0 < t["size_bytes"] and -1 <= t["val_accuracy"] <= 1
    by = {(t["params"]["ffn"], t["params"]["form"]): t for t in res.trials}
    assert by[0.0, "fp32"]["accuracy_drop_pp"] == pytest.approx(0, abs=1e-3)  # the same model
    assert by[0.0, "w4"]["size_bytes"] < by[0.0, "int8"]["size_bytes"] < by[0.0, "fp32"]["size_bytes"]
    assert by[0.5, "fp32"]["size_bytes"] < by[0.0, "fp32"]["size_bytes"]  # neurons removed
    best = res.best
    assert best["feasible"] and best["min_speedup"] == max(t["min_speedup"] for t in res.trials)
    assert (tmp_path / "best.netpress").stat().st_size == best["size_bytes"]
    assert res.best_test is not None and "score" in res.best_test
    saved = json.loads((tmp_path / "trials.json").read_text())
    assert saved["best"] == best["number"] and saved["space_kind"] == "deploy"
    assert any(t["pareto"] for t in saved["trials"])
    from netpress.report.data import load_run
    from netpress.report.plots import make_plots

    plots = make_plots(load_run(tmp_path))
    assert plots["fidelity_vs_speedup"][1][:4] == b"\x89PNG"
    # resumed: the study holds every point, nothing more is run
    again = run_deploy_search(model, spec, task, DeployBudgets(100.0), 8, tmp_path, (1, 4),
                              limit=8, passes=1, threads=1)
    assert len(again.trials) == 8


def test_budgets_make_trials_infeasible(enc, tmp_path, monkeypatch):
    spec, model, task = enc
    monkeypatch.setattr(ds, "HEADS", (0.0,))
    monkeypatch.setattr(ds, "FFN", (0.0,))
    monkeypatch.setattr(ds, "FORMS", ("fp32", "w4"))
    res = run_deploy_search(model, spec, task, DeployBudgets(100.0, max_size_kb=1e-3), 2,
                            tmp_path, (1,), limit=4, passes=1, threads=1)
    assert res.best is None and all(not t["feasible"] for t in res.trials)
    assert all(any("size" in v for v in t["violations"]) for t in res.trials)
    assert not (tmp_path / "best.netpress").exists()
    with pytest.raises(ConfigError):
        DeployBudgets(-1)
    with pytest.raises(ConfigError):
        DeployBudgets(1, min_speedup=0)
    assert DeployBudgets(1, min_speedup=2).violations(0, 1, {"b1": 1.5}) == \
        ["speed-up 1.50× at b1 < 2×"]


def test_best_recipe_says_how_to_deploy():
    assert ds.best_recipe({"heads": 0.0, "ffn": 0.0, "form": "fp32"}, 1, "s", 0) is None
    r = ds.best_recipe({"heads": 0.25, "ffn": 0.5, "form": "w4"}, 2, "s", 7)
    assert [type(s).__name__ for s in r.stages] == ["TransformerPrune", "Finetune", "WeightOnly"]
    assert "netpress export --form nbits" in r.description
    r = ds.best_recipe({"heads": 0.0, "ffn": 0.25, "form": "int8-float-layers"}, 1, "s", 1)
    assert "--max-drop-pp 0.15" in r.description
