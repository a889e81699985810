"""Weight-only quantization of the token-embedding table (``embedding_bits``)."""

import torch
from torch import nn

from netpress.io import file_size, save_weights
from netpress.targets import token_embedding
from netpress.techniques.quantize.storage import load_packed, save_packed
from netpress.techniques.quantize.weight_only import WeightOnly, quantize_weights


class Bag(nn.Module):
    def __init__(self):
        super().__init__()
        self.pos = nn.Embedding(16, 64)
        self.tok = nn.Embedding(1000, 64, padding_idx=0)  # padding row: all zeros
        self.out = nn.Linear(64, 8)

    def forward(self, ids):
        return self.out(self.tok(ids).mean(1) + self.pos.weight[: ids.shape[1]].mean(0))


def test_the_largest_embedding_is_quantized_and_packed(tmp_path):
    torch.manual_seed(0)
    m = Bag()
    assert token_embedding(m) is m.tok
    q = quantize_weights(m, WeightOnly(bits=4, group_size=32, method="rtn", embedding_bits=4))
    w = q.tok.weight.detach()
    for row in (1, 500):
        for g in (slice(0, 32), slice(32, 64)):
            assert torch.unique(w[row, g]).numel() <= 16  # 4-bit grid per row group
    assert torch.count_nonzero(w[0]) == 0  # the padding row stays exactly zero
    assert not hasattr(q.pos, "parametrizations")  # position table left float
    dense = file_size(save_weights(Bag(), tmp_path / "f.safetensors"))
    packed = file_size(save_packed(q, tmp_path / "q.safetensors"))
    assert packed < 0.2 * dense  # 4 bits + fp16 scale and zero point per 32 weights
    ids = torch.randint(0, 1000, (5, 7))
    back = load_packed(Bag(), tmp_path / "q.safetensors")
    assert torch.equal(back(ids), q(ids))


def test_embedding_bits_is_validated():
    import pytest

    from netpress.errors import ConfigError

    with pytest.raises(ConfigError, match="embedding_bits"):
        WeightOnly(embedding_bits=1)
