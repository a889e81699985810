"""Run a recipe: every stage in order on one model, then encode the result as an artifact.

Each stage is a registered technique (``netpress.config.apply``); the runner times it,
records the validation accuracy after it and, when the stage has a ``check``, stops
with a clear error if accuracy fell further than allowed. After every stage the model
is baked and rebuilt from its checkpoint bytes (``pipeline.checkpoints``), so every
stage starts from a plain model, and a run resumed from a checkpoint continues from
exactly the state an uninterrupted run would have had. Each stage is seeded with
``seed + stage``; with a run folder, the checkpoints and records go to disk (atomic
writes) and ``resume=True`` picks up after the last complete stage.

The artifact's header gets the recipe and only deterministic metrics (accuracies), so
the same command with the same seed writes the same bytes, interrupted or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..api import evaluate
from ..config import apply
from ..context import Context
from ..distributed import ddp
from ..distributed._testing import fault_point
from ..encode.artifact import artifact_bytes
from ..errors import ConfigError, NetpressError
from ..io import write_bytes, write_json
from .checkpoints import (
    checkpoint_path,
    last_complete,
    load_checkpoint,
    model_from_bytes,
    reload,
    remove_stale_temps,
    save_checkpoint,
)
from .recipe import Recipe, dump_recipe

RUN_VERSION = 1


class CheckFailed(NetpressError):
    """A stage's accuracy check failed: the run stops after that stage."""


@dataclass
class StageResult:
    """What one stage did: its config, wall time, validation accuracy after it and its check.

    Example:
        >>> StageResult("WeightShare", {}, 1.5, 0.9).seconds
        1.5
    """

    technique: str
    config: dict
    seconds: float
    val_accuracy: float
    check: dict | None = None  # {"max_drop_pp", "drop_pp", "passed"} when the stage has one
    comm: list[dict] | None = None  # under torchrun: each fine-tune's hook and bytes per step


@dataclass
class RunResult:
    """The compressed model, the artifact bytes and the stage log.

    Example:
        >>> len(run_recipe(model, recipe, ctx, "lenet-300-100").artifact)  # doctest: +SKIP
        21526
    """

    model: nn.Module
    artifact: bytes
    baseline_val_accuracy: float
    test_accuracy: float
    stages: list[StageResult] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int | None = None  # the stage a resumed run continued after


def _run_info(recipe: Recipe, ctx: Context, spec: str, meta: dict, base_val: float,
              stages: list[StageResult], status: str) -> dict:
    if ddp.world_size() > 1:
        meta = {**meta, "world_size": ddp.world_size()}
    return {"version": RUN_VERSION, "kind": "compress", "model": spec, "seed": ctx.seed,
            "threads": ctx.threads, "data": ctx.data_name, "task": ctx.task.kind,
            "score_name": ctx.task.score_name, **meta, "status": status,
            "recipe": recipe.to_dict(), "baseline_val_accuracy": base_val,
            "stages": [asdict(s) for s in stages]}


def _check_same_run(run_dir: Path, info: dict) -> float | None:
    """Refuse to resume a folder started by another command; returns its baseline
    accuracy, or None when the run had not even written run.json (it starts afresh)."""
    import json

    path = run_dir / "run.json"
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON ({e}); start a new run folder") from None
    for key in ("model", "seed", "data", "recipe", "weights", "threads", "world_size"):
        if old.get(key) != info.get(key):
            raise ConfigError(f"{run_dir} was started with a different {key} ({old.get(key)!r}); "
                              "resume with the same command, or use a new --run-dir")
    return float(old["baseline_val_accuracy"])


def _stage_check(recipe: Recipe, i: int, base_val: float, acc: float) -> dict | None:
    limit = recipe.check_of(i)
    if limit is None:
        return None
    drop = (base_val - acc) * 100
    return {"max_drop_pp": limit, "drop_pp": drop, "passed": drop <= limit}


def _sync(model: nn.Module, data: bytes, spec: str) -> tuple[nn.Module, bytes]:
    """Under torchrun: every rank continues from rank 0's model bytes (no-op otherwise)."""
    if not ddp.active():
        return model, data
    data = ddp.broadcast_bytes(data if ddp.is_main() else None)
    return (model if ddp.is_main() else model_from_bytes(data, spec)), data


def _sync_state(state: dict) -> dict:
    """Rank 0's resume state (JSON, never pickled) on every rank."""
    if not ddp.active():
        return state
    import json

    return json.loads(ddp.broadcast_bytes(json.dumps(state).encode() if ddp.is_main() else None))


def run_recipe(model: nn.Module, recipe: Recipe, ctx: Context, spec: str,
               progress: Callable[[str], None] | None = None, run_dir: str | Path | None = None,
               resume: bool = False, meta: dict | None = None) -> RunResult:
    """Apply ``recipe`` to ``model`` (the baseline; not changed) and encode the result.

    With ``run_dir``, checkpoints, stage records and ``run.json`` are kept there and the
    artifact is written to ``run_dir/model.netpress``; ``resume`` continues a killed run.
    ``meta`` (e.g. ``{"weights": path}``) goes into run.json and must match on resume.

    Under torchrun every rank runs the stages (training data-parallel, see
    ``netpress.distributed``); only rank 0 writes files and encodes the artifact (the other
    ranks return empty ``artifact`` bytes), and after every stage all ranks continue from
    rank 0's model bytes.

    Example:
        >>> from netpress.pipeline.recipe import parse_recipe
        >>> r = run_recipe(model, parse_recipe(text), Context(split), "lenet-300-100")  # doctest: +SKIP
        >>> len(r.artifact)  # doctest: +SKIP
        20480
    """
    say = progress or (lambda s: None)
    t_start = time.perf_counter()
    main = ddp.is_main()
    if recipe.comm is not None:
        ctx.comm = recipe.comm
    folder = Path(run_dir) if run_dir is not None and main else None
    meta = dict(meta or {})
    results: list[StageResult] = []
    start, resumed_from = 0, None
    resumed_data = None
    if folder is not None and resume:
        info = _run_info(recipe, ctx, spec, meta, 0.0, [], "running")
        old_val = _check_same_run(folder, info)
        remove_stale_temps(folder)
        done, records = last_complete(folder, len(recipe.stages))
        if old_val is not None and done >= 0:
            base_val = old_val
            model = load_checkpoint(checkpoint_path(folder, done), spec)
            resumed_data = checkpoint_path(folder, done).read_bytes()
            results = [StageResult(**r) for r in records]
            start, resumed_from = done, done
            say(f"resuming after stage {done}/{len(recipe.stages)}")
    if resume and ddp.active():
        st = _sync_state({"start": start, "resumed_from": resumed_from,
                          "base_val": base_val if resumed_from is not None else None,
                          "results": [asdict(r) for r in results]})
        start, resumed_from = st["start"], st["resumed_from"]
        if resumed_from is not None:
            base_val = st["base_val"]
            results = [StageResult(**r) for r in st["results"]]
            model, _ = _sync(model, resumed_data or b"", spec)
    if start == 0 and resumed_from is None:
        base_val = ctx.evaluate(model)
        model, data = _sync(*reload(model, spec), spec)
        if folder is not None:
            if not resume and (folder / "run.json").is_file():
                raise ConfigError(f"{folder} already holds a run; pass --resume to continue it, "
                                  "or choose a new --run-dir")
            write_bytes(folder / "recipe.yaml", dump_recipe(recipe).encode())
            write_json(folder / "run.json", _run_info(recipe, ctx, spec, meta, base_val, [],
                                                      "running"))
            save_checkpoint(folder, 0, data, {"stage": 0, "technique": "baseline",
                                              "val_accuracy": base_val})
    for i in range(start, len(recipe.stages)):
        cfg = recipe.stages[i]
        say(f"stage {i + 1}/{len(recipe.stages)}: {type(cfg).__name__}")
        fault_point(i + 1)  # test-only hook, inert unless NETPRESS_TESTING=1
        torch.manual_seed(ctx.seed + i + 1)
        t0 = time.perf_counter()
        logged = len(ctx.comm_log)
        model = apply(model, cfg, ctx)
        seconds = time.perf_counter() - t0
        model, data = _sync(*reload(model, spec), spec)
        acc = ctx.evaluate(model)
        check = _stage_check(recipe, i, base_val, acc)
        say(f"  validation accuracy {acc * 100:.2f}% ({seconds:.1f} s)")
        comm = ctx.comm_log[logged:] or None
        res = StageResult(type(cfg).__name__, cfg.to_dict(), seconds, acc, check, comm)
        results.append(res)
        if folder is not None:
            save_checkpoint(folder, i + 1, data, asdict(res))
            status = "failed" if check and not check["passed"] else "running"
            write_json(folder / "run.json", _run_info(recipe, ctx, spec, meta, base_val, results,
                                                      status))
        if check and not check["passed"]:
            raise CheckFailed(
                f"stage {i + 1} ({type(cfg).__name__}) lowered validation accuracy by "
                f"{check['drop_pp']:.2f} pp, more than its check allows ({check['max_drop_pp']} pp);"
                " make the stage gentler (or add fine-tuning) or raise check.max_drop_pp")
    if not main:  # rank 0 measures, encodes and writes
        return RunResult(model, b"", base_val, float("nan"), results,
                         time.perf_counter() - t_start, resumed_from)
    test_acc = evaluate(model, ctx.task).accuracy
    say("encoding")
    metrics = {"baseline_val_accuracy": base_val, "test_accuracy": test_acc,
               "val_accuracy": results[-1].val_accuracy if results else base_val,
               "seed": ctx.seed, "data": ctx.data_name}
    data = artifact_bytes(model, spec, recipe=recipe.to_dict(), metrics=metrics,
                          coder=recipe.coder, index=recipe.index,  # type: ignore[arg-type]
                          example=ctx.task.example_inputs(1, "test"))
    if folder is not None:
        write_bytes(folder / "model.netpress", data)
        write_json(folder / "run.json", _run_info(recipe, ctx, spec, meta, base_val, results,
                                                  "done"))
    return RunResult(model, data, base_val, test_acc, results, time.perf_counter() - t_start,
                     resumed_from)
