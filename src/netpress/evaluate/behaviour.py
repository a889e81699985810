"""Validation beyond accuracy: how a compressed model behaves next to its baseline.

All on the held-out TEST split, the same examples for both models:

- per-class accuracy and the largest per-class drop (a fairness signal when classes
  are groups of people or products);
- calibration: expected calibration error (ECE) of the softmax confidence;
- robustness: accuracy under seeded Gaussian input noise and under a one-step FGSM attack;
- agreement (same top-1 class) and mean KL(baseline ‖ compressed) of the softmax outputs.

Noise ``sigma`` and attack ``eps`` are in input units for images whose pixels are floats
in ``[0, 1]`` (Fashion-MNIST). ``behaviour`` reads the range ``[lo, hi]`` of the test
inputs, scales ``sigma`` and ``eps`` by ``hi - lo`` and clamps perturbed inputs to it, so
for standardized data (digits) the levels still mean "a fraction of the pixel range".

Accuracies are fractions (0..1); drops are percentage points (baseline minus compressed,
so a positive drop is a loss).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.loaders import ArrayLoader
from ..data.splits import Split
from ..errors import ModelError
from .metrics import agreement, mean_kl, per_class_accuracy, predict

Bounds = tuple[float, float] | None


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """Expected calibration error of the top-1 softmax confidence, as a fraction (0..1).

    Confidences ``c = max softmax`` fall into ``bins`` equal-width bins
    ``(0, 1/B], (1/B, 2/B], …, ((B-1)/B, 1]``; ECE is the example-weighted mean gap
    ``sum_b |B_b|/n * |accuracy(B_b) - mean confidence(B_b)|``. Empty bins count nothing.
    0 means the confidence is exactly the hit rate in every bin.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0], [2.0, 0.0]])  # confidence 0.881 twice
        >>> round(expected_calibration_error(logits, torch.tensor([0, 1])), 3)  # 1 hit of 2
        0.381
    """
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not match")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    n = len(labels)
    if n == 0:
        return float("nan")
    probs = F.softmax(logits.detach().double(), dim=1)
    conf, pred = probs.max(1)
    hit = (pred == labels).double()
    idx = (torch.ceil(conf * bins).long() - 1).clamp(0, bins - 1)
    sum_conf = torch.zeros(bins, dtype=torch.float64).index_add_(0, idx, conf)
    sum_hit = torch.zeros(bins, dtype=torch.float64).index_add_(0, idx, hit)
    # sum_b |B_b|/n * |acc_b - conf_b| = sum_b |sum_hit_b - sum_conf_b| / n
    return float((sum_hit - sum_conf).abs().sum() / n)


def _clamp(x: torch.Tensor, bounds: Bounds) -> torch.Tensor:
    return x if bounds is None else x.clamp(float(bounds[0]), float(bounds[1]))


@torch.inference_mode()
def gaussian_noise_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigma: float, seed: int,
    batch_size: int = 1000, bounds: Bounds = (0.0, 1.0),
) -> float:
    """Top-1 accuracy (0..1) on ``x + N(0, sigma²)``, clamped to ``bounds`` (None: no clamp).

    The noise comes from a generator seeded with ``seed`` and is drawn batch by batch,
    so the same seed and batch size give the same noisy inputs for every model.

    Example:
        >>> m = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> x, y = torch.rand(8, 1, 2, 2), torch.zeros(8).long()
        >>> gaussian_noise_accuracy(m, x, y, 0.1, seed=0) == gaussian_noise_accuracy(m, x, y, 0.1, 0)
        True
    """
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    gen = torch.Generator().manual_seed(int(seed))
    was_training = model.training
    model.eval()
    hits = 0
    try:
        for xb, yb in ArrayLoader(x, y, batch_size=batch_size):
            noise = torch.randn(xb.shape, generator=gen, dtype=xb.dtype)
            hits += int((model(_clamp(xb + sigma * noise, bounds)).argmax(1) == yb).sum())
    finally:
        model.train(was_training)
    return hits / max(1, len(y))


def _input_gradient_sign(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():
        xg = xb.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(xg).float(), yb, reduction="sum")
        try:
            (grad,) = torch.autograd.grad(loss, xg)
        except RuntimeError as e:
            raise ModelError(
                f"FGSM needs the gradient of the loss with respect to the input, and "
                f"{type(model).__name__} gives none ({e}); validate the fake-quantized or "
                "float form of the model instead of a converted int8 one"
            ) from e
    return grad.sign()


def fgsm_accuracies(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: Sequence[float],
    batch_size: int = 1000, bounds: Bounds = (0.0, 1.0),
) -> list[float]:
    """FGSM accuracy at several ``eps`` from one gradient per batch (see ``fgsm_accuracy``).

    Example:
        >>> m = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> x, y = torch.rand(8, 1, 2, 2), torch.zeros(8).long()
        >>> len(fgsm_accuracies(m, x, y, [0.0, 0.1]))
        2
    """
    for e in eps:
        if not e >= 0:
            raise ValueError(f"eps must be >= 0, got {e}")
    was_training = model.training
    model.eval()
    hits = [0] * len(eps)
    try:
        for xb, yb in ArrayLoader(x, y, batch_size=batch_size):
            sign = _input_gradient_sign(model, xb, yb)
            with torch.inference_mode():
                for i, e in enumerate(eps):
                    adv = _clamp(xb + e * sign, bounds)
                    hits[i] += int((model(adv).argmax(1) == yb).sum())
    finally:
        model.train(was_training)
    return [h / max(1, len(y)) for h in hits]


def fgsm_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
    batch_size: int = 1000, bounds: Bounds = (0.0, 1.0),
) -> float:
    """Top-1 accuracy (0..1) under the fast gradient sign method (one step).

    Each input moves by ``eps * sign(∂ cross-entropy(model(x), true label) / ∂x)`` and is
    clamped to ``bounds``. The model runs in eval mode; parametrizations (masks,
    fake-quantizers) are differentiated through like any module. ``eps = 0`` gives the
    clean accuracy.

    Example:
        >>> m = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> x, y = torch.rand(8, 1, 2, 2), torch.zeros(8).long()
        >>> fgsm_accuracy(m, x, y, 0.05) <= 1.0
        True
    """
    return fgsm_accuracies(model, x, y, [eps], batch_size, bounds)[0]


def per_class_drops(acc: Sequence[float], base: Sequence[float]) -> list[float]:
    """Per-class drop in percentage points (baseline minus compressed; NaN where a class
    has no examples).

    Example:
        >>> per_class_drops([0.5, 1.0], [0.75, 1.0])
        [25.0, 0.0]
    """
    return [100.0 * (b - a) for a, b in zip(acc, base, strict=True)]


def worst_index(drops: Sequence[float]) -> int | None:
    valid = [(d, i) for i, d in enumerate(drops) if not math.isnan(d)]
    return max(valid, key=lambda t: (t[0], -t[1]))[1] if valid else None


def input_bounds(x: torch.Tensor) -> tuple[float, float]:
    """``(min, max)`` of the inputs: the range perturbed inputs are clamped to.

    Example:
        >>> input_bounds(torch.tensor([0.0, 0.5, 1.0]))
        (0.0, 1.0)
    """
    return float(x.min()), float(x.max())


def behaviour(
    model: nn.Module, baseline: nn.Module, split: Split,
    noise: Sequence[float] = (0.1, 0.2), eps: Sequence[float] = (0.02, 0.05), seed: int = 0,
    batch_size: int = 1000, bins: int = 15,
) -> dict:
    """Compare ``model`` with ``baseline`` on ``split.test``: one JSON-ready dict.

    Keys: ``split``, ``examples``, ``input_range``, ``accuracy``, ``baseline_accuracy``,
    ``accuracy_drop_pp``, ``per_class`` (``names``, ``accuracy``, ``baseline``,
    ``drop_pp``), ``max_class_drop_pp``, ``worst_class``, ``ece``, ``baseline_ece``,
    ``ece_bins``, ``noise`` (``[{sigma, accuracy, baseline_accuracy}]``), ``fgsm``
    (``[{eps, accuracy, baseline_accuracy}]``), ``agreement``, ``kl``, ``seed``.

    Example:
        >>> from netpress.data import load_split
        >>> from netpress.zoo import build_model
        >>> m = build_model("lenet5")
        >>> b = behaviour(m, m, load_split("digits"))
        >>> b["agreement"], b["max_class_drop_pp"]
        (1.0, 0.0)
    """
    x, y = split.test
    lo, hi = input_bounds(x)
    scale = hi - lo
    loader = ArrayLoader(x, y, batch_size=batch_size)
    logits, labels = predict(model, loader)
    ref_logits, _ = predict(baseline, loader)
    k = split.num_classes
    n = max(1, len(labels))  # accuracies as hits / n in double, like the noise and FGSM rows
    acc = int((logits.argmax(1) == labels).sum()) / n
    base_acc = int((ref_logits.argmax(1) == labels).sum()) / n
    pc, pc_base = per_class_accuracy(logits, labels, k), per_class_accuracy(ref_logits, labels, k)
    drops = per_class_drops(pc, pc_base)
    worst = worst_index(drops)
    names = list(split.class_names) if len(split.class_names) == k else [str(i) for i in range(k)]
    noise_rows = [
        {"sigma": float(s),
         "accuracy": gaussian_noise_accuracy(model, x, y, s * scale, seed, batch_size, (lo, hi)),
         "baseline_accuracy": gaussian_noise_accuracy(baseline, x, y, s * scale, seed, batch_size,
                                                      (lo, hi))}
        for s in noise
    ]
    scaled = [e * scale for e in eps]
    adv = fgsm_accuracies(model, x, y, scaled, batch_size, (lo, hi))
    adv_base = fgsm_accuracies(baseline, x, y, scaled, batch_size, (lo, hi))
    fgsm_rows = [{"eps": float(e), "accuracy": a, "baseline_accuracy": b}
                 for e, a, b in zip(eps, adv, adv_base, strict=True)]
    return {
        "split": "test",
        "examples": len(labels),
        "input_range": [lo, hi],
        "accuracy": acc,
        "baseline_accuracy": base_acc,
        "accuracy_drop_pp": 100.0 * (base_acc - acc),
        "per_class": {"names": names, "accuracy": pc, "baseline": pc_base, "drop_pp": drops},
        "max_class_drop_pp": float("nan") if worst is None else drops[worst],
        "worst_class": None if worst is None else names[worst],
        "ece": expected_calibration_error(logits, labels, bins),
        "baseline_ece": expected_calibration_error(ref_logits, labels, bins),
        "ece_bins": bins,
        "noise": noise_rows,
        "fgsm": fgsm_rows,
        "agreement": agreement(logits, ref_logits),
        "kl": mean_kl(logits, ref_logits),
        "seed": seed,
    }
