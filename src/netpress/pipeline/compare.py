"""``netpress compare``: every technique alone, at a short ladder of standard settings,
measured on the user's own model (the seed's technique comparison table).

Each rung runs on a fresh copy of the baseline and is written to a real file: the
``.netpress`` artifact where the artifact stores the result (weight sharing), otherwise the
file of the deployed form (CSR safetensors for pruning, packed codes for weight-only
quantization, fp32 safetensors of the factorized model for low-rank). The figures are
those of the model read back from that file: validation accuracy (the budget is checked
on it, as in ``netpress search``), test accuracy, and batch-1 latency in torch eager.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..api import evaluate
from ..bake import bake
from ..config import Config, apply
from ..context import Context
from ..encode.artifact import artifact_bytes, baked_state, decode_artifact, model_from_artifact
from ..io import file_size, load_into, save_weights, write_bytes, write_json
from ..techniques.cluster.share import WeightShare
from ..techniques.lowrank import LowRank
from ..techniques.prune.schedule import GradualPrune
from ..techniques.prune.storage import load_sparse, save_sparse
from ..techniques.quantize import WeightOnly
from ..techniques.quantize.storage import load_packed, save_packed
from ..zoo import build_model
from .measure import batch1_latency_ms

SOURCES = {"artifact": ".netpress artifact", "sparse": "CSR safetensors (prune/storage)",
           "packed": "packed-code safetensors (quantize/storage)",
           "safetensors": "fp32 safetensors of the factorized model"}


@dataclass(frozen=True)
class Rung:
    """One setting of one technique: a label, its config for ``epochs``, the file kind.

    Example:
        >>> LADDER[0].technique, LADDER[0].settings
        ('pruning', 'sparsity 50%, gradual + fine-tune')
    """

    technique: str
    settings: str
    make: Callable[[int], Config]
    form: str  # a key of SOURCES


def _share(b: int) -> Rung:
    return Rung("weight sharing", f"{b} bits (k-means, codebook fine-tune)",
                lambda e: WeightShare(bits=b, conv_bits=b, finetune_epochs=e, lr=3e-4), "artifact")


LADDER: tuple[Rung, ...] = (
    *(Rung("pruning", f"sparsity {round(s * 100)}%, gradual + fine-tune",
           lambda e, s=s: GradualPrune(sparsity=s, epochs=e, lr=1e-3), "sparse")
      for s in (0.5, 0.75, 0.9, 0.95)),
    *(_share(b) for b in (8, 5, 4, 3)),
    *(Rung("low-rank", f"SVD/Tucker-2 energy {en:g}, fine-tune",
           lambda e, en=en: LowRank(energy=en, finetune_epochs=e, lr=1e-3), "safetensors")
      for en in (0.9, 0.75)),
    *(Rung("weight-only quantization", f"int{b} per-channel GPTQ",
           lambda e, b=b: WeightOnly(bits=b, group_size=0, method="gptq"), "packed")
      for b in (8, 4)),
)


def _deployed(model: nn.Module, form: str, spec: str, path: Path,
              example=None) -> tuple[int, nn.Module]:
    """Write ``model`` in its deployed form to ``path``; (file bytes, model read back)."""
    if form == "artifact":
        data = artifact_bytes(model, spec, coder="auto", index="auto", example=example)
        write_bytes(path, data)
        return len(data), model_from_artifact(*decode_artifact(data))
    if form == "sparse":
        size = save_sparse(baked_state(model), path)
        return size, load_into(build_model(spec), load_sparse(path), source=str(path)).eval()
    if form == "packed":
        save_packed(model, path)
        return file_size(path), bake(load_packed(build_model(spec), path)).eval()
    baked = bake(model).eval()
    save_weights(baked, path)
    return file_size(path), baked


def _suffix(form: str) -> str:
    return ".netpress" if form == "artifact" else ".safetensors"


def compare_techniques(model: nn.Module, spec: str, ctx: Context, out_dir: str | Path,
                       epochs: int = 1, max_acc_drop: float = 0.5, threads: int = 2,
                       ladder: tuple[Rung, ...] = LADDER,
                       progress: Callable[[str], None] | None = None) -> dict:
    """Run every rung of ``ladder`` alone on a copy of ``model``; the compare.json dict.

    Example:
        >>> out = compare_techniques(model, "lenet-300-100", Context(split), "run")  # doctest: +SKIP
        >>> out["best_single"]["technique"]  # doctest: +SKIP
        'weight sharing'
    """
    say = progress or (lambda s: None)
    out_dir = Path(out_dir)
    files = out_dir / "compare"
    files.mkdir(parents=True, exist_ok=True)
    base = copy.deepcopy(model).eval()
    base_val = ctx.evaluate(base)
    base_test = evaluate(base, ctx.task).accuracy
    base_size = 4 * sum(p.numel() for p in base.parameters())
    example = ctx.task.example_inputs(1, "val")
    base_file = save_weights(base, files / "baseline.safetensors")
    rows = [{"technique": "baseline", "settings": "fp32", "size_bytes": file_size(base_file),
             "size_source": "fp32 safetensors", "file": str(base_file),
             "compression_ratio": base_size / file_size(base_file), "accuracy": base_val,
             "accuracy_drop_pp": 0.0, "test_accuracy": base_test, "test_drop_pp": 0.0,
             "latency_ms": batch1_latency_ms(base, example, threads), "within_budget": True,
             "seconds": 0.0}]
    for i, rung in enumerate(ladder):
        say(f"compare {i + 1}/{len(ladder)}: {rung.technique}, {rung.settings}")
        t0 = time.perf_counter()
        cfg = rung.make(epochs)
        work = apply(copy.deepcopy(base), cfg, ctx)
        path = files / f"{i:02d}-{rung.technique.replace(' ', '-')}{_suffix(rung.form)}"
        size, deployed = _deployed(work, rung.form, spec, path, ctx.task.example_inputs(1, "test"))
        acc = ctx.evaluate(deployed)
        test = evaluate(deployed, ctx.task).accuracy
        drop = (base_val - acc) * 100
        rows.append({"technique": rung.technique, "settings": rung.settings,
                     "config": cfg.to_dict(), "size_bytes": size,
                     "size_source": SOURCES[rung.form], "file": str(path),
                     "compression_ratio": base_size / size, "accuracy": acc,
                     "accuracy_drop_pp": drop, "test_accuracy": test,
                     "test_drop_pp": (base_test - test) * 100,
                     "latency_ms": batch1_latency_ms(deployed, example, threads),
                     "within_budget": drop <= max_acc_drop,
                     "seconds": time.perf_counter() - t0})
    best_per: dict[str, dict | None] = {}
    for r in rows[1:]:
        cur = best_per.get(r["technique"])
        if r["within_budget"] and (cur is None or r["size_bytes"] < cur["size_bytes"]):
            best_per[r["technique"]] = r
        else:
            best_per.setdefault(r["technique"], None)
    ok = [r for r in best_per.values() if r is not None]
    best = min(ok, key=lambda r: (r["size_bytes"], -r["accuracy"])) if ok else None
    result = {"version": 1, "kind": "compare", "model": spec, "data": ctx.data_name,
              "seed": ctx.seed, "threads": threads, "epochs": epochs,
              "max_acc_drop_pp": max_acc_drop, "baseline_val_accuracy": base_val,
              "baseline_test_accuracy": base_test, "baseline_size_bytes": base_size,
              "baseline_size_note": "fp32 weights: 4 bytes per parameter; compression_ratio is "
                                    "this over size_bytes",
              "accuracy_note": "accuracy and accuracy_drop_pp are validation figures (the "
                               "budget is checked on them); test_* are held-out test figures",
              "rows": rows,
              "most_compressed_within_budget": {k: (v and v["settings"])
                                                for k, v in best_per.items()},
              "best_single": best}
    write_json(out_dir / "compare.json", result)
    return result
