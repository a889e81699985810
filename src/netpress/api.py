"""The public verbs: build/load a model, train, profile, evaluate, compress, bake.

Thin: each calls the room that does the work.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .bake import bake
from .config import Config, apply
from .context import Context
from .data.loaders import ArrayLoader
from .data.splits import Split
from .evaluate.metrics import EvalResult, evaluate_logits
from .io import load_into, load_weights, save_weights
from .profile.record import measure
from .tasks.base import Task, TaskResult
from .tasks.classification import as_task
from .train import TrainResult, fit
from .zoo import build_model, zoo_entry


def load_model(spec: str, weights: str | Path | None = None) -> nn.Module:
    """Build ``spec`` (zoo name or ``package.module:factory``) and load safetensors weights.

    Example:
        >>> m = load_model("lenet-300-100")
        >>> type(m).__name__
        'Sequential'
    """
    if weights is not None:
        # files written after shape-changing techniques (low-rank, students, tying) carry
        # their architecture edits; rebuild the edited model rather than the plain one
        from .techniques.edits import EDITS_KEY, load_edited, read_metadata

        meta = read_metadata(weights)
        if EDITS_KEY in meta:  # structured-only files keep their own path below
            return load_edited(weights, spec)
    model = build_model(spec)
    if weights is not None:
        state = load_weights(weights)
        from .techniques.prune.resize import is_structured, resize_to_state

        if is_structured(weights):  # channels were removed: shrink the layers to fit
            resize_to_state(model, state)
        load_into(model, state, source=str(weights))
    model.eval()
    return model


def train(
    spec: str,
    split: Split,
    epochs: int | None = None,
    seed: int = 0,
    lr: float | None = None,
    batch_size: int = 128,
    out: str | Path | None = None,
    threads: int = 2,
) -> tuple[nn.Module, TrainResult]:
    """Train a model from scratch on ``split``; save it to ``out`` if given.

    Defaults for epochs and learning rate come from the zoo entry (10 and 1e-3 for a
    user factory).

    Example:
        >>> from netpress.data import load_split
        >>> m, r = train("lenet-300-100", load_split("digits"), epochs=1)  # doctest: +SKIP
    """
    entry = zoo_entry(spec)
    epochs = epochs if epochs is not None else (entry.epochs if entry else 10)
    lr = lr if lr is not None else (entry.lr if entry else 1e-3)
    torch.manual_seed(seed)
    model = build_model(spec)
    loader = ArrayLoader(*split.train, batch_size=batch_size, shuffle=True, seed=seed)
    val = ArrayLoader(*split.val, batch_size=1000)
    result = fit(model, loader, epochs, lr=lr, seed=seed, val_loader=val, threads=threads,
                 description=f"train {spec}")
    if out is not None:
        save_weights(model, out, {"model": spec, "data": split.name, "seed": str(seed),
                                  "epochs": str(epochs)})
    return model, result


def profile(model: nn.Module, data: Task | Split, name: str = "model", **kw) -> dict:
    """Measure ``model`` alone: the record of DESIGN.md with itself as baseline."""
    return measure(model, data, name, **kw)


def evaluate(
    model: nn.Module, data: Task | Split, reference: nn.Module | None = None, part: str = "test"
) -> EvalResult | TaskResult:
    """The task's metrics on ``part`` and, with ``reference``, the comparison with it.

    Classifiers give an ``EvalResult`` (top-1/top-5/per-class accuracy; agreement and KL
    with a reference); other tasks a ``TaskResult`` (its score — cosine for embeddings,
    next-token accuracy for language models — metrics and comparison). Both have
    ``accuracy`` (the score), ``n`` and ``as_dict()``.

    Example:
        >>> from netpress.data import load_split
        >>> evaluate(load_model("lenet5"), load_split("digits")).n
        300
    """
    task = as_task(data)
    if not task.classes:
        return task.evaluate(model, part, reference)
    logits, labels = task.predict(model, part)
    ref = task.predict(reference, part)[0] if reference is not None else None
    return evaluate_logits(logits, labels, task.num_classes, ref)


def compress(model: nn.Module, stages: Sequence[Config], ctx: Context) -> nn.Module:
    """Apply technique configs in order; each stage sees only the model and ``ctx``."""
    for cfg in stages:
        model = apply(model, cfg, ctx)
    return model


__all__ = ["bake", "compress", "evaluate", "load_model", "profile", "train"]
