"""``netpress search`` on a transformer: deployed forms against fidelity, file and speed.

For a Hugging Face model the search space is what makes a transformer fast where it runs,
not the weight-sharing mixes of the CNN search (``pipeline.space``):

- ``heads`` / ``ffn`` — the fraction of attention heads and FFN neurons removed from every
  layer (``TransformerPrune``: Taylor importance, least-squares refit of the projections,
  physically removed), then ``Finetune`` towards the task's targets for ``epochs``;
- ``form`` — how the result is deployed: ``fp32`` (the fused graph), ``int8`` (smoothed
  dynamic int8, every layer), ``int8-float-layers`` (the same with the most sensitive
  layers kept float until validation is within ``INT8_KEEP_PP`` of fp32) or ``w4``
  (act-order clipped GPTQ, group 128, 4-bit token table, in ``MatMulNBits``).

The space is small and discrete, so the search walks it as a grid in a seeded order
(each point enqueued in the Optuna study; a resumed study skips the points it has). Models with
the same structure are pruned and fine-tuned once. Each trial is measured as deployed —
the ``.netpress`` file's bytes, run by ``netpress.runtime`` (text batches in groups of
similar length): the task's validation score and its comparison with the uncompressed
model (cosine and recall@10 for an encoder), and examples per second over the validation
texts at each batch size, interleaved with the uncompressed model in torch eager in the
same call (``profile.throughput``). Objectives: maximise the score, minimise the file,
maximise the smallest speed-up over the batch sizes. A trial is feasible when its score
drop (pp), file and speed-ups meet the budgets; the best is the feasible trial with the
largest smallest speed-up (ties: the smaller file). Choices use the validation part; the
best trial is then scored on test.

The run folder is a search folder (docs/runs.md): run.json, trials.json (every trial with
``speedup`` per batch size; ``netpress report`` draws fidelity against speed-up),
best-recipe.yaml (its description names the export form), best.netpress, search.db.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from torch import nn

from ..config import apply
from ..context import Context
from ..errors import ConfigError, NetpressError
from ..io import write_bytes, write_json
from ..profile.throughput import throughput
from ..profile.timing import torch_runner
from ..tasks.base import Task
from .measure import pareto_front
from .recipe import Recipe, dump_recipe, parse_recipe

HEADS = (0.0, 0.25)
FFN = (0.0, 0.25, 0.5)
FORMS = ("fp32", "int8", "int8-float-layers", "w4")
INT8_KEEP_PP = 0.15  # int8-float-layers: validation budget of the layers kept float
FINETUNE_LR = 3e-4
KB = 1000


@dataclass(frozen=True)
class DeployBudgets:
    """Score drop (pp of the task's score, validation), file (KB) and smallest speed-up.

    Example:
        >>> DeployBudgets(1.0, min_speedup=2).violations(0.5, 10_000, {"b1": 3.0, "b32": 1.5})
        ['speed-up 1.50× at b32 < 2×']
    """

    max_drop_pp: float
    max_size_kb: float | None = None
    min_speedup: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.max_drop_pp < math.inf:
            raise ConfigError(f"--max-acc-drop must be 0 or more (pp of the task's score), "
                              f"got {self.max_drop_pp}")
        for name, v in (("--max-size-kb", self.max_size_kb), ("--min-speedup", self.min_speedup)):
            if v is not None and not v > 0:
                raise ConfigError(f"{name} must be positive, got {v}")

    def violations(self, drop_pp: float, size_bytes: int, speedup: dict[str, float]) -> list[str]:
        out = []
        if drop_pp > self.max_drop_pp:
            out.append(f"drop {drop_pp:.2f} pp > {self.max_drop_pp:g} pp")
        if self.max_size_kb is not None and size_bytes > self.max_size_kb * KB:
            out.append(f"size {size_bytes / KB:.1f} KB > {self.max_size_kb:g} KB")
        if self.min_speedup is not None:
            out += [f"speed-up {v:.2f}× at {b} < {self.min_speedup:g}×"
                    for b, v in speedup.items() if v < self.min_speedup]
        return out

    def as_dict(self) -> dict:
        return {"max_acc_drop_pp": self.max_drop_pp, "max_size_kb": self.max_size_kb,
                "min_speedup": self.min_speedup, "kb_bytes": KB}


@dataclass
class DeployResult:
    """What ``run_deploy_search`` found (also in the run folder)."""

    run_dir: Path
    baseline_val_score: float
    baseline_file_bytes: int
    trials: list[dict]
    best: dict | None
    best_test: dict | None = None
    seconds: float = 0.0


def structure_recipe(heads: float, ffn: float, epochs: int) -> list:
    """The stages that give a trial's structure (none for the model as it is).

    Example:
        >>> [type(s).__name__ for s in structure_recipe(0.25, 0.5, 1)]
        ['TransformerPrune', 'Finetune']
    """
    from ..pipeline.steps import Finetune
    from ..techniques.prune.transformer import TransformerPrune

    if heads == 0 and ffn == 0:
        return []
    return [TransformerPrune(heads=heads, ffn=ffn, scope="layer"),
            Finetune(epochs=epochs, lr=FINETUNE_LR)]


def build_structure(base: nn.Module, heads: float, ffn: float, epochs: int,
                    ctx: Context) -> nn.Module:
    """A copy of ``base`` with the structure's stages applied (``structure_recipe``), in
    eval mode.

    Example:
        >>> build_structure(model, 0.0, 0.0, 1, ctx) is not model  # doctest: +SKIP
        True
    """
    m = copy.deepcopy(base)
    for cfg in structure_recipe(heads, ffn, epochs):
        m = apply(m, cfg, ctx)
    return m.eval()


def w4_config():
    """The 4-bit form's quantizer (the sentence-encoder recipe's, without LSQ)."""
    from ..techniques.quantize.weight_only import WeightOnly

    return WeightOnly(bits=4, group_size=128, method="gptq", act_order=True, clip=True,
                      embedding_bits=4)


def deploy_bytes(model: nn.Module, spec: str, task: Task, form: str, ctx: Context,
                 threads: int = 2, say: Callable[[str], None] = lambda s: None
                 ) -> tuple[bytes, dict]:
    """The ``.netpress`` bytes of ``model`` deployed as ``form`` and what was chosen.

    Example:
        >>> data, info = deploy_bytes(model, spec, task, "int8", ctx)  # doctest: +SKIP
        >>> info["alpha"]  # doctest: +SKIP
        0.85
    """
    import onnx

    from ..encode.artifact import artifact_bytes, graph_artifact_bytes
    from ..export.int8 import int8_dynamic
    from ..export.onnx import export_onnx

    example = task.example_inputs(1, "train")
    if form == "fp32":
        return artifact_bytes(model, spec, example=example), {}
    if form == "w4":
        q = apply(copy.deepcopy(model), w4_config(), ctx)
        return artifact_bytes(q, spec, example=example), {}
    if form not in ("int8", "int8-float-layers"):
        raise ConfigError(f"unknown deploy form {form!r}; use one of {', '.join(FORMS)}")
    with tempfile.TemporaryDirectory(prefix="netpress-deploy-") as d:
        fp = export_onnx(model.eval(), example, Path(d) / "fp32.onnx")
        budget = INT8_KEEP_PP if form == "int8-float-layers" else None
        info = int8_dynamic(fp, Path(d) / "int8.onnx", task, budget, threads, say=say)
        data = graph_artifact_bytes(onnx.load(str(Path(d) / "int8.onnx")), spec)
    return data, {"alpha": info.get("alpha"), "kept_float": info.get("kept_float", [])}


def measure_form(data: bytes, baseline: nn.Module, task: Task, part: str,
                 batch_sizes: tuple[int, ...], threads: int, limit: int, passes: int,
                 reference: torch.Tensor | None = None) -> dict:
    """The file ``data`` as deployed: score and comparison with ``baseline`` on ``part``,
    examples per second at each batch size against ``baseline`` in torch eager."""
    from ..export.deploy import runtime_runner

    run = runtime_runner(data, threads)
    out, targets = task.runner_outputs(run, part)
    if reference is None:
        reference, _ = task.predict(baseline, part)
    speed = throughput({"torch": torch_runner(baseline), "form": run}, task.part(part)[0],
                       batch_sizes, passes=passes, limit=limit)
    return {"score": task.score_outputs(out, targets), **task.compare_outputs(out, reference),
            "file_bytes": len(data),
            "per_s": {b: v["per_s"] for b, v in speed["form"].items()},
            "baseline_per_s": {b: v["per_s"] for b, v in speed["torch"].items()},
            "speedup": {b: v["vs_baseline"] for b, v in speed["form"].items()}}


def _grid() -> dict:
    return {"heads": list(HEADS), "ffn": list(FFN), "form": list(FORMS)}


def grid_points(grid: dict, seed: int) -> list[dict]:
    """Every point of ``grid``, in an order shuffled by ``seed`` (the same for a resume).

    Example:
        >>> len(grid_points({"a": [1, 2], "b": ["x", "y", "z"]}, 0))
        6
    """
    import itertools
    import random

    points = [dict(zip(grid, vs, strict=True)) for vs in itertools.product(*grid.values())]
    random.Random(seed).shuffle(points)
    return points


def best_of(trials: list[dict]) -> dict | None:
    """The feasible trial with the largest smallest speed-up (ties: smaller file).

    Example:
        >>> best_of([{"number": 0, "feasible": True, "min_speedup": 2.0, "size_bytes": 5},
        ...          {"number": 1, "feasible": True, "min_speedup": 3.0, "size_bytes": 9}])["number"]
        1
    """
    ok = [t for t in trials if t["feasible"]]
    return max(ok, key=lambda t: (t["min_speedup"], -t["size_bytes"], -t["number"])) if ok else None


def run_deploy_search(model: nn.Module, spec: str, task: Task, budgets: DeployBudgets,
                      trials: int, run_dir: str | Path, batch_sizes: tuple[int, ...] = (1, 32),
                      epochs: int = 1, seed: int = 0, threads: int = 2, limit: int = 128,
                      passes: int = 3, study_name: str = "netpress-deploy",
                      on_trial: Callable[[dict], None] | None = None,
                      progress: Callable[[str], None] | None = None,
                      peers: list[dict] | None = None) -> DeployResult:
    """Run up to ``trials`` points of the deploy grid (see the module docstring) and write
    the run folder. ``peers`` (``{"label", "score", "speedup": {"b1": …}, "source"}``:
    other toolkits' forms of the same model) go into trials.json for the report's plot.

    Example:
        >>> res = run_deploy_search(model, "hf:DIR", task, DeployBudgets(1.0), 24,
        ...                         "run")  # doctest: +SKIP
        >>> res.best["params"]  # doctest: +SKIP
        {'heads': 0.0, 'ffn': 0.0, 'form': 'int8'}
    """
    if trials < 1:
        raise ConfigError(f"--trials {trials}: a search needs at least 1 trial")
    if epochs < 1:
        raise ConfigError(f"--epochs {epochs}: a transformer search fine-tunes whole epochs")
    say = progress or (lambda s: None)
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    ctx = Context(task, seed=seed, threads=threads)
    base = copy.deepcopy(model).eval()
    base_val = task.score(base, "val")
    ref_val, _ = task.predict(base, "val")
    base_bytes = 4 * sum(p.numel() for p in base.parameters())
    storage = f"sqlite:///{(run_dir / 'search.db').resolve()}"
    grid = _grid()
    run_info = {"version": 1, "kind": "search", "space_kind": "deploy", "model": spec,
                "data": task.name, "seed": seed, "threads": threads, "status": "running",
                "score_name": getattr(task, "score_name", None),
                "baseline_val_accuracy": base_val, "baseline_fp32_bytes": base_bytes,
                "budgets": budgets.as_dict(), "epochs": epochs, "batch_sizes": list(batch_sizes),
                "space": {k: [str(v) for v in vs] for k, vs in grid.items()},
                "storage": storage, "study_name": study_name, "stages": [], "recipe": None}
    write_json(run_dir / "run.json", run_info)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name=study_name, load_if_exists=True,
                                sampler=optuna.samplers.RandomSampler(seed=seed),
                                directions=["maximize", "minimize", "maximize"])
    structures: dict[tuple, nn.Module] = {}
    files: dict[int, bytes] = {}
    settings = {"model": spec, "data": task.name, "epochs": epochs, "seed": seed,
                "batch_sizes": list(batch_sizes), "examples": limit, "threads": threads}
    for k, v in settings.items():  # a resumed study must measure the same way
        old = study.user_attrs.get(k)
        if old is not None and old != v:
            raise ConfigError(f"the study in {run_dir} was made with {k}={old!r}, not {v!r}; "
                              "use another --run-dir or the same settings")
        study.set_user_attr(k, v)
    done = [dict(t.params) for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    todo = [p for p in grid_points(grid, seed) if p not in done][:trials]
    for point in todo:
        study.enqueue_trial(point)
        trial = study.ask()
        p = {k: trial.suggest_categorical(k, v) for k, v in grid.items()}
        key = (p["heads"], p["ffn"])
        t0 = time.perf_counter()
        say(f"trial {trial.number}: heads {p['heads']}, ffn {p['ffn']}, {p['form']}")
        if key not in structures:
            structures[key] = build_structure(base, p["heads"], p["ffn"], epochs, ctx)
        try:
            data, info = deploy_bytes(structures[key], spec, task, p["form"], ctx, threads)
            rec = measure_form(data, base, task, "val", batch_sizes, threads, limit, passes,
                               ref_val)
        except NetpressError as e:
            say(f"trial {trial.number} failed: {e}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        drop = (base_val - rec["score"]) * 100
        speed = {b: float(v) for b, v in rec["speedup"].items()}
        attrs = {**rec, **info, "accuracy_drop_pp": drop, "min_speedup": min(speed.values()),
                 "seconds": time.perf_counter() - t0}
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        study.tell(trial, [rec["score"], float(len(data)), attrs["min_speedup"]])
        files[trial.number] = data
        if on_trial:
            on_trial(_record(study.trials[trial.number], budgets))
    recs = [_record(t, budgets) for t in study.trials
            if t.state == optuna.trial.TrialState.COMPLETE]
    front = pareto_front({r["number"]: (-r["val_accuracy"], r["size_bytes"], -r["min_speedup"])
                          for r in recs})
    for r in recs:
        r["pareto"] = r["number"] in front
    best = best_of(recs)
    res = DeployResult(run_dir, base_val, base_bytes, recs, best)
    if best is not None:
        p = best["params"]
        recipe = best_recipe(p, epochs, study_name, best["number"])
        if recipe is not None:
            write_bytes(run_dir / "best-recipe.yaml", dump_recipe(recipe).encode())
            run_info["recipe"] = recipe.to_dict()
        best["deploy"] = deploy_command(p["form"])
        data = files.get(best["number"])
        if data is None:  # found in an earlier session: built again (training reruns, so the
            # file may differ slightly from the one measured; best_test measures this one)
            m = build_structure(base, p["heads"], p["ffn"], epochs, ctx)
            data, _ = deploy_bytes(m, spec, task, p["form"], ctx, threads)
        write_bytes(run_dir / "best.netpress", data)
        res.best_test = measure_form(data, base, task, "test", batch_sizes, threads, limit,
                                     passes)
    res.seconds = time.perf_counter() - t_start
    write_json(run_dir / "trials.json", {
        "space_kind": "deploy", "objectives": ["score: maximize", "file_bytes: minimize",
                                               "min_speedup: maximize"],
        "budgets": budgets.as_dict(), "batch_sizes": list(batch_sizes), "trials": recs,
        "pareto": front, "best": best["number"] if best else None,
        "best_test": res.best_test, "baseline_val_accuracy": base_val,
        "baseline_size_bytes": base_bytes, "peers": peers or []})
    run_info.update(status="done", best=best["number"] if best else None,
                    best_test=res.best_test, trials=len(recs), seconds=res.seconds)
    write_json(run_dir / "run.json", run_info)
    return res


def deploy_command(form: str) -> str:
    """The ``netpress export`` flags that write ``form``.

    Example:
        >>> deploy_command("int8")
        'netpress export --form int8-dynamic'
    """
    return {"fp32": "netpress export --form fp32",
            "int8": "netpress export --form int8-dynamic",
            "int8-float-layers": f"netpress export --form int8-dynamic --max-drop-pp "
                                 f"{INT8_KEEP_PP:g}",
            "w4": "netpress export --form nbits"}[form]


def best_recipe(params: dict, epochs: int, name: str, number: int) -> Recipe | None:
    """The recipe of a trial's point (its description names the export form), or None
    when the point is the model as it is, only exported.

    Example:
        >>> best_recipe({"heads": 0.0, "ffn": 0.0, "form": "int8"}, 1, "s", 3) is None
        True
    """
    stages = structure_recipe(params["heads"], params["ffn"], epochs)
    if params["form"] == "w4":
        stages.append(w4_config())
    if not stages:
        return None
    desc = (f"found by netpress search (trial {number}): heads {params['heads']}, ffn "
            f"{params['ffn']}, form {params['form']}; deploy with "
            f"`{deploy_command(params['form'])} --out model.netpress`")
    return parse_recipe(dump_recipe(Recipe(tuple(stages), name=f"{name}-t{number}",
                                           description=desc)))


def _record(t: optuna.trial.FrozenTrial, budgets: DeployBudgets) -> dict:
    """A trial's record; feasibility from its measurements under the current budgets (a
    resumed search may be given other budgets)."""
    a = t.user_attrs
    broken = budgets.violations(a["accuracy_drop_pp"], a["file_bytes"], a["speedup"])
    return {"number": t.number, "params": dict(t.params), "val_accuracy": a["score"],
            "accuracy_drop_pp": a["accuracy_drop_pp"], "size_bytes": a["file_bytes"],
            "cosine": a.get("cosine"), "recall_at_10": a.get("recall_at_10"),
            "speedup": a["speedup"], "per_s": a["per_s"], "baseline_per_s": a["baseline_per_s"],
            "min_speedup": a["min_speedup"],
            "latency_ms": 1000.0 / a["per_s"]["b1"] if "b1" in a["per_s"] else None,
            "alpha": a.get("alpha"), "kept_float": a.get("kept_float", []),
            "feasible": not broken, "violations": broken, "pareto": False,
            "seconds": a["seconds"]}
