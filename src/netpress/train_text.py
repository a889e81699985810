"""Fine-tune a Hugging Face model on a text task: ``netpress train --model hf:DIR --data text:…``.

Text classification starts from the folder's classifier or, for a headless encoder such as
all-MiniLM-L6-v2, from the encoder with a fresh head of one output per class of the data
(drawn from the seed); a causal language model trains on next tokens. The loop is
``train.fit`` with the task's loss (Adam, cosine schedule, seeded order), and after each
epoch the task's validation score is recorded. The saved safetensors file holds every
tied tensor once and, in its metadata, the model's edits (``netpress.edits``: the fresh
head as an ``hf_task`` edit, see ``zoo.hf_task``), so ``load_model("hf:DIR", file)``
rebuilds the same model; ``task``, ``num_labels``, ``data``, ``seed``, ``epochs`` and ``lr``
are recorded for people. The same command with the same seed writes the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import ConfigError
from .tasks.base import Task
from .train import TrainResult, fit

# task -> (epochs, Adam learning rate, batch size) when the caller gives none
TEXT_DEFAULTS = {"text-classification": (3, 1e-4, 32), "causal-lm": (3, 5e-4, 32)}
TRAINED_BY = "netpress train"


def train_text(spec: str, task: Task, epochs: int | None = None, seed: int = 0,
               lr: float | None = None, batch_size: int | None = None,
               out: str | Path | None = None, threads: int = 2) -> tuple[nn.Module, TrainResult]:
    """Fine-tune folder ``spec`` (``hf:DIR``) on ``task``; save to ``out`` if given.

    Defaults (``TEXT_DEFAULTS``): 3 epochs, batches of 32, learning rate 1e-4 for
    classification and 5e-4 for language models (a tiny LM trained from scratch learns
    faster at 1e-3; a pretrained one wants 5e-5).

    Example:
        >>> from netpress.tasks.build import TextOptions, load_task
        >>> task = load_task("hf:tiny-lm", "text:fortunes", text=TextOptions(max_texts=500))  # doctest: +SKIP
        >>> model, result = train_text("hf:tiny-lm", task, epochs=1)  # doctest: +SKIP
    """
    from .techniques.edits import save_edited
    from .zoo.hf_task import text_model

    if task.kind not in TEXT_DEFAULTS:
        raise ConfigError(f"netpress train fits text-classification and causal-lm models, not "
                          f"{task.kind} (a sentence encoder's targets are its own embeddings); "
                          "pass --task text-classification with labelled data or --task causal-lm")
    d_epochs, d_lr, d_batch = TEXT_DEFAULTS[task.kind]
    epochs = d_epochs if epochs is None else epochs
    lr = d_lr if lr is None else lr
    batch_size = d_batch if batch_size is None else batch_size
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ConfigError(f"epochs ({epochs}) and batch size ({batch_size}) must be >= 1 and the "
                          f"learning rate ({lr}) > 0")
    num_labels = task.num_classes if task.classes else None
    torch.manual_seed(seed)
    model = text_model(spec, task.kind, num_labels)
    loader = task.loader("train", batch_size, shuffle=True, seed=seed)
    result = fit(model, loader, epochs, lr=lr, seed=seed, loss_fn=task.loss, threads=threads,
                 description=f"train {task.kind}", val_fn=lambda m: task.score(m, "val"))
    if out is not None:
        meta = {"data": task.name, "seed": str(seed), "epochs": str(epochs), "lr": repr(lr),
                "batch_size": str(batch_size), "task": task.kind, "trained_by": TRAINED_BY}
        if num_labels is not None:
            meta["num_labels"] = str(num_labels)
        save_edited(model, out, spec, meta)
    return model.eval(), result


__all__ = ["TEXT_DEFAULTS", "TRAINED_BY", "train_text"]
