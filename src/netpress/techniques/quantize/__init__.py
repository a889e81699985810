"""Quantization: fake-quant primitives, observers, static/dynamic int8 PTQ, weight-only
RTN/GPTQ with packed storage, QAT (LSQ/STE), per-layer diagnosis and mixed precision."""
