"""Automatic search over technique mixes under budgets, with Optuna (multi-objective).

Each trial samples a point of ``space.space_for(...)``, builds its recipe, runs it with
``run_recipe`` on a fresh copy of the baseline and measures the deployed form, i.e. the
model rebuilt from the artifact bytes: validation accuracy, the artifact's length in
bytes, and batch-1 median latency in torch eager. Objectives: maximise accuracy,
minimise size, minimise latency. A trial is feasible when its validation accuracy drop
(pp vs the baseline), size and latency all meet the budgets; the best candidate is the
smallest feasible artifact (ties: higher accuracy). Everything lands in the run folder
(docs/runs.md): run.json, trials.json, best-recipe.yaml, best.netpress, sensitivity.json and
the study (search.db unless another storage URL is given).

Several workers — processes on one machine or several — search together when they share
one storage URL and study name and pass ``study_trials=N`` (``--study-trials N``): each
asks the storage for the next trial number (the database hands out each number once),
runs trial numbers below N only and stops when the study holds N trials. A number handed
out past N in a race is marked FAIL with ``surplus`` set and never run. ``worker`` (0, 1, …)
offsets the sampler's seed so that workers do not propose the same points.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from torch import nn

from ..api import evaluate
from ..context import Context
from ..data.splits import Split
from ..encode.artifact import decode_artifact, model_from_artifact
from ..errors import ConfigError
from ..io import write_bytes, write_json
from ..pipeline.recipe import Recipe, dump_recipe, parse_recipe
from ..pipeline.runner import run_recipe
from ..tasks.base import Task
from ..techniques.prune.sensitivity import Sensitivity, sensitivity_sweep
from .measure import batch1_latency_ms, pareto_front, training_context
from .space import SWEEP, build_recipe, load_sensitivity, sample, save_sensitivity, space_for

OBJECTIVES = ("val_accuracy: maximize", "size_bytes: minimize", "latency_ms: minimize")
KB = 1000  # bytes per KB in budgets and tables


@dataclass(frozen=True)
class Budgets:
    """What a candidate must meet: accuracy drop (pp, validation), size (KB) and latency (ms).

    Example:
        >>> Budgets(0.5, max_size_kb=20).violations(0.4, 25_000, 1.0)
        ['size 25.0 KB > 20 KB']
    """

    max_acc_drop: float
    max_size_kb: float | None = None
    max_latency_ms: float | None = None

    def __post_init__(self) -> None:
        if not self.max_acc_drop >= 0:
            raise ConfigError(f"--max-acc-drop {self.max_acc_drop}: the allowed accuracy drop is "
                              "in percentage points and must be >= 0 (e.g. 0.5)")
        for name, v in (("--max-size-kb", self.max_size_kb), ("--max-latency-ms", self.max_latency_ms)):
            if v is not None and not v > 0:
                raise ConfigError(f"{name} {v}: a budget must be > 0 (or left out)")

    def constraints(self, drop_pp: float, size_bytes: int, latency_ms: float) -> dict[str, float]:
        """Optuna constraint values (``Trial.set_constraint``): each ≤ 0 when its budget holds.

        Example:
            >>> Budgets(0.5).constraints(0.75, 1000, 1.0)
            {'acc_drop_pp': 0.25}
        """
        out = {"acc_drop_pp": drop_pp - self.max_acc_drop}
        if self.max_size_kb is not None:
            out["size_kb"] = size_bytes / KB - self.max_size_kb
        if self.max_latency_ms is not None:
            out["latency_ms"] = latency_ms - self.max_latency_ms
        return out

    def violations(self, drop_pp: float, size_bytes: int, latency_ms: float) -> list[str]:
        """The budgets a result breaks, in words (empty: feasible)."""
        out = []
        if drop_pp > self.max_acc_drop:
            out.append(f"drop {drop_pp:.2f} pp > {self.max_acc_drop:g} pp")
        if self.max_size_kb is not None and size_bytes / KB > self.max_size_kb:
            out.append(f"size {size_bytes / KB:.1f} KB > {self.max_size_kb:g} KB")
        if self.max_latency_ms is not None and latency_ms > self.max_latency_ms:
            out.append(f"latency {latency_ms:.3f} ms > {self.max_latency_ms:g} ms")
        return out

    def as_dict(self) -> dict:
        """JSON-ready budgets."""
        return {"max_acc_drop_pp": self.max_acc_drop, "max_size_kb": self.max_size_kb,
                "max_latency_ms": self.max_latency_ms, "kb_bytes": KB}


@dataclass
class SearchResult:
    """The trials (records as in trials.json), the fronts and the best candidate.

    Example:
        >>> SearchResult(0.9, 1000, []).best is None
        True
    """

    baseline_val_accuracy: float
    baseline_size_bytes: int
    trials: list[dict]
    pareto: list[int] = field(default_factory=list)
    pareto_feasible: list[int] = field(default_factory=list)
    best: dict | None = None
    best_test_accuracy: float | None = None
    best_recipe_path: Path | None = None
    best_artifact_path: Path | None = None
    run_dir: Path | None = None
    seconds: float = 0.0


def _measure(data: bytes, ctx: Context, threads: int) -> tuple[nn.Module, float, float]:
    """The model rebuilt from ``data``, its validation accuracy and batch-1 latency (ms)."""
    loaded = model_from_artifact(*decode_artifact(data))
    acc = ctx.evaluate(loaded)
    lat = batch1_latency_ms(loaded, ctx.task.example_inputs(1, "val"), threads)
    return loaded, acc, lat


def _record(t: optuna.trial.FrozenTrial, budgets: Budgets) -> dict:
    a = t.user_attrs
    broken = budgets.violations(a["accuracy_drop_pp"], a["size_bytes"], a["latency_ms"])
    return {"number": t.number, "params": dict(t.params), "recipe": a["recipe"],
            "val_accuracy": a["val_accuracy"], "accuracy_drop_pp": a["accuracy_drop_pp"],
            "size_bytes": a["size_bytes"], "compression_ratio": a["compression_ratio"],
            "latency_ms": a["latency_ms"], "feasible": not broken, "violations": broken,
            "pareto": False, "pareto_feasible": False, "seconds": a["seconds"]}


def pick_best(trials: list[dict]) -> dict | None:
    """The smallest feasible trial (ties: higher validation accuracy, then lower number).

    Example:
        >>> pick_best([{"number": 0, "feasible": True, "size_bytes": 9, "val_accuracy": 0.9},
        ...            {"number": 1, "feasible": False, "size_bytes": 5, "val_accuracy": 0.9}])["number"]
        0
    """
    ok = [t for t in trials if t["feasible"]]
    return min(ok, key=lambda t: (t["size_bytes"], -t["val_accuracy"], t["number"])) if ok else None


def _sensitivity(base: nn.Module, ctx: Context, run_dir: Path, say) -> Sensitivity:
    path = run_dir / "sensitivity.json"
    if path.is_file():
        say(f"sensitivity sweep: reusing {path}")
        return load_sensitivity(path)
    say("sensitivity sweep (once per search)")
    sens = sensitivity_sweep(base, ctx, SWEEP, progress=say)
    save_sensitivity(sens, path)
    return sens


def _storage(url: str):
    """An RDB storage; SQLite waits up to a minute for a lock another worker holds. Workers
    starting together race to create the tables: a failed attempt is retried."""
    if not url.startswith("sqlite:"):
        return url
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
        except Exception:  # sqlalchemy's OperationalError/IntegrityError of the other's DDL
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _open_study(storage: str, name: str, seed: int, meta: dict, worker: int = 0) -> optuna.Study:
    optuna.logging.set_verbosity(logging.WARNING)
    storage = _storage(storage)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=None)
        done = len(study.trials)
    except KeyError:
        done = 0
    except Exception as e:  # a bad URL or an unreachable database: say which
        raise ConfigError(f"cannot open the Optuna storage {storage!r}: {e}") from None

    # A resumed study gets a sampler seeded past its history, so it does not replay it.
    # Feasibility reaches the sampler through Trial.set_constraint (Optuna 5).
    sampler = optuna.samplers.TPESampler(seed=seed + done + 7919 * worker, multivariate=True)
    for attempt in range(5):  # two workers creating the study at once: one of them retries
        try:
            study = optuna.create_study(storage=storage, study_name=name, sampler=sampler,
                                        directions=["maximize", "minimize", "minimize"],
                                        load_if_exists=True)
            break
        except Exception:
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    for k, v in meta.items():
        old = study.user_attrs.get(k)
        if old is not None and old != v:
            raise ConfigError(f"study {name!r} in {storage!s} was made with {k}={old!r}, not {v!r};"
                              " pass another --study-name or --storage")
        study.set_user_attr(k, v)
    return study


def run_search(model: nn.Module, spec: str, data: Task | Split, budgets: Budgets, trials: int,
               run_dir: str | Path, epochs: float = 1.0, storage: str | None = None,
               study_name: str = "netpress-search", seed: int = 0, threads: int = 2,
               weights: str | None = None, on_trial: Callable[[dict], None] | None = None,
               progress: Callable[[str], None] | None = None, study_trials: int | None = None,
               worker: int = 0) -> SearchResult:
    """Run ``trials`` more trials of the study and write the run folder; with
    ``study_trials``, run trials until the (shared) study holds that many (``trials`` is
    then ignored).

    Example:
        >>> from netpress.data import load_split
        >>> res = run_search(model, "lenet-300-100", load_split("digits"), Budgets(0.5),
        ...                  trials=4, run_dir="run", epochs=0.25)  # doctest: +SKIP
        >>> res.best["size_bytes"] == len(open("run/best.netpress", "rb").read())  # doctest: +SKIP
        True
    """
    if study_trials is None and trials < 1:
        raise ConfigError(f"--trials {trials}: a search needs at least 1 trial")
    if study_trials is not None and study_trials < 1:
        raise ConfigError(f"--study-trials {study_trials}: a study needs at least 1 trial")
    if worker < 0:
        raise ConfigError(f"--worker {worker}: workers are numbered 0, 1, 2, …")
    say = progress or (lambda s: None)
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(run_dir / 'search.db').resolve()}"
    ctx, whole_epochs = training_context(data, epochs, seed, threads)
    space = space_for(budgets.max_latency_ms is not None)
    base = copy.deepcopy(model).eval()
    base_val = ctx.evaluate(base)
    base_size = 4 * sum(p.numel() for p in base.parameters())
    run_info = {"version": 1, "kind": "search", "model": spec, "weights": weights,
                "data": ctx.data_name, "seed": seed, "threads": threads, "status": "running",
                "recipe": None, "baseline_val_accuracy": base_val, "stages": [],
                "budgets": budgets.as_dict(), "epochs": epochs,
                "train_images": ctx.train_loader().num_examples, "storage": storage,
                "study_name": study_name, "space": {d.name: d.describe() for d in space}}
    write_json(run_dir / "run.json", run_info)
    sens = _sensitivity(base, ctx, run_dir, say)
    study = _open_study(storage, study_name, seed, {"model": spec, "data": ctx.data_name,
                                                     "epochs": epochs, "seed": seed}, worker)
    artifacts: dict[int, bytes] = {}
    for trial in _trials(study, trials, study_trials, worker, say):
        params = sample(trial, space)
        recipe = build_recipe(params, whole_epochs, sens, name=f"{study_name}-t{trial.number}")
        say(f"trial {trial.number}: running")
        t0 = time.perf_counter()
        try:
            run = run_recipe(copy.deepcopy(base), recipe, ctx, spec)
        except ConfigError as e:
            say(f"trial {trial.number} failed: {e}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        _, acc, lat = _measure(run.artifact, ctx, threads)
        drop = (base_val - acc) * 100
        size = len(run.artifact)
        attrs = {"recipe": recipe.to_dict(), "val_accuracy": acc, "accuracy_drop_pp": drop,
                 "size_bytes": size, "compression_ratio": base_size / size, "latency_ms": lat,
                 "seconds": time.perf_counter() - t0}
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        for k, v in budgets.constraints(drop, size, lat).items():
            trial.set_constraint(k, v)
        study.tell(trial, [acc, float(size), lat])
        artifacts[trial.number] = run.artifact
        if on_trial:
            on_trial(_record(study.trials[trial.number], budgets))
    return _finish(study, budgets, base, spec, ctx, sens, whole_epochs, artifacts, run_dir,
                   run_info, base_size, t_start, say)


def _trials(study: optuna.Study, trials: int, study_trials: int | None, worker: int, say):
    """The trials this worker runs: ``trials`` of them, or with ``study_trials`` every
    number below it the storage hands this worker."""
    if study_trials is None:
        for _ in range(trials):
            yield study.ask()
        return
    while len(study.get_trials(deepcopy=False)) < study_trials:
        trial = study.ask()
        if trial.number >= study_trials:  # another worker took the last number first
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        trial.set_user_attr("worker", worker)
        yield trial
    say(f"the study holds {study_trials} trials: worker {worker} stops")


def _finish(study, budgets, base, spec, ctx, sens, whole_epochs, artifacts, run_dir, run_info,
            base_size, t_start, say) -> SearchResult:
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
            and "size_bytes" in t.user_attrs]
    recs = [_record(t, budgets) for t in done]
    by = {r["number"]: r for r in recs}
    obj = {r["number"]: (-r["val_accuracy"], r["size_bytes"], r["latency_ms"]) for r in recs}
    front = pareto_front(obj)
    front_ok = pareto_front({k: v for k, v in obj.items() if by[k]["feasible"]})
    for k in front:
        by[k]["pareto"] = True
    for k in front_ok:
        by[k]["pareto_feasible"] = True
    best = pick_best(recs)
    res = SearchResult(run_info["baseline_val_accuracy"], base_size, recs, front, front_ok, best,
                       run_dir=run_dir)
    if best is not None:
        recipe = _recipe_of(best, study, sens, whole_epochs)
        if run_info["epochs"] < 1:
            recipe = dataclasses.replace(recipe, description=recipe.description + (
                f"; searched with --epochs {run_info['epochs']:g} (one epoch on "
                f"{run_info['train_images']} training images): `netpress compress` trains on "
                "the whole training set, so its figures differ from the trial's"))
        recipe = parse_recipe(dump_recipe(recipe), source="best-recipe.yaml")
        data = artifacts.get(best["number"])
        if data is None:  # found in an earlier session or on another machine: re-run it
            say(f"re-running trial {best['number']} to write its artifact")
            data = run_recipe(copy.deepcopy(base), recipe, ctx, spec).artifact
        res.best_recipe_path = write_bytes(run_dir / "best-recipe.yaml", dump_recipe(recipe).encode())
        res.best_artifact_path = write_bytes(run_dir / "best.netpress", data)
        loaded = model_from_artifact(*decode_artifact(data))
        res.best_test_accuracy = evaluate(loaded, ctx.task).accuracy
        run_info["recipe"] = recipe.to_dict()
    res.seconds = time.perf_counter() - t_start
    write_json(run_dir / "trials.json", {
        "objectives": list(OBJECTIVES), "budgets": budgets.as_dict(), "trials": recs,
        "pareto": front, "pareto_feasible": front_ok,
        "best": best["number"] if best else None,
        "best_test_accuracy": res.best_test_accuracy, "baseline_size_bytes": base_size,
        "baseline_val_accuracy": res.baseline_val_accuracy})
    run_info.update(status="done", best=best["number"] if best else None,
                    best_size_bytes=best["size_bytes"] if best else None,
                    best_val_accuracy=best["val_accuracy"] if best else None,
                    best_test_accuracy=res.best_test_accuracy, trials=len(recs),
                    seconds=res.seconds)
    write_json(run_dir / "run.json", run_info)
    return res


def _recipe_of(best: dict, study, sens, whole_epochs: int) -> Recipe:
    """The best trial's recipe rebuilt from its params (equal to the one that ran)."""
    name = best["recipe"]["name"]
    recipe = build_recipe(best["params"], whole_epochs, sens, name=name)
    if recipe.to_dict() != best["recipe"]:
        raise ConfigError(f"trial {best['number']}'s stored recipe differs from its parameters; "
                          "was the study made by another netpress version?")
    return recipe
