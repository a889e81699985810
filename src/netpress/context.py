"""The context a technique sees: data loaders, evaluation, the trainer, seed, workspace."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from .data.loaders import ArrayLoader
from .data.splits import Split
from .evaluate.metrics import accuracy
from .train import LossFn, TrainResult, cross_entropy_loss, fit


@dataclass
class Context:
    """Everything a stage may use besides the model.

    Example:
        >>> from netpress.data import load_split
        >>> ctx = Context(load_split("digits"))
        >>> ctx.train_loader().num_examples
        1197
    """

    split: Split
    seed: int = 0
    threads: int = 2
    batch_size: int = 128
    eval_batch_size: int = 1000
    workspace: Path = field(default_factory=lambda: Path(".netpress"))

    def train_loader(self, batch_size: int | None = None) -> ArrayLoader:
        """Shuffled training batches (seeded)."""
        return ArrayLoader(*self.split.train, batch_size=batch_size or self.batch_size,
                           shuffle=True, seed=self.seed)

    def val_loader(self) -> ArrayLoader:
        """Validation batches: the data tuning decisions are made on."""
        return ArrayLoader(*self.split.val, batch_size=self.eval_batch_size)

    def calib_loader(self, batch_size: int = 256) -> ArrayLoader:
        """Calibration batches, drawn from the training set."""
        return ArrayLoader(*self.split.calib, batch_size=batch_size)

    def test_loader(self) -> ArrayLoader:
        """Held-out test batches: for final figures only, never for tuning."""
        return ArrayLoader(*self.split.test, batch_size=self.eval_batch_size)

    def evaluate(self, model: nn.Module) -> float:
        """Validation top-1 accuracy (0..1)."""
        return accuracy(model, self.val_loader())

    def finetune(
        self,
        model: nn.Module,
        epochs: int,
        lr: float = 1e-4,
        loss_fn: LossFn = cross_entropy_loss,
        on_step=None,
        params=None,
        description: str = "fine-tune",
    ) -> TrainResult:
        """Fine-tune ``model`` in place with the shared training loop."""
        return fit(model, self.train_loader(), epochs, lr=lr, seed=self.seed, loss_fn=loss_fn,
                   on_step=on_step, params=params, threads=self.threads,
                   description=description)
