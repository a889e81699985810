import math

import torch

from netpress.evaluate.metrics import (
    agreement,
    evaluate_logits,
    mean_kl,
    per_class_accuracy,
    topk_accuracy,
)


def test_hand_computed_metrics():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 1.0, 2.0], [2.0, 0.0, 1.0]])
    y = torch.tensor([0, 2, 2, 1])
    r = evaluate_logits(logits, y, 3)
    assert r.accuracy == 0.5
    assert topk_accuracy(logits, y, 2) == 0.75
    assert per_class_accuracy(logits, y, 3) == [1.0, 0.0, 0.5]
    assert r.n == 4


def test_agreement_and_kl():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert agreement(a, a) == 1.0 and abs(mean_kl(a, a)) < 1e-7
    b = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert agreement(a, b) == 0.5
    p = torch.softmax(b[0], 0)
    q = torch.softmax(a[0], 0)
    expected = float((p * (p / q).log()).sum()) / 2  # only the first row differs
    assert math.isclose(mean_kl(a, b), expected, rel_tol=1e-5)


def test_empty_class_is_nan():
    r = per_class_accuracy(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), 2)
    assert r[0] == 1.0 and math.isnan(r[1])
