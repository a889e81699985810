import json

import optuna
import pytest

from netpress import api
from netpress.encode.artifact import decode_artifact
from netpress.errors import ConfigError
from netpress.pipeline.measure import pareto_front, training_context
from netpress.pipeline.recipe import parse_recipe
from netpress.pipeline.runner import run_recipe
from netpress.pipeline.search import KB, Budgets, pick_best, run_search
from netpress.pipeline.space import SPACE, build_recipe

BUDGETS = Budgets(max_acc_drop=2.0, max_size_kb=100)


@pytest.fixture(scope="module")
def searched(tmp_path_factory, digits):
    d = tmp_path_factory.mktemp("search")
    api.train("lenet-300-100", digits, epochs=1, seed=0, out=d / "w.safetensors", threads=1)
    model = api.load_model("lenet-300-100", d / "w.safetensors")
    res = run_search(model, "lenet-300-100", digits, BUDGETS, trials=4, run_dir=d / "run",
                     epochs=0.25, seed=0, threads=1)
    return d, model, res


def test_trials_sizes_and_feasibility(searched, digits):
    d, model, res = searched
    run = d / "run"
    study = optuna.load_study(study_name="netpress-search", storage=f"sqlite:///{run / 'search.db'}")
    assert len(study.trials) == 4 and len(res.trials) == 4
    saved = json.loads((run / "trials.json").read_text())
    assert [t["number"] for t in saved["trials"]] == [0, 1, 2, 3]
    base = res.baseline_val_accuracy
    assert base == pytest.approx(json.loads((run / "run.json").read_text())["baseline_val_accuracy"])
    ctx, n = training_context(digits, 0.25, seed=0, threads=1)
    assert n == 1 and ctx.train_loader().num_examples == 300
    for t in res.trials:
        # the size is the length of the real artifact: re-running the trial's recipe with the
        # same seed gives an artifact of exactly that length, whose model scores the same
        data = run_recipe(api.load_model("lenet-300-100", d / "w.safetensors"),
                          build_recipe(t["params"], 1, _sens(run), t["recipe"]["name"]),
                          ctx, "lenet-300-100").artifact
        assert len(data) == t["size_bytes"]
        assert decode_artifact(data)[0]["recipe"] == t["recipe"]
        drop = (base - t["val_accuracy"]) * 100
        assert t["accuracy_drop_pp"] == pytest.approx(drop)
        assert t["feasible"] == (drop <= 2.0 and t["size_bytes"] <= 100 * KB)
        assert t["latency_ms"] > 0 and t["compression_ratio"] == pytest.approx(
            4 * 266_610 / t["size_bytes"])
    feasible = [t for t in res.trials if t["feasible"]]
    assert feasible, "seeded trials: at least one meets the budgets"
    assert any(not t["feasible"] for t in res.trials)
    best = res.best
    assert best["feasible"] and best["size_bytes"] == min(t["size_bytes"] for t in feasible)
    assert saved["best"] == best["number"]
    assert (run / "best.netpress").stat().st_size == best["size_bytes"]
    assert 0.5 < res.best_test_accuracy <= 1.0
    assert set(saved["pareto_feasible"]) <= {t["number"] for t in feasible}
    assert best["number"] in res.pareto_feasible  # the smallest feasible is never dominated
    sens = json.loads((run / "sensitivity.json").read_text())
    assert sorted(sens["layers"]) == ["1", "3", "5"] and sens["sparsities"][-1] == 0.99


def _sens(run):
    from netpress.pipeline.space import load_sensitivity

    return load_sensitivity(run / "sensitivity.json")


def test_best_recipe_reruns_to_the_same_bytes(searched, digits):
    d, _, res = searched
    recipe = parse_recipe((d / "run" / "best-recipe.yaml").read_text(), "best-recipe.yaml")
    assert recipe.stages[0].sparsity == pytest.approx(res.best["params"]["sparsity"])
    assert recipe.stages[1].bits == res.best["params"]["fc_bits"]
    assert "--epochs 0.25" in recipe.description
    ctx, _ = training_context(digits, 0.25, seed=0, threads=1)
    again = run_recipe(api.load_model("lenet-300-100", d / "w.safetensors"), recipe, ctx,
                       "lenet-300-100")
    assert again.artifact == (d / "run" / "best.netpress").read_bytes()


def test_resume_adds_trials(searched, digits):
    d, model, res = searched
    more = run_search(model, "lenet-300-100", digits, BUDGETS, trials=2, run_dir=d / "run",
                      epochs=0.25, seed=0, threads=1)
    assert [t["number"] for t in more.trials] == [0, 1, 2, 3, 4, 5]
    assert more.trials[:4] == [{**t, "pareto": more.trials[i]["pareto"],
                               "pareto_feasible": more.trials[i]["pareto_feasible"]}
                              for i, t in enumerate(res.trials)]
    old = [t["params"] for t in res.trials]
    assert all(t["params"] not in old for t in more.trials[4:])
    assert json.loads((d / "run" / "run.json").read_text())["trials"] == 6
    with pytest.raises(ConfigError, match="was made with model"):
        run_search(model, "lenet5", digits, BUDGETS, trials=1, run_dir=d / "run", epochs=0.25)


def test_bad_budgets_are_clear_errors(digits):
    with pytest.raises(ConfigError, match="must be >= 0"):
        Budgets(-0.5)
    with pytest.raises(ConfigError, match="--max-size-kb"):
        Budgets(0.5, max_size_kb=0)
    with pytest.raises(ConfigError, match="at least 1 trial"):
        run_search(None, "lenet-300-100", digits, Budgets(0.5), trials=0, run_dir="unused")
    with pytest.raises(ConfigError, match="whole number"):
        training_context(digits, 1.5)


def test_budget_arithmetic_pareto_and_best():
    b = Budgets(0.5, max_size_kb=20, max_latency_ms=1.0)
    assert b.violations(0.5, 20_000, 1.0) == []
    assert b.constraints(0.75, 21_000, 0.5) == pytest.approx(
        {"acc_drop_pp": 0.25, "size_kb": 1.0, "latency_ms": -0.5})
    assert len(b.violations(0.6, 20_001, 1.5)) == 3
    assert pareto_front({0: (-0.9, 10, 1), 1: (-0.9, 12, 1), 2: (-0.95, 20, 1)}) == [0, 2]
    trials = [{"number": i, "feasible": f, "size_bytes": s, "val_accuracy": a}
              for i, (f, s, a) in enumerate([(True, 10, 0.8), (True, 10, 0.9), (False, 5, 0.9)])]
    assert pick_best(trials)["number"] == 1
    assert [d.name for d in SPACE][:2] == ["sparsity", "allocation"]


def test_a_latency_budget_adds_structured_pruning(searched, digits, tmp_path):
    d, model, _ = searched
    res = run_search(model, "lenet-300-100", digits, Budgets(5.0, max_latency_ms=100.0), trials=3,
                     run_dir=tmp_path / "lat", epochs=0.25, seed=1, threads=1)
    assert all("structured" in t["params"] for t in res.trials)
    info = json.loads((tmp_path / "lat" / "run.json").read_text())
    assert "structured" in info["space"]
    p = {"sparsity": 0.6, "allocation": "global", "self_distill": 0.0, "fc_bits": 4,
         "conv_bits": 6, "bias_bits": 5, "structured": 0.5}
    recipe = build_recipe(p)
    assert [type(s).__name__ for s in recipe.stages] == ["StructuredPrune", "GradualPrune", "WeightShare"]
    ctx, _ = training_context(digits, 0.25, seed=0, threads=1)
    header, state = decode_artifact(run_recipe(model, recipe, ctx, "lenet-300-100").artifact)
    assert header["model"]["resized"] and state["1.weight"].shape == (150, 784)
