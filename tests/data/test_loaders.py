import pytest
import torch

from netpress.data import ArrayLoader, load_split
from netpress.errors import DataError


def test_shuffle_is_seeded_and_changes_per_epoch():
    x, y = torch.arange(20).float().view(20, 1, 1, 1), torch.arange(20)
    a = ArrayLoader(x, y, batch_size=5, shuffle=True, seed=1)
    b = ArrayLoader(x, y, batch_size=5, shuffle=True, seed=1)
    e1 = torch.cat([yy for _, yy in a])
    assert torch.equal(e1, torch.cat([yy for _, yy in b]))
    e2 = torch.cat([yy for _, yy in a])
    assert not torch.equal(e1, e2)
    assert sorted(e1.tolist()) == list(range(20))


def test_digits_split(digits):
    assert digits.input_shape == (1, 28, 28)
    assert len(digits.train[0]) + len(digits.val[0]) + len(digits.test[0]) == 1797
    assert len(digits.calib[0]) == 256


def test_user_data_function():
    s = load_split("netpress.data.digits:load_digits_split")
    assert s.name == "digits"


@pytest.mark.parametrize("spec, msg", [("mnist", "unknown data set"),
                                        ("nosuch.module:f", "cannot load data"),
                                        ("netpress.zoo:build_model", "seed=")])
def test_bad_specs(spec, msg):
    with pytest.raises(DataError, match=msg):
        load_split(spec)


def _tokens(n=40, width=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, width + 1, (n,), generator=g)
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    ids = torch.randint(5, 100, (n, width), generator=g) * mask
    return {"input_ids": ids, "attention_mask": mask}, lengths


def test_length_batches_cut_padding_and_gather_restores_order():
    x, lengths = _tokens()
    y = torch.arange(40)
    lo = ArrayLoader(x, y, batch_size=8, lengths=lengths, seq_len=16)
    seen, widths = [], []
    for xb, yb in lo:
        w = xb["input_ids"].shape[1]
        assert w == int(lengths[yb].max())  # each batch cut to its longest text
        assert xb["attention_mask"].shape[1] == w and bool((xb["attention_mask"].sum(1) == lengths[yb]).all())
        widths.append(w)
        seen.append(yb)
    assert widths == sorted(widths, reverse=True)  # like lengths together
    assert lo.gather(seen).tolist() == list(range(40))


def test_length_buckets_when_shuffling_cover_each_example_once_and_are_seeded():
    x, lengths = _tokens(100)
    y = torch.arange(100)

    def epoch(seed):
        lo = ArrayLoader(x, y, batch_size=10, shuffle=True, seed=seed, lengths=lengths, seq_len=16,
                         bucket=5)
        return [yb.tolist() for _, yb in lo]

    a = epoch(0)
    assert sorted(sum(a, [])) == list(range(100))
    assert a == epoch(0) and a != epoch(1)
    # a window of 5 batches is sorted by length: batches are tighter than random ones
    spread = sum(int(lengths[b].max() - lengths[b].min()) for b in map(torch.tensor, a))
    g = torch.Generator().manual_seed(0)
    rand = torch.randperm(100, generator=g).reshape(10, 10)
    assert spread < sum(int(lengths[b].max() - lengths[b].min()) for b in rand)


def test_token_targets_are_cut_and_padded_back():
    x, lengths = _tokens(12, width=10)
    y = torch.where(x["attention_mask"].bool(), x["input_ids"], torch.full_like(x["input_ids"], -100))
    lo = ArrayLoader(x, y, batch_size=4, lengths=lengths, seq_len=10, token_targets=True)
    pieces = []
    for xb, yb in lo:
        assert yb.shape == xb["input_ids"].shape
        pieces.append(yb)
    assert torch.equal(lo.gather(pieces, fill=-100), y)
