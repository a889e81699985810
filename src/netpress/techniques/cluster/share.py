"""Weight sharing: per-layer k-means codebooks, fine-tuned with fixed assignments.

``WeightShare`` replaces each target layer's weight by a parametrization
``SharedWeight``: a small trainable codebook (``centroids``), a fixed index per weight
(``labels``) and the fixed nonzero mask left by pruning. The weight the layer uses is
``centroids[labels]`` where the mask is set and exactly zero elsewhere, so autograd
gives each centroid the sum of its members' gradients (Han et al. 2016, eq. 3) and
pruned weights stay zero. Fine-tuning goes through the shared training loop
(``Context.finetune`` with ``params=`` the codebooks and biases). ``bake`` folds the
parametrization into a plain weight with at most ``2**bits`` distinct nonzero values,
which ``netpress.encode`` stores as a codebook plus indices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from ...config import Config, register
from ...context import Context
from ...errors import ConfigError
from ...targets import Targets, type_name
from .kmeans import Init, kmeans_1d


class SharedWeight(nn.Module):
    """Parametrization: ``weight = centroids[labels]`` on the mask, 0 off it.

    Example:
        >>> p = SharedWeight(torch.tensor([-1.0, 2.0]), torch.tensor([[0, 1]]),
        ...                  torch.tensor([[True, True]]))
        >>> p(torch.zeros(1, 2)).tolist()
        [[-1.0, 2.0]]
    """

    def __init__(self, centroids: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor):
        super().__init__()
        self.centroids = nn.Parameter(centroids.detach().clone().float())
        self.register_buffer("labels", labels.detach().clone().long())
        self.register_buffer("mask", mask.detach().clone().bool())

    def forward(self, original: torch.Tensor) -> torch.Tensor:  # noqa: ARG002 - replaced
        return _Gather.apply(self.centroids, self.labels, self.mask)


class _Gather(torch.autograd.Function):
    """``where(mask, centroids[labels], 0)`` as one gather from the codebook extended by a
    zero (masked positions index it), and a backward that is one ``index_add``: each
    centroid receives the sum of its members' gradients. (Autograd's own backward of
    advanced indexing sorts the indices on every step, several times slower.)"""

    @staticmethod
    def forward(ctx, centroids: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor):
        k = centroids.numel()
        flat = torch.where(mask, labels, k).reshape(-1)
        ctx.save_for_backward(flat)
        ctx.k = k
        ext = torch.cat([centroids, centroids.new_zeros(1)])
        return ext.index_select(0, flat).reshape(labels.shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (flat,) = ctx.saved_tensors
        out = grad.new_zeros(ctx.k + 1).index_add_(0, flat, grad.reshape(-1))
        return out[:ctx.k], None, None


@dataclass(frozen=True)
class LayerBits:
    """A per-layer override: modules whose name equals ``name`` (or matches ``re:…``)
    get ``bits`` codebook index bits instead of the config's."""

    name: str  # module name, or "re:<regex>" matched against the full name
    bits: int  # codebook index bits for this layer: 2**bits centroids, 1..8

    def matches(self, module_name: str) -> bool:
        """Whether this override applies to ``module_name``."""
        if self.name.startswith("re:"):
            return re.fullmatch(self.name[3:], module_name) is not None
        return self.name == module_name


@dataclass(frozen=True)
class WeightShare(Config):
    """Share weights by per-layer k-means on the nonzero weights, then tune the codebooks.

    Example:
        >>> WeightShare(bits=4).to_dict()["bits"]
        4
    """

    bits: int = 5  # codebook index bits for Linear layers: 2**bits centroids
    conv_bits: int = 8  # codebook index bits for Conv layers (Han: 8 conv, 5 fc)
    init: Init = "linear"  # centroid initialisation: linear, density or random
    iters: int = 50  # at most this many Lloyd iterations per layer
    finetune_epochs: int = 0  # epochs of codebook fine-tuning after clustering
    lr: float = 1e-4  # Adam learning rate (cosine schedule) of the codebook fine-tune
    bias_bits: int = 0  # share biases too with 2**bias_bits centroids; 0 keeps them fp32
    train_biases: bool = True  # also fine-tune the target layers' biases (or bias codebooks)
    overrides: tuple[LayerBits, ...] = ()  # per-layer bits that replace bits / conv_bits
    targets: Targets = Targets(types=("Linear", "Conv2d"))

    def validate(self) -> None:
        for name in ("bits", "conv_bits"):
            b = getattr(self, name)
            if not 1 <= b <= 8:
                raise ConfigError(f"{name}={b}: codebook bits must be 1..8 (2 to 256 centroids)")
        for o in self.overrides:
            if not 1 <= o.bits <= 8:
                raise ConfigError(f"override {o.name!r} bits={o.bits}: must be 1..8")
        if not 0 <= self.bias_bits <= 8:
            raise ConfigError(f"bias_bits={self.bias_bits} must be 0 (keep fp32) or 1..8")
        if self.iters < 1:
            raise ConfigError(f"iters={self.iters}: k-means needs at least 1 iteration")
        if self.finetune_epochs < 0:
            raise ConfigError(f"finetune_epochs={self.finetune_epochs} must be >= 0")
        if not self.lr > 0:
            raise ConfigError(f"lr={self.lr} must be > 0")

    def bits_for(self, module: nn.Module, name: str = "") -> int:
        """Index bits used for the codebook of ``module`` (called ``name`` in the model).

        Example:
            >>> WeightShare(overrides=(LayerBits("fc1", 3),)).bits_for(nn.Linear(2, 2), "fc1")
            3
        """
        for o in self.overrides:
            if o.matches(name):
                return o.bits
        return self.conv_bits if type_name(module).startswith("Conv") else self.bits


def share_layer(module: nn.Module, bits: int, init: Init = "linear", iters: int = 50,
                seed: int = 0, name: str = "weight") -> SharedWeight:
    """Cluster ``module.<name>``'s nonzeros into ``2**bits`` centroids and attach a
    ``SharedWeight`` parametrization (any earlier one, e.g. a pruning mask, is folded first).

    Example:
        >>> lin = nn.Linear(8, 4)
        >>> p = share_layer(lin, bits=2)
        >>> lin.weight.unique().numel() <= 4
        True
    """
    w = getattr(module, name).detach().clone()
    if parametrize.is_parametrized(module, name):
        parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    mask = w != 0
    centroids, lab = kmeans_1d(w[mask].double().numpy(), 2**bits, init, iters, seed)
    labels = torch.zeros(w.shape, dtype=torch.long)
    labels[mask] = torch.from_numpy(lab)
    p = SharedWeight(torch.from_numpy(centroids), labels, mask)
    parametrize.register_parametrization(module, name, p, unsafe=True)
    getattr(module.parametrizations, name).original.requires_grad_(False)
    return p


def codebook_params(model: nn.Module, with_biases: bool = True) -> list[nn.Parameter]:
    """The trainable tensors of codebook fine-tuning: every weight's ``SharedWeight``
    codebook and, with ``with_biases``, the biases (or bias codebooks) of those layers.

    Example:
        >>> m = nn.Sequential(nn.Linear(4, 2))
        >>> _ = share_layer(m[0], bits=1)
        >>> [tuple(p.shape) for p in codebook_params(m)]
        [(2,), (2,)]
    """
    out: list[nn.Parameter] = []
    for m in model.modules():
        if not parametrize.is_parametrized(m, "weight"):
            continue
        if not any(isinstance(p, SharedWeight) for p in m.parametrizations.weight):
            continue
        out += [p.centroids for p in m.parametrizations.weight if isinstance(p, SharedWeight)]
        if not with_biases or getattr(m, "bias", None) is None:
            continue
        if parametrize.is_parametrized(m, "bias"):
            out += [p.centroids for p in m.parametrizations.bias if isinstance(p, SharedWeight)]
        else:
            out.append(m.bias)
    return out


@register(WeightShare)
def apply_weight_share(model: nn.Module, cfg: WeightShare, ctx: Context) -> nn.Module:
    """Cluster every target layer, then fine-tune the codebooks for ``finetune_epochs``.

    Example:
        >>> from netpress import compress
        >>> compress(model, [WeightShare(bits=4, finetune_epochs=1)], ctx)  # doctest: +SKIP
    """
    for name, m in cfg.targets.select(model):
        share_layer(m, cfg.bits_for(m, name), cfg.init, cfg.iters, ctx.seed)
        if cfg.bias_bits and getattr(m, "bias", None) is not None:
            share_layer(m, cfg.bias_bits, cfg.init, cfg.iters, ctx.seed, name="bias")
    if cfg.finetune_epochs > 0:
        ctx.finetune(model, cfg.finetune_epochs, lr=cfg.lr,
                     params=codebook_params(model, cfg.train_biases),
                     description="fine-tune codebooks")
    return model
