import copy
import math

import pytest
import torch
from rich.console import Console
from torch import nn

from netpress import api
from netpress.data.loaders import ArrayLoader
from netpress.data.splits import Split
from netpress.errors import ModelError
from netpress.evaluate.behaviour import (
    behaviour,
    expected_calibration_error,
    fgsm_accuracies,
    fgsm_accuracy,
    gaussian_noise_accuracy,
    input_bounds,
)
from netpress.evaluate.behaviour_table import behaviour_table, per_class_table
from netpress.evaluate.metrics import predict
from netpress.techniques.prune.magnitude import prune_to


def accuracy(model, loader):
    """Clean accuracy as hits / n (how the robustness functions count)."""
    logits, y = predict(model, loader)
    return int((logits.argmax(1) == y).sum()) / len(y)


def logits_with_conf(conf: float, cls: int, k: int = 2) -> list[float]:
    """Two-class logits whose softmax gives ``conf`` to class ``cls``."""
    row = [0.0] * k
    row[cls] = math.log(conf / (1 - conf))
    return row


def reference_ece(logits, labels, bins):
    probs = torch.softmax(logits.double(), 1)
    conf, pred = probs.max(1)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            acc = float((pred[sel] == labels[sel]).double().mean())
            total += int(sel.sum()) / len(labels) * abs(acc - float(conf[sel].mean()))
    return total


def test_ece_perfectly_calibrated_is_zero():
    # 4 examples at confidence 0.75 with 3 right; 3 examples at ~1.0, all right
    rows = [logits_with_conf(0.75, 0)] * 4 + [[100.0, 0.0]] * 3
    labels = torch.tensor([0, 0, 0, 1, 0, 0, 0])
    assert expected_calibration_error(torch.tensor(rows), labels) == pytest.approx(0.0, abs=1e-6)


def test_ece_hand_computed():
    # bin of conf 0.9: 2 examples, 1 right -> gap 0.4; bin of conf 0.6: 2 examples, both right
    # -> gap 0.4; bin of conf 0.75: 4 examples, 3 right -> gap 0.  ECE = (2*.4 + 2*.4) / 8 = 0.2
    rows = ([logits_with_conf(0.9, 0)] * 2 + [logits_with_conf(0.6, 1)] * 2
            + [logits_with_conf(0.75, 0)] * 4)
    labels = torch.tensor([0, 1, 1, 1, 0, 0, 0, 1])
    logits = torch.tensor(rows)
    assert expected_calibration_error(logits, labels, bins=10) == pytest.approx(0.2, abs=1e-6)
    # one bin pools everything: mean confidence 0.75 == accuracy 6/8, so the gap vanishes
    assert expected_calibration_error(logits, labels, bins=1) == pytest.approx(0.0, abs=1e-6)


def test_ece_matches_loop_reference():
    g = torch.Generator().manual_seed(3)
    logits = 3 * torch.randn(500, 10, generator=g)
    labels = torch.randint(0, 10, (500,), generator=g)
    for bins in (1, 5, 15):
        assert expected_calibration_error(logits, labels, bins) == pytest.approx(
            reference_ece(logits, labels, bins), abs=1e-9)


@pytest.fixture(scope="module")
def trained(digits):
    model, _ = api.train("lenet-300-100", digits, epochs=1, seed=0, threads=1)
    return model.eval()


def test_noise_sigma_zero_is_clean_and_seeded(trained, digits):
    x, y = digits.test
    bounds = input_bounds(x)
    clean = accuracy(trained, ArrayLoader(x, y, batch_size=1000))
    assert clean > 0.8
    assert gaussian_noise_accuracy(trained, x, y, 0.0, seed=0, bounds=bounds) == clean
    scale = bounds[1] - bounds[0]
    a = gaussian_noise_accuracy(trained, x, y, 1.0 * scale, seed=5, bounds=bounds)
    assert a == gaussian_noise_accuracy(trained, x, y, 1.0 * scale, seed=5, bounds=bounds)
    assert a < clean - 0.2  # heavy noise really hurts
    assert gaussian_noise_accuracy(trained, x, y, 0.1 * scale, seed=5, bounds=bounds) > a


class Recorder(nn.Module):
    """Keeps every input it sees; predicts class 0."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x.clone())
        return torch.zeros(len(x), 2)


def test_noise_is_seeded_gaussian_and_clamped():
    x, y = torch.full((4000, 1, 2, 2), 0.5), torch.zeros(4000).long()

    def noisy(sigma, seed, bounds):
        r = Recorder()
        assert gaussian_noise_accuracy(r, x, y, sigma, seed, batch_size=1000, bounds=bounds) == 1.0
        return torch.cat(r.seen)

    a, b, c = noisy(0.2, 7, None), noisy(0.2, 7, None), noisy(0.2, 8, None)
    assert torch.equal(a, b) and not torch.equal(a, c)
    noise = a - 0.5
    assert abs(float(noise.mean())) < 0.01 and float(noise.std()) == pytest.approx(0.2, rel=0.02)
    clamped = noisy(0.2, 7, (0.0, 1.0))
    assert float(clamped.min()) == 0.0 and float(clamped.max()) == 1.0
    assert torch.equal(clamped, a.clamp(0, 1))


def test_fgsm_lowers_accuracy_of_trained_model(trained, digits):
    x, y = digits.test
    lo, hi = input_bounds(x)
    clean = accuracy(trained, ArrayLoader(x, y, batch_size=1000))
    assert fgsm_accuracy(trained, x, y, 0.0, bounds=(lo, hi)) == clean
    adv = fgsm_accuracy(trained, x, y, 0.05 * (hi - lo), bounds=(lo, hi))
    assert adv <= clean - 0.10, (clean, adv)
    # one gradient for several eps gives the same numbers; larger eps hurts more
    many = fgsm_accuracies(trained, x, y, [0.0, 0.05 * (hi - lo), 0.1 * (hi - lo)], bounds=(lo, hi))
    assert many[0] == clean and many[1] == adv and many[2] <= adv
    # FGSM is far stronger than random noise of the same size
    assert adv < gaussian_noise_accuracy(trained, x, y, 0.05 * (hi - lo), 0, bounds=(lo, hi))


def test_fgsm_through_parametrizations_and_conv_zoo(trained, digits):
    x, y = digits.test
    lo, hi = input_bounds(x)
    pruned = copy.deepcopy(trained)
    pruned.train()
    prune_to(pruned, 0.7)
    baked = api.bake(copy.deepcopy(pruned)).eval()
    eps = 0.03 * (hi - lo)
    a = fgsm_accuracy(pruned, x, y, eps, bounds=(lo, hi))
    assert pruned.training  # mode restored
    assert abs(a - fgsm_accuracy(baked, x, y, eps, bounds=(lo, hi))) <= 1 / len(y)
    conv = api.load_model("lenet5-caffe")
    clean = accuracy(conv, ArrayLoader(x, y))
    assert fgsm_accuracy(conv, x, y, 0.0, batch_size=128, bounds=(lo, hi)) == clean


def test_fgsm_without_gradient_is_a_clear_error(digits):
    class NoGrad(nn.Module):
        def forward(self, x):
            return torch.zeros(len(x), 10, requires_grad=True)

    x, y = digits.test
    with pytest.raises(ModelError, match="FGSM needs the gradient"):
        fgsm_accuracy(NoGrad(), x, y, 0.1)


class OneHot(nn.Module):
    """Logits = 10 * the flattened input: a model whose predictions are its input."""

    def forward(self, x):
        return 10 * x.flatten(1)


def hand_split(pred: list[int], labels: list[int]) -> Split:
    x = torch.nn.functional.one_hot(torch.tensor(pred), 3).float().reshape(-1, 1, 1, 3)
    y = torch.tensor(labels)
    return Split("hand", (x, y), (x, y), (x, y), (x, y), 3, ("a", "b", "c"))


def test_per_class_drop_on_hand_made_case():
    labels = [0, 0, 0, 0, 1, 1, 2, 2]
    split = hand_split([0, 0, 1, 0, 1, 0, 2, 2], labels)  # what the compressed model predicts

    class Baseline(nn.Module):  # always right
        def forward(self, x):
            return 10 * torch.nn.functional.one_hot(split.test[1], 3).float() + 0 * x.flatten(1)

    b = behaviour(OneHot(), Baseline(), split, noise=(0.0,), eps=(0.0,), batch_size=1000)
    assert b["accuracy"] == 0.75 and b["baseline_accuracy"] == 1.0
    assert b["accuracy_drop_pp"] == pytest.approx(25.0)
    assert b["per_class"]["names"] == ["a", "b", "c"]
    assert b["per_class"]["accuracy"] == [0.75, 0.5, 1.0]
    assert b["per_class"]["baseline"] == [1.0, 1.0, 1.0]
    assert b["per_class"]["drop_pp"] == pytest.approx([25.0, 50.0, 0.0])
    assert b["max_class_drop_pp"] == pytest.approx(50.0) and b["worst_class"] == "b"
    assert b["agreement"] == 0.75
    assert b["noise"] == [{"sigma": 0.0, "accuracy": 0.75, "baseline_accuracy": 1.0}]
    assert b["fgsm"][0]["accuracy"] == 0.75


KEYS = {"split", "examples", "input_range", "accuracy", "baseline_accuracy", "accuracy_drop_pp",
        "per_class", "max_class_drop_pp", "worst_class", "ece", "baseline_ece", "ece_bins",
        "noise", "fgsm", "agreement", "kl", "seed"}


def test_behaviour_of_pruned_model(trained, digits):
    pruned = copy.deepcopy(trained)
    prune_to(pruned, 0.9)
    b = behaviour(pruned, trained, digits, seed=1)
    assert set(b) == KEYS
    ev = api.evaluate(pruned, digits, reference=trained)
    assert b["accuracy"] == pytest.approx(ev.accuracy) and b["agreement"] == pytest.approx(ev.agreement)
    assert b["kl"] == pytest.approx(ev.kl) and b["kl"] > 0
    assert b["baseline_accuracy"] == pytest.approx(api.evaluate(trained, digits).accuracy)
    assert b["examples"] == 300 and b["input_range"][0] < b["input_range"][1]
    assert [r["sigma"] for r in b["noise"]] == [0.1, 0.2] and [r["eps"] for r in b["fgsm"]] == [0.02, 0.05]
    for r in b["fgsm"]:
        assert r["baseline_accuracy"] < b["baseline_accuracy"]
    assert b["fgsm"][1]["baseline_accuracy"] <= b["fgsm"][0]["baseline_accuracy"]
    assert 0 < b["ece"] < 1 and 0 < b["baseline_ece"] < 1
    drops = b["per_class"]["drop_pp"]
    assert b["max_class_drop_pp"] == max(drops)
    assert b["worst_class"] == b["per_class"]["names"][drops.index(max(drops))]
    assert behaviour(pruned, trained, digits, seed=1) == b  # reproducible

    console = Console(width=120, record=True)
    console.print(behaviour_table(b))
    console.print(per_class_table(b))
    text = console.export_text()
    assert "FGSM ε=0.05" in text and "noise σ=0.2" in text and "◀ largest" in text
    assert f"{100 * b['accuracy']:.2f}%" in text
