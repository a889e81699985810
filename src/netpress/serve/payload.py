"""Parse and check a predict request; every problem is a ``BadRequest`` with a 4xx status.

The body is JSON::

    {"inputs": [[...]],                 # one input: nested lists, batch first
     "inputs": {"input_ids": [[...]], "attention_mask": [[...]]},   # or by input name
     "dtype": "float32",                 # optional: must be the model's input dtype
     "latency_budget_ms": 5.0,           # optional: pick a variant that answers in time
     "variant": "int8"}                  # optional: ask for one variant by name

Checks, in order: body size (413), JSON (400), fields (422), per input the dtype and the
shape against the model's graph (422), examples per request (413).

Example:
    >>> spec = {"x": {"shape": ["batch", 4], "dtype": "float32"}}
    >>> parse(b'{"inputs": [[1, 2, 3, 4]]}', spec, 1 << 20, 8).feeds["x"].shape
    (1, 4)
    >>> parse(b'{"inputs": [[1, 2]]}', spec, 1 << 20, 8)
    Traceback (most recent call last):
    ...
    netpress.serve.payload.BadRequest: input x has shape (1, 2); the model takes (batch, 4)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

FIELDS = ("inputs", "dtype", "latency_budget_ms", "variant")


class BadRequest(Exception):
    """A request the server refuses: ``status`` (4xx), ``reason`` (a metric label), message."""

    def __init__(self, message: str, status: int = 422, reason: str = "invalid"):
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass
class Request:
    """A checked request: arrays by input name (batch first) and the routing fields."""

    feeds: dict[str, np.ndarray]
    n: int
    budget_ms: float | None
    variant: str | None


def _dims(shape: list) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _array(name: str, value, spec: dict, asked: str | None) -> np.ndarray:
    want = np.dtype(spec["dtype"])
    if asked is not None and asked != want.name:
        raise BadRequest(f"dtype is {asked}, the model's input {name} takes {want.name}",
                         reason="dtype")
    try:
        a = np.asarray(value)
    except ValueError as e:  # ragged lists
        raise BadRequest(f"input {name} is not a rectangular array of numbers ({e})",
                         reason="shape") from e
    if a.dtype == object:
        raise BadRequest(f"input {name} is not a rectangular array of numbers", reason="shape")
    if a.dtype.kind not in "iuf":
        what = "booleans" if a.dtype.kind == "b" else "non-numbers"
        raise BadRequest(f"input {name} holds {what} ({a.dtype}); the model takes {want.name} "
                         "numbers", reason="dtype")
    if want.kind in "iu" and a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise BadRequest(f"input {name} holds fractional numbers; the model takes {want.name}",
                             reason="dtype")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise BadRequest(f"input {name} holds NaN or infinity", reason="dtype")
    shape = spec["shape"]
    ok = a.ndim == len(shape) and all(isinstance(d, str) or d <= 0 or d == s
                                      for d, s in zip(shape, a.shape, strict=False))
    if not ok:
        hint = " (send a batch: one more [] around a single example)" \
            if a.ndim == len(shape) - 1 else ""
        raise BadRequest(f"input {name} has shape {_dims(list(a.shape))}; the model takes "
                         f"{_dims(shape)}{hint}", reason="shape")
    if a.shape[0] == 0:
        raise BadRequest(f"input {name} has no examples", reason="shape")
    return np.ascontiguousarray(a.astype(want, copy=False))


def parse(body: bytes, inputs: dict[str, dict], max_body: int, max_examples: int) -> Request:
    """Check ``body`` against the model's ``inputs`` (``runtime.Model.inputs``)."""
    if len(body) > max_body:
        raise BadRequest(f"request body is {len(body):,} bytes, more than the server's limit of "
                         f"{max_body:,}; send fewer examples per request", 413, "too_large")
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadRequest(f"request body is not valid JSON ({e})", 400, "bad_json") from e
    if not isinstance(obj, dict) or "inputs" not in obj:
        raise BadRequest('request body must be a JSON object with "inputs"', 422, "fields")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown fields {unknown}; known: {', '.join(FIELDS)}", 422, "fields")
    budget = obj.get("latency_budget_ms")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float)
                               or not math.isfinite(budget) or budget <= 0):
        raise BadRequest(f"latency_budget_ms must be a positive number, got {budget!r}", 422,
                         "fields")
    variant = obj.get("variant")
    if variant is not None and not isinstance(variant, str):
        raise BadRequest("variant must be a name", 422, "fields")
    asked = obj.get("dtype")
    if asked is not None and not isinstance(asked, str):
        raise BadRequest("dtype must be a string such as float32", 422, "dtype")
    raw = obj["inputs"]
    names = list(inputs)
    if isinstance(raw, dict):
        missing = [n for n in names if n not in raw]
        extra = sorted(set(raw) - set(names))
        if missing or extra:
            raise BadRequest(f"the model takes inputs {names}; missing {missing}, unknown {extra}",
                             422, "fields")
        values = [raw[n] for n in names]
    elif len(names) == 1:
        values = [raw]
    else:
        raise BadRequest(f"the model takes {len(names)} inputs; send \"inputs\" as an object "
                         f"with keys {names}", 422, "fields")
    feeds = {n: _array(n, v, inputs[n], asked) for n, v in zip(names, values, strict=True)}
    counts = {len(a) for a in feeds.values()}
    if len(counts) != 1:
        raise BadRequest(f"inputs have different numbers of examples {sorted(counts)}", 422, "shape")
    n = counts.pop()
    if n > max_examples:
        raise BadRequest(f"{n} examples in one request, more than the server's limit of "
                         f"{max_examples}; split the request", 413, "too_large")
    return Request(feeds, n, None if budget is None else float(budget), variant)
