"""Quantization: fake-quant primitives, observers, static/dynamic int8 PTQ, weight-only
RTN/GPTQ with packed storage, QAT (LSQ/STE), per-layer diagnosis and mixed precision.

Importing this package registers its configs (``StaticInt8``, ``DynamicInt8``,
``WeightOnly``, ``Qat``) so recipes can name them.
"""

from .ptq import DynamicInt8, StaticInt8
from .qat import Qat
from .weight_only import WeightOnly

__all__ = ["DynamicInt8", "Qat", "StaticInt8", "WeightOnly"]
