"""Training that compresses itself: L0 gates (hard-concrete, Louizos et al. 2018) on
weights, neurons or channels, and group lasso on channels. Both train with the shared
loop and end in a real result: zeros held by masks, or channels removed.

Importing this package registers ``L0Regularize`` and ``GroupLasso``.

Example:
    >>> from netpress.techniques.regularize import GroupLasso, L0Regularize
    >>> L0Regularize().gates, GroupLasso().lam
    ('channels', 0.5)
"""

from .group_lasso import GroupLasso
from .l0 import L0Regularize

__all__ = ["GroupLasso", "L0Regularize"]
