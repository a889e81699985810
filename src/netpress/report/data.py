"""Read a run folder (docs/runs.md) into one object the report renderers share.

Only ``run.json`` is required. Every other file is optional: when it is missing or
cannot be read, its slot is ``None`` and :func:`RunData.note` says why and which
command writes it, so each report section can say so instead of failing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..encode.inspect import inspect_bytes
from ..errors import FormatError, NetpressError

# file -> the command that writes it (shown when the file is missing)
PRODUCERS = {
    "run.json": "`netpress compress --run-dir DIR` or `netpress search --run-dir DIR`",
    "record.json": "`netpress compress --run-dir DIR`",
    "model.netpress": "`netpress compress --run-dir DIR`",
    "behaviour.json": "`netpress compress --run-dir DIR`",
    "sensitivity.json": "`netpress compress --run-dir DIR`",
    "histograms.json": "`netpress compress --run-dir DIR`",
    "trials.json": "`netpress search --run-dir DIR`",
    "compare.json": "`netpress compare --model M --weights W --data D --run-dir DIR`",
}


@dataclass
class RunData:
    """Everything a report shows, read from one run folder.

    Example:
        >>> d = load_run("runs/r1")  # doctest: +SKIP
        >>> d.kind, d.record["compression_ratio"]  # doctest: +SKIP
        ('compress', 45.5)
    """

    run_dir: Path
    run: dict
    record: dict | None = None
    behaviour: dict | None = None
    sensitivity: dict | None = None
    histograms: dict | None = None
    trials: dict | None = None
    compare: dict | None = None
    artifact: dict | None = None  # inspect_bytes(model.netpress) without per-stream details
    problems: dict[str, str] = field(default_factory=dict)  # file -> why it is unusable

    @property
    def kind(self) -> str:
        """``"compress"`` or ``"search"`` (from run.json)."""
        return str(self.run.get("kind", "compress"))

    def note(self, name: str) -> str:
        """Why ``name`` is not shown and how to get it.

        Example:
            >>> RunData(Path("r"), {}, problems={"trials.json": "missing"}).note("trials.json")
            'trials.json is missing; it is written by `netpress search --run-dir DIR`.'
        """
        why = self.problems.get(name, "missing")
        return f"{name} is {why}; it is written by {PRODUCERS.get(name, 'netpress')}."


def read_json(path: Path) -> dict:
    """One JSON object from ``path``; FormatError naming the file when it is not one.

    Example:
        >>> read_json(Path("run.json"))["kind"]  # doctest: +SKIP
        'compress'
    """
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise FormatError(f"{path} is not UTF-8 text ({e})") from e
    except json.JSONDecodeError as e:
        raise FormatError(f"{path} is not valid JSON (line {e.lineno}: {e.msg})") from e
    if not isinstance(obj, dict):
        raise FormatError(f"{path} holds a JSON {type(obj).__name__}, not an object")
    return obj


def _need(obj: dict, keys: tuple[str, ...], name: str) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise FormatError(f"{name} lacks {', '.join(missing)}")


def normalize_sensitivity(obj: dict) -> dict:
    """Accept both the runs.md form (``baseline``, ``layers``) and ``Sensitivity.as_dict``
    (``baseline_accuracy``, ``accuracy``); return the runs.md form.

    Example:
        >>> normalize_sensitivity({"kind": "unstructured", "sparsities": [0, 0.5],
        ...     "baseline_accuracy": 0.9, "accuracy": {"1": [0.9, 0.8]}})["layers"]
        {'1': [0.9, 0.8]}
    """
    layers = obj.get("layers", obj.get("accuracy"))
    base = obj.get("baseline", obj.get("baseline_accuracy"))
    if not isinstance(layers, dict) or "sparsities" not in obj:
        raise FormatError("sensitivity.json needs sparsities and layers {name: [accuracy, ...]}")
    n = len(obj["sparsities"])
    bad = [k for k, v in layers.items() if not isinstance(v, list) or len(v) != n]
    if bad:
        raise FormatError(f"sensitivity.json: layer {bad[0]} does not have {n} accuracies")
    out = {"kind": obj.get("kind", "unstructured"), "sparsities": list(obj["sparsities"]),
           "baseline": base, "layers": layers}
    for key in ("sampled", "note"):  # a bounded sweep says what it left out
        if key in obj:
            out[key] = obj[key]
    return out


def _check(name: str, obj: dict) -> dict:
    if name == "record.json":
        _need(obj, ("accuracy", "baseline_accuracy", "size_bytes", "baseline_size_bytes"), name)
    elif name == "behaviour.json":
        _need(obj, ("accuracy",), name)
    elif name == "sensitivity.json":
        return normalize_sensitivity(obj)
    elif name == "histograms.json":
        if not isinstance(obj.get("layers"), dict):
            raise FormatError("histograms.json needs layers {name: {edges, before, after}}")
        for k, h in obj["layers"].items():
            _need(h, ("edges", "before", "after"), f"histograms.json layer {k}")
    elif name == "trials.json":
        if not isinstance(obj.get("trials"), list):
            raise FormatError("trials.json needs a list of trials")
    elif name == "compare.json":
        if not isinstance(obj.get("rows"), list):
            raise FormatError("compare.json needs a list of rows")
    return obj


def _artifact_summary(path: Path) -> dict:
    info = inspect_bytes(path.read_bytes())
    rows = [{k: v for k, v in r.items() if k != "streams"} for r in info["tensors"]]
    return {**{k: v for k, v in info.items() if k != "tensors"}, "tensors": rows}


def load_run(run_dir: str | Path) -> RunData:
    """Read every file of a run folder; only ``run.json`` must be there and valid.

    Example:
        >>> load_run("missing-dir")
        Traceback (most recent call last):
        ...
        netpress.errors.NetpressError: missing-dir/run.json not found: ...
    """
    run_dir = Path(run_dir)
    run_path = run_dir / "run.json"
    if not run_path.is_file():
        where = "" if run_dir.is_dir() else " (the folder does not exist)"
        raise NetpressError(f"{run_path} not found{where}: give the folder of a run written by "
                            f"{PRODUCERS['run.json']}")
    run = read_json(run_path)
    if run.get("kind", "compress") not in ("compress", "search"):
        raise FormatError(f"{run_path}: kind must be compress or search, not {run.get('kind')!r}")
    data = RunData(run_dir, run)
    slots = {"record.json": "record", "behaviour.json": "behaviour",
             "sensitivity.json": "sensitivity", "histograms.json": "histograms",
             "trials.json": "trials", "compare.json": "compare"}
    for name, slot in slots.items():
        path = run_dir / name
        if not path.is_file():
            data.problems[name] = "missing"
            continue
        try:
            setattr(data, slot, _check(name, read_json(path)))
        except (FormatError, AttributeError, TypeError) as e:
            data.problems[name] = f"unreadable ({' '.join(str(e).split())})"
    art = run_dir / "model.netpress"
    if art.is_file():
        try:
            data.artifact = _artifact_summary(art)
        except (NetpressError, ValueError, KeyError) as e:
            data.problems["model.netpress"] = f"unreadable ({' '.join(str(e).split())})"
    else:
        data.problems["model.netpress"] = "missing"
    return data


def num(x, digits: int = 2, unit: str = "", scale: float = 1.0) -> str:
    """Format a number for a table; ``–`` for missing or non-finite values.

    Example:
        >>> num(0.98765, 2, "%", 100), num(None), num(12345, 0)
        ('98.77%', '–', '12,345')
    """
    if x is None or isinstance(x, bool) or not isinstance(x, int | float):
        return "–"
    v = x * scale
    if isinstance(v, float) and not math.isfinite(v):
        return "–"
    return f"{v:,.{digits}f}{unit}"
