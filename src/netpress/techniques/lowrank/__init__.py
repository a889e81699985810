"""Low-rank factorization: truncated SVD of Linear, Tucker-2 / CP of Conv2d.

Importing this package registers the ``LowRank`` config.
"""

from .factorize import LowRank, factorize, plan_ranks
from .modules import CPConv, LowRankLinear, Tucker2Conv

__all__ = ["CPConv", "LowRank", "LowRankLinear", "Tucker2Conv", "factorize", "plan_ranks"]
