"""Classification losses the tasks own (techniques reach them through ``Task``).

- ``kd_loss``: Hinton et al. 2015. ``alpha · T² · KL(p_T(teacher) ‖ p_T(student))
  + (1 − alpha) · CE(student, labels)``, where ``p_T`` is the softmax at temperature T.
  The T² factor keeps the soft term's gradient magnitude independent of T.
- ``soft_kl``: the KL term alone, without T².
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """Mean over the batch of KL(softmax(t/T) ‖ softmax(s/T)), in nats, *without* T².

    Example:
        >>> x = torch.tensor([[1.0, 2.0]])
        >>> float(soft_kl(x, x, 2.0))
        0.0
    """
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, dim=-1),
                    F.log_softmax(teacher_logits / t, dim=-1),
                    log_target=True, reduction="batchmean")


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """Hinton distillation loss: ``alpha·T²·KL_T + (1−alpha)·CE``.

    ``alpha`` weighs the soft (teacher) term against the hard-label term; with
    ``labels=None`` only the soft term is used (whatever ``alpha``).

    Example:
        >>> s, t, y = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([0])
        >>> round(float(kd_loss(s, t, y, temperature=2.0, alpha=0.5)), 4)  # 0.5·ln 2
        0.3466
    """
    soft = soft_kl(student_logits, teacher_logits.detach(), temperature) * temperature**2
    if labels is None:
        return soft
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft + (1.0 - alpha) * hard
