import pytest
import torch

from netpress.errors import ConfigError
from netpress.techniques.prune.masks import (
    agp_sparsity,
    global_magnitude_masks,
    magnitude_mask,
    nm_mask,
    nm_violations,
    sparsity_of,
    threshold_mask,
)


@pytest.mark.parametrize("s", [0.0, 0.1, 0.5, 0.92, 0.999])
def test_magnitude_mask_is_exact(s):
    w = torch.randn(37, 53, generator=torch.Generator().manual_seed(1))
    keep = magnitude_mask(w, s)
    assert int((~keep).sum()) == round(s * w.numel())
    if 0 < s < 1:
        assert w[~keep].abs().max() <= w[keep].abs().min()


def test_magnitude_mask_ties_are_exact_and_deterministic():
    w = torch.ones(10)
    keep = magnitude_mask(w, 0.3)
    assert keep.tolist() == [False] * 3 + [True] * 7


def test_global_masks_rank_across_tensors():
    g = torch.Generator().manual_seed(0)
    ws = {"a": torch.randn(100, generator=g) * 10, "b": torch.randn(50, 4, generator=g)}
    masks = global_magnitude_masks(ws, 0.6)
    zeros = sum(int((~m).sum()) for m in masks.values())
    assert zeros == round(0.6 * 300)
    kept = torch.cat([ws[n][masks[n]].abs().reshape(-1) for n in ws])
    dropped = torch.cat([ws[n][~masks[n]].abs().reshape(-1) for n in ws])
    assert dropped.max() <= kept.min()
    assert sparsity_of(ws["b"] * masks["b"]) > sparsity_of(ws["a"] * masks["a"])


def test_threshold_mask_uses_quality_times_std():
    w = torch.tensor([0.5, -1.5, 2.5, -0.1])
    assert threshold_mask(w, 1.0, std=1.0).tolist() == [False, True, True, False]
    assert int(threshold_mask(w, 2.0, std=1.0).sum()) == 1


@pytest.mark.parametrize("n, m", [(2, 4), (4, 8), (1, 4), (3, 6)])
def test_nm_mask_linear_and_conv(n, m):
    g = torch.Generator().manual_seed(3)
    lin = torch.randn(7, 4 * m, generator=g)
    conv = torch.randn(5, 2 * m, 3, 3, generator=g)
    for w in (lin, conv):
        keep = nm_mask(w, n, m)
        pruned = w * keep
        assert nm_violations(pruned, n, m) == 0
        assert int(keep.sum()) == w.numel() * n // m
        assert nm_violations(w, n, m) > 0  # dense weights break the pattern
    # the kept weights are the largest of their group
    groups = (lin.abs()).reshape(-1, m)
    kept = (nm_mask(lin, n, m)).reshape(-1, m)
    assert (groups[kept].reshape(-1, n).min(1).values
            >= groups[~kept].reshape(-1, m - n).max(1).values).all() if n < m else True


def test_nm_groups_run_along_input_dim():
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
    assert nm_mask(w, 2, 4).tolist() == [[False, False, True, True], [True, True, False, False]]
    with pytest.raises(ConfigError, match="multiple of M=4"):
        nm_mask(torch.zeros(2, 6), 2, 4)


def test_agp_is_cubic_and_monotone():
    vals = [agp_sparsity(t, 0.9, 10, 110) for t in range(0, 130)]
    assert vals[0] == 0.0 and vals[-1] == 0.9
    assert all(b >= a for a, b in zip(vals, vals[1:], strict=False))
    assert agp_sparsity(60, 0.9, 10, 110) == pytest.approx(0.9 * (1 - 0.5**3))
