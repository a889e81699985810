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
from .errors import ModelError
from .evaluate.metrics import EvalResult, evaluate_logits
from .io import load_into, load_weights, save_weights
from .profile.record import measure
from .tasks.base import Task, TaskResult
from .tasks.classification import ImageClassification, as_task
from .train import TrainResult, fit
from .train_text import train_text
from .zoo import build_model, zoo_entry


def load_model(spec: str, weights: str | Path | None = None, task: str | None = None) -> nn.Module:
    """Build ``spec`` (zoo name, ``hf:DIR`` or ``package.module:factory``) and load safetensors
    weights.

    For ``hf:DIR``, ``task`` loads the folder for that task (embedding, text-classification,
    causal-lm); a weights file written by ``netpress train`` or a compress run says itself
    which task and head it holds (its ``netpress.edits`` metadata), and ``task``, when given,
    must agree with it.

    Example:
        >>> m = load_model("lenet-300-100")
        >>> type(m).__name__
        'Sequential'
    """
    if weights is not None:
        # files written after shape-changing techniques (low-rank, students, tying) or with a
        # fresh head carry their architecture edits; rebuild the edited model, not the plain one
        from .techniques.edits import EDITS_KEY, load_edited, read_metadata

        meta = read_metadata(weights)
        if EDITS_KEY in meta:  # structured-only files keep their own path below
            model = load_edited(weights, spec)
            _check_task(model, task, str(weights))
            return model
    model = build_model(spec, task=task) if spec.startswith("hf:") else build_model(spec)
    if weights is not None:
        state = load_weights(weights)
        from .techniques.prune.resize import is_structured, resize_to_state
        from .zoo.hf_state import load_state, tied_names

        if is_structured(weights):  # channels were removed: shrink the layers to fit
            resize_to_state(model, state)
        if tied_names(model):  # tied tensors (GPT-2's lm_head) may be stored once
            load_state(model, state, source=str(weights))
        else:
            load_into(model, state, source=str(weights))
    model.eval()
    return model


def _check_task(model: nn.Module, task: str | None, source: str) -> None:
    own = getattr(getattr(model, "hf_info", None), "task", None)
    if task is not None and own is not None and task != own:
        raise ModelError(f"{source} holds a {own} model, not {task}; drop --task or pass --task {own}")


def train(
    spec: str,
    split: Split | Task,
    epochs: int | None = None,
    seed: int = 0,
    lr: float | None = None,
    batch_size: int | None = None,
    out: str | Path | None = None,
    threads: int = 2,
) -> tuple[nn.Module, TrainResult]:
    """Train a model on ``split``; save it to ``out`` if given.

    Image models (a ``Split``, or an image-classification task) are trained from scratch;
    defaults for epochs and learning rate come from the zoo entry (10 and 1e-3 for a user
    factory), batches are 128. A text task (``load_task("hf:DIR", "text:…")``) fine-tunes
    the folder's model for that task with the task's loss: a headless encoder gets a fresh
    classification head with one output per class of the data, a language model trains on
    next tokens (``train_text``).

    Example:
        >>> from netpress.data import load_split
        >>> m, r = train("lenet-300-100", load_split("digits"), epochs=1)  # doctest: +SKIP
    """
    if isinstance(split, Task) and not isinstance(split, ImageClassification):
        return train_text(spec, split, epochs=epochs, seed=seed, lr=lr, batch_size=batch_size,
                          out=out, threads=threads)
    split = split.split if isinstance(split, Task) else split
    batch_size = batch_size if batch_size is not None else 128
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


__all__ = ["bake", "compress", "evaluate", "load_model", "profile", "train", "train_text"]
