import pytest
import torch

from netpress.errors import FormatError
from netpress.io import file_size, save_weights
from netpress.techniques.prune import prune_to
from netpress.techniques.prune.storage import csr_decode, csr_encode, load_sparse, save_sparse
from netpress.zoo import build_model


def test_csr_round_trip_conv_and_linear():
    g = torch.Generator().manual_seed(0)
    for shape in ((7, 9), (4, 3, 5, 5)):
        t = torch.randn(shape, generator=g)
        t[t.abs() < 1] = 0
        parts = csr_encode(t)
        assert parts["values"].numel() == int(torch.count_nonzero(t))
        assert parts["cols"].dtype == torch.int16
        assert torch.equal(csr_decode(parts), t)


def test_sparse_file_is_smaller_and_exact(tmp_path):
    torch.manual_seed(0)
    m = build_model("lenet-300-100")
    prune_to(m, 0.92, scope="layer")
    from netpress.bake import bake

    bake(m)
    dense = file_size(save_weights(m, tmp_path / "d.safetensors"))
    size = save_sparse(m.state_dict(), tmp_path / "s.safetensors")
    assert size == file_size(tmp_path / "s.safetensors")
    # 8% of the weights at 4 B value + 2 B column each, plus biases and row offsets
    nnz = sum(int(torch.count_nonzero(m[i].weight)) for i in (1, 3, 5))
    assert size < nnz * 6 + 4 * (300 + 100 + 10) + 4 * (300 + 100 + 10 + 3) + 2000
    assert dense / size > 7
    back = load_sparse(tmp_path / "s.safetensors")
    assert set(back) == set(m.state_dict())
    assert all(torch.equal(back[k], v) for k, v in m.state_dict().items())


def test_dense_tensors_stay_dense_and_corruption_is_caught(tmp_path):
    state = {"w": torch.randn(8, 8), "b": torch.randn(8)}
    save_sparse(state, tmp_path / "s.safetensors")
    assert set(load_sparse(tmp_path / "s.safetensors")) == {"w", "b"}
    parts = csr_encode(torch.eye(4))
    parts["cols"] = torch.tensor([0, 1, 2, 9], dtype=torch.int16)
    with pytest.raises(FormatError, match="corrupt"):
        csr_decode(parts)
