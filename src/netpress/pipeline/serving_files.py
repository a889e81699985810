"""What a run folder needs for serving: the fp32 baseline as an artifact and a drift reference.

``netpress compress`` writes, next to ``model.netpress``:

- ``baseline.netpress``: the uncompressed baseline in the same format, which
  ``netpress serve --baseline`` runs in shadow mode (torch-free, like the artifact);
- ``reference.json``: the input and output statistics of the calibration split (the
  artifact's outputs, run in netpress's runtime), which the server's drift monitor tests
  live traffic against (``netpress.serve.drift``). Only for models with one float input
  (images); for token inputs the file is not written and the server says so.

Example:
    >>> write_serving_files(Path("runs/dc"), baseline, "lenet-300-100", artifact, task)  # doctest: +SKIP
    {'baseline': 'runs/dc/baseline.netpress', 'reference': 'runs/dc/reference.json'}
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..encode.artifact import artifact_bytes
from ..io import write_bytes, write_json
from ..runtime.model import Model
from ..serve.drift import build_reference

MAX_REFERENCE = 2048  # calibration examples summarised in reference.json


def calibration_inputs(task, limit: int = MAX_REFERENCE) -> np.ndarray | None:
    """Up to ``limit`` calibration inputs as one float32 array, or None for token inputs.

    Example:
        >>> calibration_inputs(task).shape  # doctest: +SKIP
        (256, 1, 28, 28)
    """
    out, n = [], 0
    for batch in task.loader("calib", 256):
        x = batch[0] if isinstance(batch, tuple | list) else batch
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            return None
        out.append(x.detach().float().numpy())
        n += len(x)
        if n >= limit:
            break
    return np.concatenate(out)[:limit] if out else None


def write_serving_files(folder: Path, baseline: nn.Module, spec: str, artifact: bytes,
                        task) -> dict[str, str | None]:
    """Write ``baseline.netpress`` and (for float inputs) ``reference.json`` into ``folder``."""
    example = task.example_inputs(1, "test")
    write_bytes(folder / "baseline.netpress", artifact_bytes(baseline, spec, example=example))
    out: dict[str, str | None] = {"baseline": str(folder / "baseline.netpress"), "reference": None}
    x = calibration_inputs(task)
    if x is not None:
        model = Model(artifact, threads=2)
        y = np.concatenate([model.run(x[i:i + 256]) for i in range(0, len(x), 256)])
        write_json(folder / "reference.json", build_reference(x, y))
        out["reference"] = str(folder / "reference.json")
    return out
