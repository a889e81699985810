"""Beyond one process: data-parallel training under torchrun with compressed gradients
(``ddp``, ``hooks``, ``launch``) and federated fine-tuning on Flower (``federated``).

Example:
    >>> from netpress.distributed import CommHook
    >>> CommHook("fp16").hook
    'fp16'
"""

from .hooks import CommHook

__all__ = ["CommHook"]
