"""Pruning: unstructured magnitude (layer/global), gradual AGP, Han's iterative loop,
N:M semi-structured sparsity, structured channel removal, sensitivity analysis, and
sparse storage of the result.

Importing this package registers its configs: ``MagnitudePrune``, ``GradualPrune``,
``IterativePrune``, ``NMSparsity``, ``StructuredPrune``, ``TransformerPrune`` (attention
heads and FFN neurons of Hugging Face models).

Example:
    >>> from netpress.techniques.prune import MagnitudePrune
    >>> MagnitudePrune(0.9).scope
    'global'
"""

from .magnitude import LayerSparsity, MagnitudePrune, prune_to
from .masking import overall_sparsity, weight_sparsity
from .nm import NMSparsity, check_nm
from .resize import load_pruned_model, resize_to_state
from .schedule import GradualPrune, IterativePrune
from .structured import StructuredPrune, channel_counts, structured_prune
from .transformer import TransformerPrune

__all__ = ["GradualPrune", "IterativePrune", "LayerSparsity", "MagnitudePrune", "NMSparsity",
           "StructuredPrune", "TransformerPrune", "channel_counts", "check_nm", "load_pruned_model",
           "overall_sparsity", "prune_to", "resize_to_state", "structured_prune",
           "weight_sparsity"]
