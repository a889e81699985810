import copy

import pytest
import torch

from netpress import api
from netpress.config import Config
from netpress.context import Context
from netpress.errors import ConfigError
from netpress.techniques.distill import Distill, build_student, distill_into, scale_width
from netpress.techniques.distill.distill import FeatureTap, make_adapter, parse_pairs


@pytest.fixture(scope="module")
def teacher(digits):
    model, _ = api.train("lenet5", digits, epochs=6, seed=0)
    return model


def test_alpha_zero_is_plain_cross_entropy_training(teacher, digits):
    """With alpha=0 and no hints the loss is CE: same weights to the bit as fine-tuning."""
    ctx = Context(digits, seed=3)
    x = digits.train[0][:2]
    s1 = scale_width(teacher, 0.5, x, seed=5)
    s2 = copy.deepcopy(s1)
    distill_into(s1, teacher, Distill(alpha=0.0, epochs=1, lr=1e-3), ctx)
    ctx.finetune(s2, 1, lr=1e-3)
    for a, b in zip(s1.parameters(), s2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_cached_teacher_logits_train_the_same_student(teacher, digits):
    """Teacher logits computed once give the student the same updates as computing them
    per batch (up to float summation order)."""
    ctx = Context(digits, seed=1)
    s1 = scale_width(teacher, 0.5, digits.train[0][:2], seed=2)
    s2 = copy.deepcopy(s1)
    r1 = distill_into(s1, teacher, Distill(epochs=2, lr=1e-3, alpha=0.7, temperature=2.0), ctx)
    r2 = distill_into(s2, teacher, Distill(epochs=2, lr=1e-3, alpha=0.7, temperature=2.0,
                                           cache_teacher=False), ctx)
    assert r1.losses == pytest.approx(r2.losses, rel=1e-4)
    for a, b in zip(s1.parameters(), s2.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-4)
    assert ctx.task.part("train")[1].dim() == 1  # the caller's context is untouched


def test_distillation_moves_the_student_towards_the_teacher(teacher, digits):
    ctx = Context(digits, seed=0)
    cfg = Distill(width=0.5, epochs=4, lr=3e-3, temperature=4.0, alpha=1.0,
                  hints=("features.3=features.3",), attention=("features.0=features.0",))
    assert Config.from_dict(cfg.to_dict()) == cfg
    student = build_student(teacher, cfg, digits.train[0][:2])
    x = digits.val[0]

    def kl(s):
        with torch.no_grad():
            t = torch.log_softmax(teacher(x), 1)
            return float(torch.nn.functional.kl_div(torch.log_softmax(s.eval()(x), 1), t,
                                                    log_target=True, reduction="batchmean"))

    before = kl(student)
    result = distill_into(student, teacher, cfg, ctx)
    assert result.losses[-1] < result.losses[0]
    assert kl(student) < 0.75 * before
    assert ctx.evaluate(student) > 0.5  # alpha=1: labels never seen, teacher knowledge only
    assert all(p.requires_grad for p in teacher.parameters())  # teacher restored


def test_handler_returns_a_smaller_student(teacher, digits):
    student = api.compress(teacher, [Distill(width=0.5, epochs=1)], Context(digits))
    assert sum(p.numel() for p in student.parameters()) < \
        sum(p.numel() for p in teacher.parameters())


def test_feature_tap_and_adapters():
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    tap = FeatureTap(m, ["0"])
    m(torch.zeros(2, 1, 6, 6))
    assert tap.out["0"].shape == (2, 4, 4, 4)
    tap.remove()
    ad = make_adapter(torch.zeros(2, 4, 4, 4), torch.zeros(2, 9, 2, 2))
    assert ad(torch.zeros(2, 4, 4, 4)).shape == (2, 9, 2, 2)
    assert parse_pairs(("a=b", "c")) == [("a", "b"), ("c", "c")]


@pytest.mark.parametrize("bad", [dict(width=0.0), dict(temperature=0.0), dict(alpha=1.5),
                                 dict(epochs=-1)])
def test_config_rejects_impossible_values(bad):
    with pytest.raises(ConfigError):
        Distill(**bad)
