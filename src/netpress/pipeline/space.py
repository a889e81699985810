"""The search space of ``netpress search``: a small table of dimensions and the recipe
each point of it means.

Every dimension is one row of ``SPACE``; ``sample`` asks an Optuna trial for a value of
each, and ``build_recipe`` turns the values into a ``Recipe`` the runner executes:
gradual magnitude pruning with fine-tuning (``GradualPrune``), then k-means weight
sharing (``WeightShare``), stored with the artifact's sparse positions and entropy coders.
To search over something new, add a row to ``SPACE`` and read its value in
``build_recipe``.

Example:
    >>> [d.name for d in SPACE]
    ['sparsity', 'allocation', 'self_distill', 'fc_bits', 'conv_bits', 'bias_bits']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from ..io import write_json
from ..techniques.cluster.share import WeightShare
from ..techniques.prune.magnitude import LayerSparsity
from ..techniques.prune.schedule import GradualPrune
from ..techniques.prune.sensitivity import Sensitivity, ratios_for_target
from ..techniques.prune.structured import StructuredPrune
from .recipe import Recipe

# Sparsities of the one sensitivity sweep a search makes: up to 0.99 so that every
# overall target of the space (≤ 0.97) is reachable by per-layer allocation.
SWEEP = (0.0, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
PRUNE_LR = 1e-3  # Adam learning rate of the pruning fine-tune (cosine decay)


@dataclass(frozen=True)
class Dim:
    """One searched parameter: a float or int range, or a list of choices.

    Example:
        >>> Dim("bits", "int", 2, 8).describe()
        'int 2..8'
    """

    name: str
    kind: Literal["float", "int", "choice"]
    low: float = 0.0
    high: float = 0.0
    choices: tuple = ()
    help: str = ""

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna ``trial`` samples for this dimension."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_categorical(self.name, list(self.choices))

    def describe(self) -> str:
        """The range in words, for docs and ``--json`` output."""
        if self.kind == "choice":
            return "one of " + ", ".join(map(str, self.choices))
        lo, hi = (int(self.low), int(self.high)) if self.kind == "int" else (self.low, self.high)
        return f"{self.kind} {lo}..{hi}"


SPACE: tuple[Dim, ...] = (
    Dim("sparsity", "float", 0.5, 0.97,
        help="overall fraction of Linear/Conv2d weights pruned (GradualPrune, with fine-tuning)"),
    Dim("allocation", "choice", choices=("global", "sensitivity"),
        help="global magnitude ranking over all layers, or per-layer sparsities from the "
             "sensitivity sweep that reach the same overall sparsity"),
    Dim("self_distill", "choice", choices=(0.0, 0.5),
        help="weight of the KL term towards the unpruned model during pruning"),
    Dim("fc_bits", "int", 2, 8, help="weight-sharing index bits of Linear layers"),
    Dim("conv_bits", "int", 4, 8, help="weight-sharing index bits of Conv2d layers"),
    Dim("bias_bits", "int", 3, 8, help="weight-sharing index bits of biases"),
)


# Searched only under a latency budget: removing whole channels is the one technique here
# that makes the deployed model faster (masked or shared weights still run dense).
STRUCTURED = Dim("structured", "choice", choices=(0.0, 0.25, 0.5),
                 help="fraction of output channels removed from every hidden layer first "
                      "(StructuredPrune, L1 importance); searched when --max-latency-ms is given")


def space_for(latency_budget: bool) -> tuple[Dim, ...]:
    """The dimensions searched: ``SPACE``, plus ``structured`` under a latency budget.

    Example:
        >>> [d.name for d in space_for(True)][-1]
        'structured'
    """
    return SPACE + (STRUCTURED,) if latency_budget else SPACE


def sample(trial: Any, space: tuple[Dim, ...] = SPACE) -> dict[str, Any]:
    """One value per dimension, drawn by ``trial``.

    Example:
        >>> import optuna
        >>> t = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
        >>> sorted(sample(t))[:2]
        ['allocation', 'bias_bits']
    """
    return {d.name: d.suggest(trial) for d in space}


def build_recipe(params: dict[str, Any], epochs: int = 1, sens: Sensitivity | None = None,
                 name: str = "search") -> Recipe:
    """The recipe of one point of the space (``sens`` is needed for ``allocation:
    sensitivity``).

    Example:
        >>> p = {"sparsity": 0.9, "allocation": "global", "self_distill": 0.0,
        ...      "fc_bits": 4, "conv_bits": 6, "bias_bits": 5}
        >>> r = build_recipe(p)
        >>> [type(s).__name__ for s in r.stages], r.stages[1].bits
        (['GradualPrune', 'WeightShare'], 4)
    """
    overrides: tuple[LayerSparsity, ...] = ()
    if params["allocation"] == "sensitivity":
        if sens is None:
            raise ConfigError("allocation 'sensitivity' needs a sensitivity sweep")
        ratios = ratios_for_target(sens, float(params["sparsity"]))
        overrides = tuple(LayerSparsity(n, round(min(s, 0.999), 6)) for n, s in ratios.items())
    prune = GradualPrune(sparsity=float(params["sparsity"]), epochs=epochs, scope="global",
                         overrides=overrides, lr=PRUNE_LR,
                         self_distill=float(params["self_distill"]))
    share = WeightShare(bits=int(params["fc_bits"]), conv_bits=int(params["conv_bits"]),
                        bias_bits=int(params["bias_bits"]), init="linear")
    desc = "found by netpress search: " + ", ".join(f"{k}={v}" for k, v in params.items())
    stages: tuple = (prune, share)
    if params.get("structured"):
        stages = (StructuredPrune(ratio=float(params["structured"])),) + stages
    return Recipe(stages, name=name, description=desc, coder="auto", index="auto")


def save_sensitivity(sens: Sensitivity, path: str | Path) -> None:
    """Write a sweep as ``sensitivity.json`` of the run folder (docs/runs.md), plus the
    layer sizes ``ratios_for_target`` needs.

    Example:
        >>> save_sensitivity(Sensitivity("unstructured", [0.0], 0.9, {"a": [0.9]}, {"a": 4}),
        ...                  "sensitivity.json")  # doctest: +SKIP
    """
    write_json(path, {"kind": sens.kind, "sparsities": sens.sparsities,
                      "baseline": sens.baseline_accuracy, "layers": sens.accuracy,
                      "sizes": sens.sizes})


def load_sensitivity(path: str | Path) -> Sensitivity:
    """Read ``save_sensitivity``'s file back.

    Example:
        >>> load_sensitivity("run/sensitivity.json").kind  # doctest: +SKIP
        'unstructured'
    """
    try:
        d = json.loads(Path(path).read_text())
        return Sensitivity(d["kind"], list(d["sparsities"]), float(d["baseline"]),
                           dict(d["layers"]), {k: int(v) for k, v in d["sizes"].items()})
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: not a sensitivity sweep written by netpress search ({e}); "
                          "delete it to recompute") from None
