"""Accuracy and agreement metrics over a loader, computed from collected logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..batches import call
from ..data.loaders import ArrayLoader


@torch.inference_mode()
def predict(model: nn.Module, loader: ArrayLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """All logits and labels of ``loader`` (model in eval mode).

    Example:
        >>> m = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> logits, y = predict(m, ArrayLoader(torch.zeros(5, 1, 2, 2), torch.zeros(5).long()))
        >>> logits.shape
        torch.Size([5, 3])
    """
    was_training = model.training
    model.eval()
    outs, ys = [], []
    for x, y in loader:
        outs.append(call(model, x).float())
        ys.append(y)
    model.train(was_training)
    if hasattr(loader, "gather"):  # an ArrayLoader may batch texts by length
        return loader.gather(outs), loader.gather(ys)
    return torch.cat(outs), torch.cat(ys)


def accuracy(model: nn.Module, loader: ArrayLoader) -> float:
    """Top-1 accuracy (fraction, 0..1) of ``model`` on ``loader``."""
    logits, y = predict(model, loader)
    return float((logits.argmax(1) == y).float().mean())


def topk_accuracy(logits: torch.Tensor, y: torch.Tensor, k: int) -> float:
    """Fraction of examples whose label is among the ``k`` largest logits."""
    k = min(k, logits.shape[1])
    return float((logits.topk(k, dim=1).indices == y[:, None]).any(1).float().mean())


def per_class_accuracy(logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> list[float]:
    """Top-1 accuracy of each class (NaN for a class with no examples)."""
    pred = logits.argmax(1)
    out = []
    for c in range(num_classes):
        sel = y == c
        out.append(float((pred[sel] == c).float().mean()) if sel.any() else float("nan"))
    return out


def agreement(logits: torch.Tensor, ref_logits: torch.Tensor) -> float:
    """Fraction of examples where two models pick the same top-1 class."""
    return float((logits.argmax(1) == ref_logits.argmax(1)).float().mean())


def mean_kl(logits: torch.Tensor, ref_logits: torch.Tensor) -> float:
    """Mean KL(reference ‖ model) of the softmax distributions, in nats."""
    return float(
        F.kl_div(F.log_softmax(logits, 1), F.log_softmax(ref_logits, 1), log_target=True,
                 reduction="batchmean")
    )


@dataclass(frozen=True)
class EvalResult:
    """Evaluation of one model on one loader; agreement/KL only with a reference."""

    accuracy: float
    top5: float
    per_class: list[float]
    n: int
    agreement: float | None = None
    kl: float | None = None

    def as_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "accuracy": self.accuracy,
            "top5_accuracy": self.top5,
            "per_class_accuracy": self.per_class,
            "examples": self.n,
            "agreement": self.agreement,
            "mean_kl": self.kl,
        }


def evaluate_logits(
    logits: torch.Tensor, y: torch.Tensor, num_classes: int, ref_logits: torch.Tensor | None = None
) -> EvalResult:
    """Every metric from collected logits (and a reference model's, if given)."""
    return EvalResult(
        accuracy=float((logits.argmax(1) == y).float().mean()),
        top5=topk_accuracy(logits, y, 5),
        per_class=per_class_accuracy(logits, y, num_classes),
        n=len(y),
        agreement=None if ref_logits is None else agreement(logits, ref_logits),
        kl=None if ref_logits is None else mean_kl(logits, ref_logits),
    )
