"""Stage checkpoints of a recipe run: the baked model after each stage, and its record.

A checkpoint is a safetensors file holding the baked weights (every tied tensor once)
with the model's structure in the metadata: the architecture edits (low-rank, students,
tying) and whether structured pruning shrank layers. ``load_checkpoint`` rebuilds the
model from the spec, that structure and the weights. Next to it, ``stage-NN.json`` holds
what the stage measured and the SHA-256 of the checkpoint; it is written after the
checkpoint, so a record on disk always names a complete checkpoint (both writes are
atomic). The runner hands the next stage the model rebuilt this way even when it was
never interrupted, so a resumed run and an uninterrupted one see the same model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from torch import nn

from ..encode.artifact import baked_parts
from ..io import WEIGHTS_FORMAT, safetensors_bytes, write_bytes, write_json
from ..techniques.edits import EDITS_KEY, load_edited, rebuild
from ..techniques.prune.resize import STRUCTURED_KEY, STRUCTURED_VALUE


def checkpoint_path(run_dir: Path, stage: int) -> Path:
    """``checkpoints/stage-NN.safetensors`` (stage 0 is the baseline).

    Example:
        >>> checkpoint_path(Path("run"), 3).name
        'stage-03.safetensors'
    """
    return run_dir / "checkpoints" / f"stage-{stage:02d}.safetensors"


def record_path(run_dir: Path, stage: int) -> Path:
    """``checkpoints/stage-NN.json``, the record written after the checkpoint."""
    return run_dir / "checkpoints" / f"stage-{stage:02d}.json"


def checkpoint_bytes(state: dict, structure: dict, spec: str) -> bytes:
    """The safetensors bytes of a checkpoint (deterministic)."""
    meta = {"format": WEIGHTS_FORMAT, "model": spec,
            EDITS_KEY: json.dumps(structure["edits"], sort_keys=True, separators=(",", ":"))}
    if structure["resized"]:
        meta[STRUCTURED_KEY] = STRUCTURED_VALUE
    return safetensors_bytes(state, meta)


def reload(model: nn.Module, spec: str) -> tuple[nn.Module, bytes]:
    """The model as a checkpoint would give it back, and the checkpoint's bytes.

    Example:
        >>> from netpress.zoo import build_model
        >>> m, data = reload(build_model("lenet5"), "lenet5")
        >>> data[8:9]
        b'{'
    """
    state, structure = baked_parts(model, spec)
    return rebuild(spec, structure, state, source="checkpoint"), checkpoint_bytes(state, structure,
                                                                                   spec)


def save_checkpoint(run_dir: Path, stage: int, data: bytes, record: dict) -> None:
    """Write the checkpoint bytes, then its record with their SHA-256 (both atomic)."""
    write_bytes(checkpoint_path(run_dir, stage), data)
    write_json(record_path(run_dir, stage), {**record, "sha256": hashlib.sha256(data).hexdigest()})


def load_checkpoint(path: Path, spec: str) -> nn.Module:
    """Rebuild the model saved in checkpoint ``path`` (``edits.load_edited``).

    Example:
        >>> model = load_checkpoint(Path("run/checkpoints/stage-02.safetensors"), "lenet5")  # doctest: +SKIP
    """
    return load_edited(path, spec)


def last_complete(run_dir: Path, stages: int) -> tuple[int, list[dict]]:
    """The last stage whose checkpoint and record are both complete and agree, and the
    records of stages 1..that one. ``(-1, [])`` when not even the baseline is there.

    Example:
        >>> last_complete(Path("no-such-run"), 4)
        (-1, [])
    """
    done, records = -1, []
    for i in range(stages + 1):
        rec_file, ckpt = record_path(run_dir, i), checkpoint_path(run_dir, i)
        if not (rec_file.is_file() and ckpt.is_file()):
            break
        try:
            rec = json.loads(rec_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            break
        if rec.get("sha256") != hashlib.sha256(ckpt.read_bytes()).hexdigest():
            break
        done = i
        if i:
            records.append({k: v for k, v in rec.items() if k != "sha256"})
    return done, records


def remove_stale_temps(run_dir: Path) -> int:
    """Delete temp files an interrupted atomic write left (``.name.XXXX.tmp``); returns
    how many. The files they were meant to replace are untouched."""
    n = 0
    for folder in (run_dir, run_dir / "checkpoints"):
        if folder.is_dir():
            for p in folder.glob(".*.tmp"):
                p.unlink()
                n += 1
    return n


def model_from_bytes(data: bytes, spec: str) -> nn.Module:
    """Rebuild the model of checkpoint bytes (what ``reload`` returns) without a file:
    how the other ranks of a distributed run take rank 0's model after a stage.

    Example:
        >>> from netpress.zoo import build_model
        >>> m, data = reload(build_model("lenet5"), "lenet5")
        >>> type(model_from_bytes(data, "lenet5")).__name__
        'LeNet5'
    """
    from safetensors.torch import load

    n = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8:8 + n]).get("__metadata__", {})
    structure = {"edits": json.loads(meta.get(EDITS_KEY, "[]")),
                 "resized": meta.get(STRUCTURED_KEY) == STRUCTURED_VALUE}
    return rebuild(spec, structure, load(data), source="checkpoint")
