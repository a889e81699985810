"""Classification tasks: images (tensors) and text (dicts of token tensors).

Targets are class labels; the loss is cross-entropy, the score top-1 accuracy, the
comparison with a reference top-1 agreement and mean KL of the softmax outputs, the
distillation loss Hinton's (``tasks.losses.kd_loss``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.splits import Split
from ..evaluate.metrics import agreement, mean_kl, per_class_accuracy, topk_accuracy
from .base import Task


class Classification(Task):
    """Shared by image and text classification: labels in, logits out."""

    score_name = "accuracy"
    classes = True

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return self.split.num_classes

    @property
    def class_names(self) -> list[str]:
        """Class names (their indices as text when the data has none)."""
        k = self.num_classes
        names = self.split.class_names
        return list(names) if len(names) == k else [str(i) for i in range(k)]

    def loss_outputs(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets)

    def distill_loss(self, student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor,
                     temperature: float = 1.0, alpha: float = 1.0) -> torch.Tensor:
        from .losses import kd_loss

        return kd_loss(student, teacher, targets, temperature, alpha)

    def divergence(self, outputs: torch.Tensor, reference: torch.Tensor) -> float:
        return mean_kl(outputs, reference)

    def score_outputs(self, outputs: torch.Tensor, targets: torch.Tensor) -> float:
        return float((outputs.argmax(1) == targets).float().mean())

    def metrics_outputs(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict:
        return {"accuracy": self.score_outputs(outputs, targets),
                "top5_accuracy": topk_accuracy(outputs, targets, 5),
                "per_class_accuracy": per_class_accuracy(outputs, targets, self.num_classes)}

    def compare_outputs(self, outputs: torch.Tensor, reference: torch.Tensor) -> dict:
        return {"agreement": agreement(outputs, reference), "mean_kl": mean_kl(outputs, reference)}


class ImageClassification(Classification):
    """Images ``(N, C, H, W)`` and labels: the zoo's models on Fashion-MNIST or digits.

    Example:
        >>> from netpress.data import load_split
        >>> from netpress.zoo import build_model
        >>> task = ImageClassification(load_split("digits"))
        >>> 0.0 <= task.score(build_model("lenet5")) <= 1.0
        True
    """

    kind = "image-classification"

    def behaviour(self, model, baseline, **kw) -> dict:
        """Per-class gaps, calibration, Gaussian noise and FGSM robustness on test."""
        from ..evaluate.behaviour import behaviour

        return behaviour(model, baseline, self.split, **kw)


def as_task(data: Split | Task) -> Task:
    """A task for ``data``: a bare ``Split`` of images is image classification.

    Example:
        >>> from netpress.data import load_split
        >>> as_task(load_split("digits")).kind
        'image-classification'
    """
    if isinstance(data, Task):
        return data
    if isinstance(data, Split):
        return ImageClassification(data)
    raise TypeError(f"expected a Task or a Split, got {type(data).__name__}")
