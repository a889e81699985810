import json
import zlib

import numpy as np
import pytest
import torch
from torch import nn

from netpress import Context, __version__, compress
from netpress.encode.artifact import (
    artifact_bytes,
    decode_artifact,
    load_artifact,
    save_artifact,
)
from netpress.encode.container import PREFIX, pack_container
from netpress.encode.inspect import inspect_bytes
from netpress.errors import FormatError
from netpress.techniques.cluster import WeightShare
from netpress.zoo import build_model


def tiny() -> nn.Module:
    m = nn.Sequential(nn.Linear(6, 4))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor([[0.5, 0, 0, -0.25, 0, 0]] * 4))
        m[0].weight[1, 0] = 0
        m[0].bias.copy_(torch.tensor([0.125, -1, 0, 2]))
    return m


TINY_HEADER = (
    '{"format":"netpress-artifact","graph":{"initializers":["0.bias","0.weight"],"inputs":'
    '[{"dtype":"float32","name":"input","shape":["batch",6]}],"ir_version":8,"nodes":[{"attrs":'
    '[["transB","i",1]],"in":["input","0.weight","0.bias"],"op":"Gemm","out":["output"]}],'
    '"opsets":{"":17},"outputs":[{"dtype":"float32","name":"output","shape":["batch",4]}]},'
    '"metrics":{},"model":{"class":"Sequential","params":28,"spec":"tiny"},'
    '"netpress_version":"VERSION","recipe":[],"streams":[[8,1856691902],[8,1644384505],'
    '[3,2414145236],[2,3848431282]],"tensors":[{"dtype":"float32","encoding":"half","name":'
    '"0.bias","shape":[4],"stream":0},{"codebook":{"size":2,"stream":1},"dtype":"float32",'
    '"encoding":"shared","name":"0.weight","nonzero":7,"positions":{"kind":"bitmap","stream":2},'
    '"shape":[4,6],"values":{"alphabet":2,"coder":"huffman","stream":3,"symbols":7,'
    '"table_bytes":1}}],"torch":"names"}'
).replace("VERSION", __version__)


def test_exact_header_and_streams_of_a_tiny_model():
    data = artifact_bytes(tiny(), "tiny", coder="huffman")
    _, _, stored, text_len, _ = PREFIX.unpack_from(data)
    assert zlib.decompress(data[24:24 + stored]).decode() == TINY_HEADER
    start = -(-(24 + stored) // 8) * 8
    body = data[start:]
    # the bias [0.125, -1, 0, 2] as float16; codebook [-0.25, 0.5] as float32 LE; bitmap of the
    # 7 nonzeros (LSB first) + padding; Huffman table (lengths 1, 1) + padding, and the
    # values 1,0,0,1,0,1,0 written MSB-first: 1001010 + one pad bit = 0x94
    assert body == bytes.fromhex("003000bc00000040" "000080be0000003f"
                                 "0992240000000000" "1194")
    assert len(data) == 506
    header, state = decode_artifact(data)
    assert torch.equal(state["0.weight"], tiny()[0].weight.detach())
    assert torch.equal(state["0.bias"], tiny()[0].bias.detach())


def test_every_byte_corruption_and_truncation_detected():
    data = artifact_bytes(tiny(), "tiny", coder="ans")
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0xFF
        with pytest.raises(FormatError):
            decode_artifact(bytes(bad))
    for n in range(len(data)):
        with pytest.raises(FormatError):
            decode_artifact(data[:n])


def test_header_with_valid_checksums_but_bad_fields_is_refused():
    good = json.loads(zlib.decompress(artifact_bytes(tiny(), "tiny")[24:]
                                      [:PREFIX.unpack_from(artifact_bytes(tiny(), "tiny"))[2]]))
    streams = [b"\0" * 16]
    cases = [
        {"shape": [10**9, 10**6], "dtype": "float32", "encoding": "raw", "stream": 0},
        {"shape": [2, 2], "dtype": "float32", "encoding": "raw", "stream": 5},
        {"shape": [-1], "dtype": "float32", "encoding": "raw", "stream": 0},
        {"shape": [4], "dtype": "complex", "encoding": "raw", "stream": 0},
        {"shape": [4], "dtype": "float32", "encoding": "magic", "stream": 0},
        {"shape": [2, 2], "dtype": "float32", "encoding": "shared", "nonzero": 9},
    ]
    for t in cases:
        head = {k: v for k, v in good.items() if k != "streams"}
        head["tensors"] = [dict(t, name="w")]
        with pytest.raises(FormatError):
            decode_artifact(pack_container(head, streams))


@pytest.mark.parametrize("coder", ["ans", "huffman"])
def test_load_equals_save_after_weight_sharing(digits, tmp_path, coder):
    torch.manual_seed(0)
    model = build_model("lenet-300-100")
    with torch.no_grad():
        for lin in (model[1], model[3]):
            lin.weight[lin.weight.abs() < lin.weight.abs().quantile(0.9)] = 0.0
    compress(model, [WeightShare(bits=4, bias_bits=4)], Context(digits, threads=1))
    path = tmp_path / "m.netpress"
    size = save_artifact(model, path, "lenet-300-100", coder=coder, metrics={"note": "x"})
    assert size == path.stat().st_size
    loaded, header = load_artifact(path)
    x = digits.test[0]
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))  # exactly, not approximately
    assert header["metrics"] == {"note": "x"}
    info = inspect_bytes(path.read_bytes())
    assert info["file_bytes"] == size
    assert info["file_bytes"] == info["header_bytes"] + info["padding_bytes"] + sum(
        r["bytes"] for r in info["tensors"])
    w1 = next(r for r in info["tensors"] if r["name"] == "1.weight")
    assert w1["codebook_size"] <= 16 and abs(w1["kept"] - 0.1) < 0.001
    assert w1["index_kind"] in ("relative", "bitmap")
    assert w1["candidate_index_bytes"]["bitmap"] == 784 * 300 // 8
    assert w1["bytes"] <= w1["codebook_bytes"] + 784 * 300 // 8 + w1["value_bytes"]
    assert info["compression_ratio"] > 30  # 10% kept, 4-bit codebooks, coded


def test_same_model_same_bytes():
    m = tiny()
    assert artifact_bytes(m, "tiny") == artifact_bytes(m, "tiny")


def test_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        load_artifact(tmp_path / "nope.netpress")


def test_raw_dtypes_roundtrip():
    from netpress.encode.arrays import decode_array, encode_array

    arrays = {"f": np.random.default_rng(0).normal(size=(3, 3)).astype(np.float32),
              "i": np.arange(5), "b": np.array([True, False]), "h": np.ones(3, np.float16),
              "u": np.arange(200, dtype=np.uint8), "s": np.array(7, dtype=np.int64)}
    for name, a in arrays.items():
        streams: list[bytes] = []
        back = decode_array(encode_array(name, a, streams), streams, 1 << 20)
        assert back.dtype == a.dtype and back.shape == a.shape and np.array_equal(back, a)
