"""The CI gate: check a run's ``report.json`` against a user's budgets.

Each budget reads one number of the report (see docs/runs.md):

| budget           | report key                        | holds when     |
|------------------|-----------------------------------|----------------|
| ``max_acc_drop``   | ``accuracy_drop_pp``                | value <= limit |
| ``min_ratio``      | ``compression_ratio``               | value >= limit |
| ``max_latency_ms`` | ``latency_ms.batch1_p50``           | value <= limit |
| ``max_class_drop`` | ``behaviour.max_class_drop_pp``     | value <= limit |

A ``behaviour.json`` written by ``netpress validate --out`` can be gated too: it holds
``accuracy_drop_pp`` and ``max_class_drop_pp`` at its top level.

"Accuracy" is the task's score (``score_name`` in the report): top-1 accuracy for
classifiers, next-token accuracy for language models, the cosine to the reference for
sentence encoders; the check's text names it. Tasks without classes (language models,
encoders) have no per-class drop, and ``--max-class-drop`` says so.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ConfigError, FormatError
from ..tasks.base import score_label


@dataclass(frozen=True)
class Budget:
    """One budget: its CLI flag, the report keys it may read (first found wins), how the
    value compares with the limit, and the unit it is printed in."""

    name: str
    flag: str
    keys: tuple[str, ...]
    upper: bool  # True: value must be <= limit; False: value must be >= limit
    unit: str
    label: str


BUDGETS: dict[str, Budget] = {
    "max_acc_drop": Budget("max_acc_drop", "--max-acc-drop", ("accuracy_drop_pp",), True, "pp",
                           "accuracy drop"),
    "min_ratio": Budget("min_ratio", "--min-ratio", ("compression_ratio",), False, "×",
                        "compression ratio"),
    "max_latency_ms": Budget("max_latency_ms", "--max-latency-ms", ("latency_ms.batch1_p50",), True,
                             "ms", "latency batch-1 p50"),
    "max_class_drop": Budget("max_class_drop", "--max-class-drop",
                             ("behaviour.max_class_drop_pp", "max_class_drop_pp"), True, "pp",
                             "largest class drop"),
}


@dataclass(frozen=True)
class Check:
    """The outcome of one budget: the report's ``value``, the ``limit``, whether it held,
    and a one-line ``text`` for people."""

    name: str
    value: float
    limit: float
    passed: bool
    text: str

    def as_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def load_report(path: str | os.PathLike) -> dict:
    """Read a report (``report.json``, or a run folder holding one) as a dict.

    Example:
        >>> load_report("missing.json")
        Traceback (most recent call last):
        ...
        netpress.errors.FormatError: report not found: missing.json; ...
    """
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    if not p.is_file():
        raise FormatError(f"report not found: {p}; write one with `netpress compress --run-dir DIR` "
                          "(DIR/report.json) or `netpress report DIR`")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise FormatError(f"{p} is not UTF-8 text ({e}); give the report.json of a run") from e
    except json.JSONDecodeError as e:
        raise FormatError(f"{p} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                          "give the report.json of a run") from e
    if not isinstance(obj, dict):
        raise FormatError(f"{p} holds a JSON {type(obj).__name__}, not an object; "
                          "give the report.json of a run")
    return obj


def _lookup(report: dict, dotted: str) -> tuple[bool, object]:
    node: object = report
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def report_value(report: dict, budget: Budget) -> float:
    """The number ``budget`` reads from ``report``; FormatError if absent or not a number.

    Example:
        >>> report_value({"compression_ratio": 12.5}, BUDGETS["min_ratio"])
        12.5
    """
    for key in budget.keys:
        found, value = _lookup(report, key)
        if not found:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise FormatError(f"report key {key} is {value!r}, not a number; {budget.flag} "
                              "cannot be checked against it")
        return float(value)
    kind = report.get("task") or (report.get("behaviour") or {}).get("task")
    if budget.name == "max_class_drop" and kind in ("causal-lm", "embedding"):
        raise FormatError(f"a {kind} model has no classes, so {budget.flag} cannot be checked; "
                          "drop it (gate --max-acc-drop on the task's score instead)")
    raise FormatError(f"report has no {' or '.join(budget.keys)}, which {budget.flag} needs; "
                      "gate the report.json of a finished `netpress compress` run"
                      + (" (with behaviour validation)" if budget.name == "max_class_drop" else ""))


def _check_limit(budget: Budget, limit: float) -> float:
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit):
        raise ConfigError(f"{budget.flag} must be a finite number, got {limit!r}")
    if budget.name in ("min_ratio", "max_latency_ms") and limit <= 0:
        raise ConfigError(f"{budget.flag} must be > 0, got {limit}")
    return float(limit)


def check_budgets(
    report: dict,
    max_acc_drop: float | None = None,
    min_ratio: float | None = None,
    max_latency_ms: float | None = None,
    max_class_drop: float | None = None,
) -> list[Check]:
    """One ``Check`` per budget given, in the order above.

    Accuracy and class drops are percentage points (a positive drop is a loss); the
    ratio is baseline bytes / artifact bytes; latency is the batch-1 median in ms.

    Example:
        >>> [c.passed for c in check_budgets({"accuracy_drop_pp": 0.3, "compression_ratio": 8.0},
        ...                                  max_acc_drop=0.5, min_ratio=10)]
        [True, False]
    """
    limits = {"max_acc_drop": max_acc_drop, "min_ratio": min_ratio,
              "max_latency_ms": max_latency_ms, "max_class_drop": max_class_drop}
    asked = {k: v for k, v in limits.items() if v is not None}
    if not asked:
        raise ConfigError("no budget given; pass at least one of "
                          + ", ".join(b.flag for b in BUDGETS.values()))
    checks = []
    for name, raw in asked.items():
        budget = BUDGETS[name]
        limit = _check_limit(budget, raw)
        value = report_value(report, budget)
        passed = value <= limit if budget.upper else value >= limit
        op = ("<=" if passed else ">") if budget.upper else (">=" if passed else "<")
        fmt = ".1f" if budget.name == "min_ratio" else ".3f" if budget.name == "max_latency_ms" \
            else ".2f"
        label = budget.label
        if name == "max_acc_drop" and report.get("score_name") not in (None, "accuracy"):
            label = f"{score_label(report['score_name'])} drop"
        text = (f"{'PASS' if passed else 'FAIL'}  {label}: {value:{fmt}} {budget.unit} "
                f"{op} {limit:g} {budget.unit} ({budget.flag})")
        checks.append(Check(name, value, limit, passed, text))
    return checks


def verdict(checks: list[Check]) -> str:
    """The final line: PASS when every budget holds, else which ones broke.

    Example:
        >>> verdict([Check("min_ratio", 8.0, 10.0, False, "")])
        'gate: FAIL, 1 of 1 budgets broken (min_ratio)'
    """
    failed = [c.name for c in checks if not c.passed]
    if not failed:
        return f"gate: PASS, all {len(checks)} budgets hold"
    return f"gate: FAIL, {len(failed)} of {len(checks)} budgets broken ({', '.join(failed)})"
