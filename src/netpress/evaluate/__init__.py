"""Evaluation: accuracy, per-class accuracy, agreement and KL against a reference."""

from .metrics import EvalResult, accuracy, evaluate_logits, predict

__all__ = ["EvalResult", "accuracy", "evaluate_logits", "predict"]
