"""The context a technique sees: the task (the only door to data), the trainer, seed,
threads and workspace."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from .batches import Inputs
from .data.loaders import ArrayLoader
from .data.splits import Split
from .tasks.base import Task
from .tasks.classification import as_task
from .train import LossFn, TrainResult, fit


@dataclass
class Context:
    """Everything a stage may use besides the model.

    ``task`` is a ``Task``; a bare ``Split`` of images is taken as image classification.

    Example:
        >>> from netpress.data import load_split
        >>> ctx = Context(load_split("digits"))
        >>> ctx.task.kind, ctx.train_loader().num_examples
        ('image-classification', 1197)
    """

    task: Task | Split
    seed: int = 0
    threads: int = 2
    batch_size: int = 128
    eval_batch_size: int = 1000
    workspace: Path = field(default_factory=lambda: Path(".netpress"))
    # every fine-tuning run through this context: description, epochs run, best epoch, why
    # it stopped (what records report as "training")
    history: list[dict] = field(default_factory=list, compare=False, repr=False)
    comm: object | None = None  # a distributed.CommHook: how DDP ranks exchange gradients
    comm_log: list[dict] = field(default_factory=list)  # per fine-tune under torchrun: bytes

    def __post_init__(self) -> None:
        self.task = as_task(self.task)

    @property
    def data_name(self) -> str:
        """The data set's name, as records and run folders show it."""
        return self.task.name

    def train_loader(self, batch_size: int | None = None) -> ArrayLoader:
        """Shuffled training batches (seeded)."""
        return self.task.loader("train", batch_size or self.batch_size, shuffle=True, seed=self.seed)

    def val_loader(self) -> ArrayLoader:
        """Validation batches: the data tuning decisions are made on."""
        return self.task.loader("val", self.eval_batch_size)

    def calib_loader(self, batch_size: int = 256) -> ArrayLoader:
        """Calibration batches, drawn from the training set."""
        return self.task.loader("calib", batch_size)

    def test_loader(self) -> ArrayLoader:
        """Held-out test batches: for final figures only, never for tuning."""
        return self.task.loader("test", self.eval_batch_size)

    def example_inputs(self, n: int = 1, part: str = "train") -> Inputs:
        """``n`` example inputs (training data by default: never test data for choices)."""
        return self.task.example_inputs(n, part)

    def evaluate(self, model: nn.Module) -> float:
        """The task's validation score (top-1 accuracy for classifiers; 0..1)."""
        return self.task.score(model, "val")

    def finetune(
        self,
        model: nn.Module,
        epochs: int,
        lr: float = 1e-4,
        loss_fn: LossFn | None = None,
        on_step=None,
        params=None,
        description: str = "fine-tune",
        patience: int = 0,
        min_epochs: int = 0,
        stop_at: float | None = None,
    ) -> TrainResult:
        """Fine-tune ``model`` in place with the shared loop; the task's loss by default.

        With ``patience`` > 0, ``epochs`` is a cap and training stops early on the
        validation score, the best epoch's weights kept (see ``netpress.train.fit``)."""
        result = fit(model, self.train_loader(), epochs, lr=lr, seed=self.seed,
                     loss_fn=loss_fn or self.task.loss, on_step=on_step, params=params,
                     threads=self.threads, description=description,
                     val_fn=self.evaluate if patience > 0 else None, patience=patience,
                     min_epochs=min_epochs, stop_at=stop_at, comm=self.comm)
        self.history.append({"description": description, "cap": epochs, "lr": lr,
                             "epochs": len(result.losses), "best_epoch": result.best_epoch,
                             "best_val": result.best_score, "stopped": result.stopped})
        if result.comm is not None:
            self.comm_log.append({"description": description, **result.comm})
        return result
