"""The ``LowRank`` technique: choose ranks, replace layers by factorized modules, fine-tune.

A *plan* maps layer names to ``{"kind": "svd", "rank": r}``, ``{"kind": "tucker2",
"ranks": [R_out, R_in]}`` or ``{"kind": "cp", "rank": R}``. Ranks come from kept energy
(``rank_by="energy"``), a whole-model parameter budget (``"params"``: one energy
threshold found by bisection), a per-layer sensitivity sweep (``"sensitivity"``, see
``sensitivity.py``), or explicitly per layer (``ranks``). A layer whose factors would
hold at least as many weights as the dense layer is left dense. The plan is recorded
as an edit, so a saved model reloads with ``netpress.techniques.edits.load_edited``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from torch import nn

from ...config import Config, register
from ...context import Context
from ...errors import ConfigError
from ...profile.counters import count_params
from ...targets import Targets
from ..edits import edit_op, record_edit
from .modules import CPConv, LowRankLinear, Tucker2Conv
from .rank import energy_for_budget, rank_for_energy
from .svd import singular_values, svd_params
from .tucker import cp_params, mode_singular_values, tucker2_params


@dataclass(frozen=True)
class LowRank(Config):
    """Low-rank factorization of Linear (truncated SVD) and Conv2d (Tucker-2 or CP) layers.

    Example:
        >>> LowRank(rank_by="params", params_ratio=0.3).params_ratio
        0.3
    """

    rank_by: Literal["energy", "params", "sensitivity"] = "energy"
    energy: float = 0.9  # kept fraction of Σ s² per layer (rank_by="energy"), 0 < e ≤ 1
    params_ratio: float = 0.3  # whole-model parameters after / before (rank_by="params")
    max_drop_pp: float = 0.5  # allowed val-accuracy drop per layer, in pp ("sensitivity")
    conv: Literal["tucker2", "cp", "skip"] = "tucker2"  # how Conv2d layers are factorized
    ranks: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)  # name → ranks
    finetune_epochs: int = 0  # epochs of fine-tuning after factorization
    lr: float = 1e-4  # Adam learning rate of that fine-tuning
    targets: Targets = Targets(types=("Linear", "Conv2d"))

    def validate(self) -> None:
        if not 0.0 < self.energy <= 1.0:
            raise ConfigError(f"energy must be in (0, 1], got {self.energy}")
        if not 0.0 < self.params_ratio <= 1.0:
            raise ConfigError(f"params_ratio must be in (0, 1], got {self.params_ratio}")
        if self.max_drop_pp < 0:
            raise ConfigError(f"max_drop_pp must be ≥ 0, got {self.max_drop_pp}")
        if self.finetune_epochs < 0 or self.lr <= 0:
            raise ConfigError("finetune_epochs must be ≥ 0 and lr > 0")
        for name, r in self.ranks.items():
            if not r or any(x < 1 for x in r) or len(r) > 2:
                raise ConfigError(f"ranks[{name!r}] must be one or two positive integers, got {r}")


def _dense_weights(m: nn.Module) -> int:
    return m.weight.numel()


def _layer_cost(m: nn.Module, spec: dict | None) -> int:
    """Weights of layer ``m`` under ``spec`` (None = dense)."""
    if spec is None:
        return _dense_weights(m)
    if spec["kind"] == "svd":
        return svd_params(m.out_features, m.in_features, spec["rank"])
    kh, kw = m.kernel_size
    if spec["kind"] == "tucker2":
        return tucker2_params(m.out_channels, m.in_channels, kh, kw, tuple(spec["ranks"]))
    return cp_params(m.out_channels, m.in_channels, kh, kw, spec["rank"])


def candidates(model: nn.Module, cfg: LowRank) -> list[tuple[str, nn.Module]]:
    """Layers the config may factorize: Linear, and k×k (k>1) ungrouped Conv2d."""
    out = []
    for name, m in cfg.targets.select(model):
        if isinstance(m, nn.Linear) and min(m.weight.shape) > 1:
            out.append((name, m))
        elif (isinstance(m, nn.Conv2d) and cfg.conv != "skip" and m.groups == 1
              and max(m.kernel_size) > 1 and not isinstance(m.padding, str)):
            out.append((name, m))
    return out


class _Spectra:
    """Per-layer singular values, computed once, and the spec a given energy implies."""

    def __init__(self, m: nn.Module, conv: str):
        self.m, self.conv = m, conv
        if isinstance(m, nn.Linear):
            self.s = (singular_values(m.weight),)
        else:
            self.s = mode_singular_values(m.weight)

    def spec(self, energy: float) -> dict | None:
        r = [rank_for_energy(s, energy) for s in self.s]
        if isinstance(self.m, nn.Linear):
            spec = {"kind": "svd", "rank": r[0]}
        elif self.conv == "cp":
            spec = {"kind": "cp", "rank": max(r)}
        else:
            spec = {"kind": "tucker2", "ranks": r}
        return spec if _layer_cost(self.m, spec) < _dense_weights(self.m) else None


def explicit_spec(m: nn.Module, ranks: tuple[int, ...], conv: str) -> dict:
    """The spec for user-given ranks (one rank for SVD/CP, two for Tucker-2)."""
    if isinstance(m, nn.Linear):
        return {"kind": "svd", "rank": min(ranks[0], min(m.weight.shape))}
    if conv == "cp":
        return {"kind": "cp", "rank": ranks[0]}
    r = (ranks * 2)[:2]
    return {"kind": "tucker2", "ranks": [min(r[0], m.out_channels), min(r[1], m.in_channels)]}


def plan_ranks(model: nn.Module, cfg: LowRank, ctx: Context | None = None) -> dict[str, dict]:
    """Choose a factorization for every candidate layer (dense layers are left out).

    Example:
        >>> from netpress.zoo import build_model
        >>> plan = plan_ranks(build_model("lenet-300-100"), LowRank(energy=0.5))
        >>> sorted(plan)
        ['1', '3', '5']
    """
    layers = candidates(model, cfg)
    fixed = {n: explicit_spec(m, cfg.ranks[n], cfg.conv) for n, m in layers if n in cfg.ranks}
    free = [(n, m) for n, m in layers if n not in cfg.ranks]
    if cfg.rank_by == "sensitivity":
        if ctx is None:
            raise ConfigError("rank_by='sensitivity' needs data: pass a Context")
        from .sensitivity import sensitivity_energies

        energies = sensitivity_energies(model, free, cfg, ctx)
        spectra = {n: _Spectra(m, cfg.conv) for n, m in free}
        plan = {n: spectra[n].spec(energies[n]) for n, _ in free}
    else:
        spectra = {n: _Spectra(m, cfg.conv) for n, m in free}
        energy = cfg.energy
        if cfg.rank_by == "params":
            mods = dict(layers)
            fixed_cost = sum(_layer_cost(mods[n], s) for n, s in fixed.items())
            others = count_params(model) - sum(_dense_weights(m) for _, m in layers)
            budget = int(cfg.params_ratio * count_params(model)) - others - fixed_cost
            costs = [lambda e, sp=sp: _layer_cost(sp.m, sp.spec(e)) for sp in spectra.values()]
            energy = energy_for_budget(costs, budget)
            if energy == 0.0:
                raise ConfigError(
                    f"no ranks fit params_ratio={cfg.params_ratio}: the layers that cannot be "
                    "factorized already exceed it; raise --params-ratio or widen the targets")
        plan = {n: sp.spec(energy) for n, sp in spectra.items()}
    plan.update(fixed)
    return {n: s for n, s in plan.items() if s is not None}


def _build(m: nn.Module, spec: dict, decompose: bool) -> nn.Module:
    kind = spec["kind"]
    if kind == "svd":
        if decompose:
            return LowRankLinear.from_linear(m, spec["rank"])
        return LowRankLinear(m.in_features, m.out_features, spec["rank"], m.bias is not None)
    if kind == "tucker2":
        ranks = tuple(spec["ranks"])
        return Tucker2Conv.from_conv(m, ranks) if decompose else Tucker2Conv(m, ranks)
    if kind == "cp":
        return CPConv.from_conv(m, spec["rank"]) if decompose else CPConv(m, spec["rank"])
    raise ValueError(f"unknown factorization kind {kind!r}")


def factorize(model: nn.Module, plan: dict[str, dict]) -> nn.Module:
    """Replace each planned layer by its factorized module (weights from the decomposition).

    Example:
        >>> m = nn.Sequential(nn.Linear(8, 8))
        >>> type(factorize(m, {"0": {"kind": "svd", "rank": 2}})[0]).__name__
        'LowRankLinear'
    """
    for name, spec in plan.items():
        model.set_submodule(name, _build(model.get_submodule(name), spec, decompose=True))
    return record_edit(model, {"op": "lowrank", "layers": plan})


@edit_op("lowrank")
def _replay(model: nn.Module, edit: dict) -> nn.Module:
    for name, spec in edit["layers"].items():
        model.set_submodule(name, _build(model.get_submodule(name), spec, decompose=False))
    return model


@register(LowRank)
def apply_lowrank(model: nn.Module, cfg: LowRank, ctx: Context) -> nn.Module:
    """Plan ranks, factorize, then fine-tune for ``cfg.finetune_epochs`` epochs."""
    plan = plan_ranks(model, cfg, ctx)
    model = factorize(model, plan)
    if cfg.finetune_epochs:
        ctx.finetune(model, cfg.finetune_epochs, lr=cfg.lr, description="fine-tune low-rank")
    return model
