"""Distillation losses: pure functions of tensors, tested alone.

- Hinton et al.'s logit distillation (``kd_loss``, ``soft_kl``) belongs to the
  classification task, whose loss it mixes with: ``netpress.tasks.losses``.
- ``hint_loss``: FitNets (Romero et al. 2015), mean squared error between an adapted
  student feature and the teacher's feature.
- ``attention_map`` / ``attention_loss``: activation-based attention transfer
  (Zagoruyko & Komodakis 2017): the channel-wise mean of |a|^p, flattened and L2
  normalised; the loss is the mean squared distance between the normalised maps.
- ``embedding_loss``: sentence-embedding distillation (MSE or 1 − cosine of pooled
  outputs), as used to distil BERT-family encoders.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F


def hint_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """FitNets hint loss: MSE between the (adapted) student feature and the teacher's.

    Example:
        >>> float(hint_loss(torch.ones(2, 3), torch.zeros(2, 3)))
        1.0
    """
    if student_feature.shape != teacher_feature.shape:
        raise ValueError(f"hint shapes differ: student {tuple(student_feature.shape)} vs "
                         f"teacher {tuple(teacher_feature.shape)}; add an adapter")
    return F.mse_loss(student_feature, teacher_feature.detach())


def attention_map(feature: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Spatial attention of a conv feature (N, C, H, W): mean over C of |a|^p, flattened
    to (N, H·W) and L2-normalised per example.

    Example:
        >>> attention_map(torch.ones(1, 2, 2, 2)).tolist()
        [[0.5, 0.5, 0.5, 0.5]]
    """
    if feature.dim() != 4:
        raise ValueError(f"attention transfer needs (N, C, H, W) features, got {feature.dim()}-D")
    a = feature.abs().pow(p).mean(dim=1).flatten(1)
    return F.normalize(a, dim=1)


def attention_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor,
                   p: float = 2.0) -> torch.Tensor:
    """Attention-transfer loss: mean over the batch of ‖Q_s − Q_t‖², where Q are the
    normalised attention maps. Channel counts may differ; spatial sizes must match
    (the teacher map is resized with adaptive average pooling when they do not).

    Example:
        >>> float(attention_loss(torch.ones(1, 3, 2, 2), torch.ones(1, 5, 2, 2)))
        0.0
    """
    t = teacher_feature.detach()
    if t.shape[-2:] != student_feature.shape[-2:]:
        t = F.adaptive_avg_pool2d(t, student_feature.shape[-2:])
    qs, qt = attention_map(student_feature, p), attention_map(t, p)
    return (qs - qt).pow(2).sum(dim=1).mean()


def embedding_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor,
                   kind: Literal["mse", "cosine"] = "mse") -> torch.Tensor:
    """Sentence-embedding distillation on pooled outputs (N, D): MSE or mean(1 − cos).

    Example:
        >>> e = torch.tensor([[1.0, 0.0]])
        >>> float(embedding_loss(e, torch.tensor([[0.0, 1.0]]), "cosine"))
        1.0
    """
    t = teacher_emb.detach()
    if kind == "mse":
        return F.mse_loss(student_emb, t)
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(student_emb, t, dim=-1)).mean()
    raise ValueError(f"unknown embedding loss {kind!r}; use 'mse' or 'cosine'")
