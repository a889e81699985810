"""The Task: the one door between techniques and data.

A technique never knows whether it compresses an image classifier, a sentence encoder
or a language model. It asks the task (through ``ctx.task``) for batches of a part
(train / val / calib / test), runs the model with ``forward``, trains with ``loss``,
distils with ``distill_loss``, compares with ``divergence`` and decides with ``score``
(higher is better, a fraction so drops read in percentage points). Inputs may be a
tensor or a dict of tensors (``netpress.batches``); targets are always one tensor per
example (labels, the reference model's embeddings, or next-token labels).

Each task holds its data as a ``Split`` of ``(inputs, targets)`` pairs.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from ..batches import Inputs, call, take
from ..data.loaders import ArrayLoader, token_lengths, trim_padding
from ..data.splits import Split

PARTS = ("train", "val", "calib", "test")
# how tables name each task's score (``Task.score_name``); all are fractions, drops are pp
SCORE_LABELS = {"accuracy": "top-1 accuracy", "cosine": "cosine to reference",
                "token_accuracy": "next-token accuracy"}


def score_label(score_name: str | None) -> str:
    """How tables name a task's score (top-1 accuracy when a record does not say).

    Example:
        >>> score_label("token_accuracy"), score_label(None)
        ('next-token accuracy', 'top-1 accuracy')
    """
    return SCORE_LABELS.get(score_name or "accuracy", str(score_name).replace("_", " "))


@dataclass(frozen=True)
class TaskResult:
    """A model evaluated on one part: its score, the task's metrics and, with a reference
    model, the comparison (``agreement``/``kl``, ``cosine``/``recall@10``, …)."""

    score: float
    score_name: str
    n: int
    metrics: dict = field(default_factory=dict)
    comparison: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """The score (named as classifiers' results name it, so callers need not ask)."""
        return self.score

    def as_dict(self) -> dict:
        """JSON-ready dict: ``score``, ``score_name``, ``examples`` and every metric."""
        return {"score": self.score, "score_name": self.score_name, "examples": self.n,
                **self.metrics, **self.comparison}


class Task(ABC):
    """Data, forward call, loss, score and comparison of one kind of model.

    Subclasses set ``kind`` and ``score_name`` and implement ``loss_outputs``,
    ``score_outputs`` and ``compare_outputs``.
    """

    kind: ClassVar[str] = "task"
    score_name: ClassVar[str] = "score"
    classes: ClassVar[bool] = False  # True when targets are class labels
    token_targets: ClassVar[bool] = False  # True when targets are per token (next-token labels)
    target_fill: ClassVar[float] = -100  # token targets beyond a text's end
    token_eval_batch: ClassVar[int] = 128  # at most this many texts per evaluation batch

    def __init__(self, split: Split, eval_batch_size: int = 1000) -> None:
        self.split = split
        self.eval_batch_size = eval_batch_size

    # -- data -----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The data set's name (``fashion-mnist``, ``text:corpus.txt``, …)."""
        return self.split.name

    def part(self, part: str) -> tuple[Inputs, torch.Tensor]:
        """``(inputs, targets)`` of ``part``: one of train, val, calib, test."""
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}; use one of {', '.join(PARTS)}")
        return getattr(self.split, part)

    def loader(self, part: str, batch_size: int | None = None, shuffle: bool = False,
               seed: int = 0) -> ArrayLoader:
        """Batches ``(inputs, targets)`` of ``part`` (shuffled per epoch by ``seed``)."""
        x, y = self.part(part)
        bs = batch_size or self.eval_batch_size
        if token_lengths(x) is None:
            return ArrayLoader(x, y, batch_size=bs, shuffle=shuffle, seed=seed)
        # token batches: like lengths together, each cut to its longest text (see ArrayLoader)
        if not shuffle:
            bs = min(bs, self.token_eval_batch)
        return ArrayLoader.of_tokens(x, y, batch_size=bs, shuffle=shuffle, seed=seed,
                                     token_targets=self.token_targets)

    def num_examples(self, part: str) -> int:
        """Examples in ``part``."""
        return len(self.part(part)[1])

    def example_inputs(self, n: int = 1, part: str = "test") -> Inputs:
        """The first ``n`` inputs of ``part``, token inputs cut to their longest text: for
        tracing, export, counting and timing."""
        return trim_padding(take(self.part(part)[0], slice(0, n)))

    def with_part(self, part: str, inputs: Inputs, targets: torch.Tensor) -> Task:
        """A copy of this task whose ``part`` holds other data (e.g. a training subset)."""
        new = self.__class__.__new__(self.__class__)
        new.__dict__.update(self.__dict__)
        new.split = dataclasses.replace(self.split, **{part: (inputs, targets)})
        return new

    # -- model ----------------------------------------------------------------------
    def forward(self, model: nn.Module, inputs: Inputs) -> torch.Tensor:
        """The model's output for ``inputs`` (logits, embeddings, next-token logits)."""
        return call(model, inputs)

    def loss(self, model: nn.Module, inputs: Inputs, targets: torch.Tensor) -> torch.Tensor:
        """The training loss of one batch (what ``ctx.finetune`` minimises by default)."""
        return self.loss_outputs(self.forward(model, inputs), targets)

    @abstractmethod
    def loss_outputs(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss from outputs already computed."""

    @abstractmethod
    def distill_loss(self, student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor,
                     temperature: float = 1.0, alpha: float = 1.0) -> torch.Tensor:
        """Loss pulling the student's outputs to the teacher's; ``alpha`` weighs it against
        the task loss on ``targets`` (1 = teacher only)."""

    @abstractmethod
    def divergence(self, outputs: torch.Tensor, reference: torch.Tensor) -> float:
        """How far outputs are from a reference's (0 when equal; lower is closer): used by
        sensitivity sweeps and mixed precision to rank layers."""

    def output_error(self, outputs: torch.Tensor, reference: torch.Tensor) -> float:
        """Largest difference from a reference's outputs, relative to the reference's
        largest finite output (what an exported graph is checked with)."""
        finite = torch.isfinite(reference)
        if not finite.any():
            return 0.0
        scale = float(reference[finite].abs().max())
        return float((outputs - reference)[finite].abs().max() / max(scale, 1e-12))

    # -- measurement ----------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, model: nn.Module, part: str = "val",
                loader: ArrayLoader | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """All outputs (float) and targets of ``part`` with the model in eval mode."""
        was_training = model.training
        model.eval()
        loader = loader if loader is not None else self.loader(part)
        outs, ys = [], []
        for x, y in loader:
            outs.append(self.forward(model, x).float())
            ys.append(y)
        model.train(was_training)
        return loader.gather(outs), loader.gather(ys, self.target_fill)

    @torch.inference_mode()
    def runner_outputs(self, run, part: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs and targets of a deployed form ``run(inputs) -> tensor`` (ONNX Runtime,
        OpenVINO, …) over ``part``."""
        loader = self.loader(part)
        outs, ys = [], []
        for x, y in loader:
            outs.append(run(x).float())
            ys.append(y)
        return loader.gather(outs), loader.gather(ys, self.target_fill)

    @abstractmethod
    def score_outputs(self, outputs: torch.Tensor, targets: torch.Tensor) -> float:
        """The task's score (higher is better, 0..1) from collected outputs."""

    def metrics_outputs(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict:
        """Further metrics of the task (top-5, per class, perplexity…)."""
        return {}

    @abstractmethod
    def compare_outputs(self, outputs: torch.Tensor, reference: torch.Tensor) -> dict:
        """Agreement with a reference model's outputs on the same examples."""

    def score(self, model: nn.Module, part: str = "val") -> float:
        """The score on ``part`` (validation by default: the data decisions are made on)."""
        return self.score_outputs(*self.predict(model, part))

    def evaluate(self, model: nn.Module, part: str = "test",
                 reference: nn.Module | None = None) -> TaskResult:
        """Score, metrics and (with ``reference``) the comparison on ``part``."""
        out, y = self.predict(model, part)
        comparison = {}
        if reference is not None:
            comparison = self.compare_outputs(out, self.predict(reference, part)[0])
        return TaskResult(self.score_outputs(out, y), self.score_name, len(y),
                          self.metrics_outputs(out, y), comparison)

    def behaviour(self, model: nn.Module, baseline: nn.Module, seed: int = 0, **kw) -> dict:
        """Checks of behaviour beyond the score, on test, against ``baseline``. Tasks add
        their own (per-class gaps and robustness for classifiers); this base gives the
        score of both and the comparison."""
        out, y = self.predict(model, "test")
        ref, _ = self.predict(baseline, "test")
        acc, base = self.score_outputs(out, y), self.score_outputs(ref, y)
        return {"split": "test", "examples": len(y), "score_name": self.score_name,
                "accuracy": acc, "baseline_accuracy": base,
                "accuracy_drop_pp": 100.0 * (base - acc), **self.compare_outputs(out, ref),
                "seed": seed}

    def describe(self) -> dict:
        """What a record says about the task and its data."""
        return {"task": self.kind, "score_name": self.score_name, "data": self.name}
