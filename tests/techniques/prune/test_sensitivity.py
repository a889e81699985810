import pytest
import torch
from torch import nn

from netpress.context import Context
from netpress.data.splits import Split
from netpress.errors import ConfigError
from netpress.techniques.prune.sensitivity import (
    Sensitivity,
    plot_sensitivity,
    ratios_for_target,
    sensitivity_sweep,
)
from netpress.zoo import build_model


def _toy():
    """A layer whose accuracy falls monotonically as weights go: example j is one-hot on
    feature j, and class 1 wins only while weight (1, j) or (0, j) survives."""
    w = 2.0 ** -torch.arange(8.0)
    lin = nn.Linear(8, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([-w, w]))
    x = torch.eye(8).repeat(4, 1).reshape(32, 1, 1, 8)
    y = torch.ones(32, dtype=torch.int64)
    split = Split("toy", (x, y), (x, y), (x, y), (x, y), 2, ("0", "1"))
    return nn.Sequential(nn.Flatten(), lin), Context(split)


def test_sweep_monotone_on_toy_layer():
    model, ctx = _toy()
    sweep = tuple(i / 16 for i in range(16))
    res = sensitivity_sweep(model, ctx, sweep)
    accs = res.accuracy["1"]
    assert res.baseline_accuracy == 1.0 and accs[0] == 1.0
    assert all(b <= a for a, b in zip(accs, accs[1:], strict=False))
    assert accs[-1] < 0.5
    assert torch.count_nonzero(model[1].weight) == 16  # the model was not touched


def test_structured_sweep_and_ratios(digits, tmp_path):
    torch.manual_seed(0)
    m = build_model("lenet-300-100")
    ctx = Context(digits)
    res = sensitivity_sweep(m, ctx, (0.0, 0.9), kind="structured")
    assert list(res.accuracy) == ["1", "3"]  # layer 5 is the output
    assert res.sizes == {"1": 300, "3": 100}
    unstructured = sensitivity_sweep(m, ctx, (0.0, 0.9, 0.95))
    ratios = ratios_for_target(unstructured, 0.8)
    total = sum(unstructured.sizes.values())
    assert sum(ratios[n] * unstructured.sizes[n] for n in ratios) / total == pytest.approx(0.8)
    plot_sensitivity(unstructured, tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ratios_spare_the_sensitive_layer():
    res = Sensitivity("unstructured", [0.0, 0.5, 0.9], 0.9,
                      {"a": [0.9, 0.9, 0.89], "b": [0.9, 0.5, 0.1]}, {"a": 90, "b": 10})
    r = ratios_for_target(res, 0.85)
    assert r == {"a": 0.9, "b": pytest.approx(0.4)}
    with pytest.raises(ConfigError, match="reach only"):
        ratios_for_target(res, 0.95)


def test_bad_sweep_values():
    with pytest.raises(ConfigError):
        sensitivity_sweep(build_model("lenet-300-100"), None, (0.5, 1.0))
