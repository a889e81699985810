import gzip
import struct

import numpy as np
import pytest
import torch

from netpress.data.fashion_mnist import DEFAULT_DIR, VAL_SIZE, load_fashion_mnist
from netpress.errors import DataError


def write_fake(folder, n_train=5100, n_test=30, truncate=None):
    rng = np.random.default_rng(0)

    def put(name, arr):
        head = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
        raw = head + arr.astype(np.uint8).tobytes()
        if truncate == name:
            raw = raw[:-10]
        (folder / f"{name}.gz").write_bytes(gzip.compress(raw))

    put("train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 28, 28)))
    put("train-labels-idx1-ubyte", np.arange(n_train) % 10)
    put("t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)))
    put("t10k-labels-idx1-ubyte", np.arange(n_test) % 10)


def test_split_is_fixed(tmp_path):
    write_fake(tmp_path)
    s = load_fashion_mnist(tmp_path, seed=3, calib_size=50)
    assert len(s.train[0]) == 100 and len(s.val[0]) == VAL_SIZE and len(s.test[0]) == 30
    # validation is the last 5,000 training images, in order
    assert torch.equal(s.val[1], torch.arange(100, 5100) % 10)
    # calibration comes from train only, deterministic per seed
    assert len(s.calib[0]) == 50
    assert any(torch.equal(s.calib[0][0], x) for x in s.train[0])
    again = load_fashion_mnist(tmp_path, seed=3, calib_size=50)
    assert torch.equal(s.calib[0], again.calib[0])
    other = load_fashion_mnist(tmp_path, seed=4, calib_size=50)
    assert not torch.equal(s.calib[0], other.calib[0])


def test_truncated_file_is_a_clear_error(tmp_path):
    write_fake(tmp_path, truncate="t10k-labels-idx1-ubyte")
    with pytest.raises(DataError, match="truncated"):
        load_fashion_mnist(tmp_path)


def test_label_count_mismatch(tmp_path):
    write_fake(tmp_path)
    labels = np.arange(7, dtype=np.uint8)
    head = struct.pack(">HBBI", 0, 8, 1, 7)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(head + labels.tobytes()))
    with pytest.raises(DataError, match="expected 30 labels"):
        load_fashion_mnist(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "nowhere")


@pytest.mark.skipif(not __import__("os").path.isdir(DEFAULT_DIR), reason="package not installed")
def test_real_files_have_the_documented_shapes():
    s = load_fashion_mnist()
    assert s.train[0].shape == (55000, 1, 28, 28)
    assert s.val[0].shape == (5000, 1, 28, 28)
    assert s.test[0].shape == (10000, 1, 28, 28)
    assert torch.bincount(s.test[1]).tolist() == [1000] * 10
