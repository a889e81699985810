import os

import pytest
import torch
from torch import nn

from netpress.errors import FormatError, ModelError
from netpress.io import atomic_write, load_into, load_weights, save_weights


def test_round_trip_equal_outputs(tmp_path):
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    p = save_weights(m, tmp_path / "m.safetensors", {"model": "toy"})
    m2 = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    load_into(m2, load_weights(p))
    x = torch.randn(5, 4)
    assert torch.equal(m(x), m2(x))


def test_pickle_is_refused(tmp_path):
    p = tmp_path / "m.pt"
    torch.save(nn.Linear(2, 2).state_dict(), p)
    with pytest.raises(FormatError, match="pickle"):
        load_weights(p)


def test_garbage_and_missing(tmp_path):
    (tmp_path / "g.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{bad json}xxxxx")
    with pytest.raises(FormatError, match="not a valid safetensors"):
        load_weights(tmp_path / "g.safetensors")
    with pytest.raises(ModelError, match="not found"):
        load_weights(tmp_path / "none.safetensors")


def test_wrong_shapes_named(tmp_path):
    p = save_weights(nn.Linear(4, 3), tmp_path / "a.safetensors")
    with pytest.raises(ModelError, match="wrong shape.*weight"):
        load_into(nn.Linear(5, 3), load_weights(p))
    with pytest.raises(ModelError, match="missing"):
        load_into(nn.Sequential(nn.Linear(4, 3)), load_weights(p))


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")

    def boom(p):
        with open(p, "w") as f:
            f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_written_files_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        p = save_weights(nn.Linear(2, 2), tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert os.stat(p).st_mode & 0o777 == 0o644


def test_safetensors_whose_header_length_starts_with_0x80_is_not_a_pickle(tmp_path):
    from netpress.io import load_weights, safetensors_bytes, write_bytes

    for n in range(1, 200):  # find metadata that makes the header length ≡ 0x80 mod 256
        data = safetensors_bytes({"w": torch.zeros(2)}, {"pad": "x" * n})
        if data[0] == 0x80:
            break
    assert data[0] == 0x80
    path = write_bytes(tmp_path / "w.safetensors", data)
    assert torch.equal(load_weights(path)["w"], torch.zeros(2))
