"""Hard-concrete gates (Louizos, Welling & Kingma 2018, "Learning Sparse Neural Networks
through L0 Regularization"): pure tensor maths, and the gate as a parametrization.

A gate ``z`` in [0, 1] per weight, neuron or channel is drawn from a stretched, clipped
concrete distribution with a learned location ``log_alpha``: u ~ U(0,1),
s = sigmoid((log u − log(1−u) + log_alpha) / β), z = clip(s (ζ − γ) + γ, 0, 1). The
probability that a gate is non-zero, P(z > 0) = sigmoid(log_alpha − β log(−γ/ζ)), is the
differentiable expected L0 norm the loss penalises. At test time z is deterministic:
clip(sigmoid(log_alpha) (ζ − γ) + γ, 0, 1), exactly 0 for gates pushed far enough down.

Example:
    >>> la = torch.tensor([-10.0, 10.0])
    >>> deterministic_gate(la).tolist()
    [0.0, 1.0]
"""

from __future__ import annotations

import math

import torch
from torch import nn

BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1  # the paper's temperature and stretch


def sample_gate(log_alpha: torch.Tensor, beta: float = BETA) -> torch.Tensor:
    """A reparameterised sample of the gates (differentiable in ``log_alpha``)."""
    u = torch.rand_like(log_alpha).clamp(1e-6, 1 - 1e-6)
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / beta)
    return (s * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def deterministic_gate(log_alpha: torch.Tensor) -> torch.Tensor:
    """The test-time gates: exactly 0 or 1 at the extremes, in between otherwise."""
    return (torch.sigmoid(log_alpha) * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def expected_l0(log_alpha: torch.Tensor, beta: float = BETA) -> torch.Tensor:
    """P(gate ≠ 0) per gate: the expected L0 norm's terms.

    Example:
        >>> round(float(expected_l0(torch.tensor(0.0))), 3)
        0.834
    """
    return torch.sigmoid(log_alpha - beta * math.log(-GAMMA / ZETA))


def init_log_alpha(keep: float) -> float:
    """The ``log_alpha`` whose deterministic gate keeps a fraction ``keep`` of its input
    (``keep`` = 0.9: start near the trained network).

    Example:
        >>> round(float(deterministic_gate(torch.tensor(init_log_alpha(0.9)))), 3)
        0.9
    """
    s = (keep - GAMMA) / (ZETA - GAMMA)
    return math.log(s / (1 - s))


class HardConcreteGate(nn.Module):
    """Parametrization ``weight → weight · z``: one gate per weight (``per="weight"``) or per
    output row — a neuron of a Linear, a channel of a Conv (``per="channel"``).

    In training mode z is sampled, in eval mode deterministic. ``log_alpha`` is a parameter,
    so the shared training loop trains it with the weights.

    Example:
        >>> from torch.nn.utils import parametrize
        >>> lin = nn.Linear(3, 2)
        >>> parametrize.register_parametrization(lin, "weight", HardConcreteGate((2, 3), "channel"))
        >>> lin.parametrizations.weight[0].log_alpha.shape
        torch.Size([2])
    """

    def __init__(self, shape: tuple[int, ...], per: str, keep: float = 0.9) -> None:
        super().__init__()
        if per not in ("weight", "channel"):
            raise ValueError(f"per must be 'weight' or 'channel', got {per!r}")
        self.per = per
        n = shape if per == "weight" else (shape[0],)
        self.log_alpha = nn.Parameter(torch.full(n, init_log_alpha(keep)))
        self.view = (shape[0],) + (1,) * (len(shape) - 1)
        self.fan = 1 if per == "weight" else int(math.prod(shape[1:]))
        self.last: torch.Tensor | None = None  # the gates of the last forward (for the bias)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        z = sample_gate(self.log_alpha) if self.training else deterministic_gate(self.log_alpha)
        self.last = z
        return weight * (z if self.per == "weight" else z.view(self.view))

    def expected_l0(self) -> torch.Tensor:
        """Expected number of non-zero weights the gates let through."""
        return expected_l0(self.log_alpha).sum() * self.fan


class BiasGate(nn.Module):
    """Parametrization ``bias → bias · z`` with the channel gates the weight drew in the same
    forward pass, so that a closed channel outputs exactly zero (and can be removed).

    Example:
        >>> g = HardConcreteGate((2, 3), "channel").eval()
        >>> _ = g(torch.ones(2, 3))
        >>> BiasGate(g)(torch.ones(2)).shape
        torch.Size([2])
    """

    def __init__(self, gate: HardConcreteGate) -> None:
        super().__init__()
        self._gate = [gate]  # a plain reference: the gate is registered on the weight only

    def forward(self, bias: torch.Tensor) -> torch.Tensor:
        g = self._gate[0]
        z = g.last if g.last is not None else deterministic_gate(g.log_alpha)
        return bias * z
