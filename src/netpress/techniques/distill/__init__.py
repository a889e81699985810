"""Knowledge distillation: logit (Hinton), hint (FitNets), attention transfer, embedding
distillation, and student builders. Importing this package registers ``Distill``.
"""

from .distill import Distill, build_student, distill_into
from .students import drop_layers, keep_every, prune_student, scale_width

__all__ = ["Distill", "build_student", "distill_into", "drop_layers", "keep_every", "prune_student",
           "scale_width"]
