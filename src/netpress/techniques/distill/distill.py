"""The ``Distill`` technique: train a student from a teacher with the shared loop.

The student's loss is built here and handed to ``Context.finetune`` as its
``loss_fn(model, x, y)``; the loop itself is ``netpress.train.fit``. Intermediate
features are read with forward hooks on named layers. FitNets hints get a learned
adapter (1×1 conv or Linear) from the student's feature to the teacher's shape; it is
trained with the student and then thrown away.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...batches import take
from ...config import Config, register
from ...context import Context
from ...errors import ConfigError, ModelError
from ...zoo import build_model
from .losses import attention_loss, embedding_loss, hint_loss
from .students import drop_layers, prune_student, scale_width


def parse_pairs(pairs: tuple[str, ...]) -> list[tuple[str, str]]:
    """``("s_layer=t_layer", …)`` → ``[(s_layer, t_layer), …]``; a bare name means both.

    Example:
        >>> parse_pairs(("conv2=conv2", "fc1"))
        [('conv2', 'conv2'), ('fc1', 'fc1')]
    """
    out = []
    for p in pairs:
        s, _, t = p.partition("=")
        out.append((s.strip(), (t or s).strip()))
    return out


@dataclass(frozen=True)
class Distill(Config):
    """Knowledge distillation from the model (the teacher) into a student.

    The student is ``student`` (zoo name or ``package.module:factory``) if given, the
    teacher structurally pruned by ``prune_ratio`` if that is > 0 (it keeps the teacher's
    surviving weights), else the teacher scaled by ``width`` (fresh weights), with
    ``drop`` blocks removed in the last two cases.

    Example:
        >>> Distill(width=0.4, epochs=5).temperature
        4.0
    """

    student: str = ""  # zoo spec or package.module:factory; "" = build from the teacher
    width: float = 0.5  # width multiplier of the built student, 0 < w ≤ 1
    drop: tuple[str, ...] = ()  # teacher blocks replaced by Identity in the built student
    prune_ratio: float = 0.0  # > 0: the student is the teacher structurally pruned by this
    objective: Literal["logits", "embedding_mse", "embedding_cosine"] = "logits"
    temperature: float = 4.0  # softmax temperature T of the soft targets
    alpha: float = 0.9  # weight of the soft (teacher) term; 1 − alpha on the labels
    hints: tuple[str, ...] = ()  # FitNets pairs "student_layer=teacher_layer"
    hint_weight: float = 1.0  # weight of each hint MSE
    attention: tuple[str, ...] = ()  # attention-transfer pairs "student_layer=teacher_layer"
    attention_weight: float = 100.0  # weight of each attention-transfer term
    epochs: int = 10  # training epochs of the student
    lr: float = 1e-3  # Adam learning rate (cosine schedule)
    cache_teacher: bool = True  # logits objective without hints: teacher outputs computed once
    # added last, so positional construction keeps its meaning
    drop_count: int = 0  # drop this many layers, those whose removal costs least on validation
    patience: int = 0  # >0: stop once val has not improved for this many epochs (epochs = cap)

    def validate(self) -> None:
        if not 0.0 < self.width <= 1.0:
            raise ConfigError(f"width must be in (0, 1], got {self.width}")
        if not 0.0 <= self.prune_ratio < 1.0:
            raise ConfigError(f"prune_ratio must be in [0, 1), got {self.prune_ratio}")
        if self.prune_ratio and (self.width < 1.0 or self.student):
            raise ConfigError("choose one student: prune_ratio, width or student")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.epochs < 0 or self.lr <= 0:
            raise ConfigError("epochs must be ≥ 0 and lr > 0")
        if self.hint_weight < 0 or self.attention_weight < 0:
            raise ConfigError("hint_weight and attention_weight must be ≥ 0")
        if self.patience < 0:
            raise ConfigError(f"patience must be >= 0, got {self.patience}")
        if self.drop_count < 0 or (self.drop_count and self.drop):
            raise ConfigError("drop_count must be ≥ 0, and set either drop or drop_count")


class FeatureTap:
    """Forward hooks that keep the latest output of named layers.

    Example:
        >>> m = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> tap = FeatureTap(m, ["0"])
        >>> _ = m(torch.zeros(1, 2))
        >>> tap.out["0"].shape
        torch.Size([1, 3])
    """

    def __init__(self, model: nn.Module, names: list[str]):
        mods = dict(model.named_modules())
        missing = [n for n in names if n not in mods]
        if missing:
            raise ModelError(f"no layer named {missing[0]!r}; layers: "
                             f"{', '.join(n for n in list(mods)[1:10])}…")
        self.out: dict[str, torch.Tensor] = {}
        self.handles = [mods[n].register_forward_hook(self._hook(n)) for n in names]

    def _hook(self, name: str):
        def hook(mod, inp, out):  # transformer layers may return a tuple: keep the hidden states
            self.out[name] = out[0] if isinstance(out, tuple | list) else out
        return hook

    def remove(self) -> None:
        """Detach the hooks."""
        for h in self.handles:
            h.remove()


def make_adapter(student_feat: torch.Tensor, teacher_feat: torch.Tensor) -> nn.Module:
    """A learned map from the student's feature shape to the teacher's (FitNets regressor).

    Example:
        >>> make_adapter(torch.zeros(1, 8, 4, 4), torch.zeros(1, 20, 4, 4))
        Conv2d(8, 20, kernel_size=(1, 1), stride=(1, 1))
    """
    if student_feat.dim() == 4 and teacher_feat.dim() == 4:
        conv = nn.Conv2d(student_feat.shape[1], teacher_feat.shape[1], 1)
        if student_feat.shape[-2:] == teacher_feat.shape[-2:]:
            return conv
        return nn.Sequential(conv, nn.AdaptiveAvgPool2d(tuple(teacher_feat.shape[-2:])))
    if student_feat.dim() in (2, 3) and student_feat.dim() == teacher_feat.dim():
        return nn.Linear(student_feat.shape[-1], teacher_feat.shape[-1])  # (N, D) or (N, T, D)
    raise ModelError(f"cannot adapt a {tuple(student_feat.shape)} feature to "
                     f"{tuple(teacher_feat.shape)}; pick layers of the same kind")


def pooled(output) -> torch.Tensor:
    """The sentence embedding of an encoder output: ``pooler_output`` if present, else
    the first token of ``last_hidden_state``, else the tensor itself."""
    if isinstance(output, torch.Tensor):
        return output
    if getattr(output, "pooler_output", None) is not None:
        return output.pooler_output
    if getattr(output, "last_hidden_state", None) is not None:
        return output.last_hidden_state[:, 0]
    raise ModelError("cannot find an embedding in the model output; return a tensor")


def is_transformer(model: nn.Module) -> bool:
    """Whether ``model`` is a Hugging Face wrapper whose layers ``heads.py`` can edit."""
    from ..prune.heads import attention_blocks

    try:
        return bool(attention_blocks(model))
    except (ModelError, ConfigError, AttributeError):
        return False


def drop_transformer_layers(model: nn.Module, drop: tuple[str, ...]) -> nn.Module:
    """Remove transformer layers named by index (``"1"``) or path (``"model.encoder.layer.1"``)
    and record the new shape, so saved students reload.

    Example:
        >>> drop_transformer_layers(encoder, ("1", "3", "5"))  # doctest: +SKIP
    """
    from ..prune.heads import attention_blocks, drop_layers_hf
    from ..prune.transformer import record_shape

    n = len(attention_blocks(model))
    try:
        gone = {int(d.rsplit(".", 1)[-1]) for d in drop}
    except ValueError:
        raise ConfigError(f"drop {list(drop)}: name transformer layers by index, e.g. drop: "
                          "['1', '3', '5']") from None
    if not gone <= set(range(n)) or len(gone) >= n:
        raise ConfigError(f"drop {sorted(gone)}: the model has layers 0..{n - 1} and must keep one")
    drop_layers_hf(model, [i for i in range(n) if i not in gone])
    return record_shape(model)


def choose_layers_to_drop(teacher: nn.Module, count: int, ctx: Context) -> tuple[str, ...]:
    """The ``count`` layers whose removal lowers the validation score least: every choice
    is tried when there are at most 64, else layers are dropped greedily one at a time.

    Example:
        >>> choose_layers_to_drop(encoder, 3, ctx)  # doctest: +SKIP
        ('1', '2', '3')
    """
    import itertools
    import math

    from ..prune.heads import attention_blocks

    n = len(attention_blocks(teacher))
    if not 0 < count < n:
        raise ConfigError(f"drop_count {count}: the model has {n} layers and must keep one")

    def score(gone) -> float:
        trial = drop_transformer_layers(copy.deepcopy(teacher), tuple(map(str, gone)))
        return ctx.task.score(trial, "val")

    if math.comb(n, count) <= 64:
        best = max(itertools.combinations(range(n), count), key=score)
    else:
        best = ()
        for _ in range(count):
            best = max((best + (i,) for i in range(n) if i not in best), key=score)
    return tuple(str(i) for i in sorted(best))


def build_student(teacher: nn.Module, cfg: Distill, example: torch.Tensor, seed: int = 0,
                  ctx: Context | None = None):
    """The student ``cfg`` describes (seeded; ``prune_ratio`` needs ``ctx``)."""
    if cfg.student:
        torch.manual_seed(seed)
        return build_model(cfg.student)
    if cfg.prune_ratio:
        if ctx is None:
            raise ConfigError("a pruned student needs a Context (data for the pruner)")
        student = prune_student(teacher, cfg.prune_ratio, ctx)
    elif cfg.width < 1 and is_transformer(teacher):
        raise ConfigError("width students of transformers are built by removing heads and FFN "
                          "neurons (TransformerPrune) or layers: set width: 1.0 with drop: [...]")
    elif cfg.width < 1:
        student = scale_width(teacher, cfg.width, example, seed=seed)
    else:
        student = teacher
    drop = cfg.drop
    if cfg.drop_count:
        if not is_transformer(teacher) or ctx is None:
            raise ConfigError("drop_count chooses transformer layers on validation data; name "
                              "the blocks to drop with drop: [...] for other models")
        drop = choose_layers_to_drop(student, cfg.drop_count, ctx)
    if drop and is_transformer(teacher):
        student = drop_transformer_layers(student if student is not teacher
                                          else copy.deepcopy(teacher), drop)
    elif drop:
        student = drop_layers(student, drop, example)
    if student is teacher:
        raise ConfigError("the student equals the teacher: set width < 1, drop or student")
    return student


def distill_into(student: nn.Module, teacher: nn.Module, cfg: Distill, ctx: Context,
                 stop_at: float | None = None):
    """Train ``student`` from ``teacher`` in place; returns the TrainResult. With
    ``cfg.patience`` training stops early on validation (``stop_at``: as soon as the
    validation score reaches it) and the best epoch is kept.

    Example:
        >>> distill_into(student, teacher, Distill(epochs=1), ctx)  # doctest: +SKIP
    """
    teacher.eval()
    frozen = [p for p in teacher.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    hints, att = parse_pairs(cfg.hints), parse_pairs(cfg.attention)
    s_tap = FeatureTap(student, [s for s, _ in hints + att])
    t_tap = FeatureTap(teacher, [t for _, t in hints + att])
    task = ctx.task
    x0 = ctx.example_inputs(2)
    with torch.no_grad():
        task.forward(teacher, x0)
        task.forward(student.eval(), x0)
    torch.manual_seed(ctx.seed)
    adapters = nn.ModuleList([make_adapter(s_tap.out[s], t_tap.out[t]) for s, t in hints])

    task_only = cfg.objective == "logits" and cfg.alpha == 0 and not hints and not att

    def loss_fn(model: nn.Module, x, y: torch.Tensor) -> torch.Tensor:
        if task_only:  # no teacher term: the targets suffice (a sentence encoder's targets
            return task.loss(model, x, y)  # are the uncompressed model's embeddings)
        with torch.no_grad():
            t_out = task.forward(teacher, x)
        s_out = task.forward(model, x)
        if cfg.objective == "logits":
            loss = task.distill_loss(s_out, t_out, y, cfg.temperature, cfg.alpha)
        else:
            kind = "mse" if cfg.objective == "embedding_mse" else "cosine"
            loss = embedding_loss(pooled(s_out), pooled(t_out), kind)
        for (s, t), ad in zip(hints, adapters, strict=True):
            loss = loss + cfg.hint_weight * hint_loss(ad(s_tap.out[s]), t_tap.out[t])
        for s, t in att:
            loss = loss + cfg.attention_weight * attention_loss(s_tap.out[s], t_tap.out[t])
        return loss

    params = [p for p in student.parameters() if p.requires_grad] + list(adapters.parameters())
    if (cfg.cache_teacher and cfg.objective == "logits" and not hints and not att
            and task.classes):
        ctx, loss_fn = _cached_teacher(teacher, cfg, ctx)
    try:
        return ctx.finetune(student, cfg.epochs, lr=cfg.lr, loss_fn=loss_fn, params=params,
                            description="distill", patience=cfg.patience,
                            stop_at=stop_at if cfg.patience else None)
    finally:
        s_tap.remove()
        t_tap.remove()
        for p in frozen:
            p.requires_grad_(True)


def _cached_teacher(teacher: nn.Module, cfg: Distill, ctx: Context):
    """A context whose training labels carry the teacher's logits (computed once, in eval
    mode, so they are the same every epoch) and the KD loss that reads them: distilling then
    costs what training from scratch costs. Column 0 of the packed labels is the class.
    Only for classification tasks (their targets are one label per example)."""
    task = ctx.task
    x, y = task.part("train")
    n = len(y)
    with torch.no_grad():
        logits = torch.cat([task.forward(teacher, take(x, slice(i, i + 1000)))
                            for i in range(0, n, 1000)])
    packed = torch.cat([y.to(logits.dtype).unsqueeze(1), logits], 1)

    def loss_fn(model: nn.Module, xb, yb: torch.Tensor) -> torch.Tensor:
        return task.distill_loss(task.forward(model, xb), yb[:, 1:], yb[:, 0].long(),
                                 cfg.temperature, cfg.alpha)

    return dataclasses.replace(ctx, task=task.with_part("train", x, packed)), loss_fn


def logits_distance(student: nn.Module, teacher: nn.Module, x: torch.Tensor,
                    temperature: float = 1.0) -> float:
    """Mean KL(teacher ‖ student) at ``temperature`` on ``x`` (nats), for reports."""
    with torch.no_grad():
        s, t = student.eval()(x), teacher.eval()(x)
    return float(F.kl_div(F.log_softmax(s / temperature, 1), F.log_softmax(t / temperature, 1),
                          log_target=True, reduction="batchmean"))


@register(Distill)
def apply_distill(model: nn.Module, cfg: Distill, ctx: Context) -> nn.Module:
    """The model is the teacher; returns the distilled student."""
    student = build_student(model, cfg, ctx.example_inputs(2), seed=ctx.seed, ctx=ctx)
    distill_into(student, model, cfg, ctx)
    return student
