"""MatMulNBits export of weight-only models: ONNX Runtime computes what torch computes,
with netpress's own codes in the file and no float copy of the quantized weights."""

import copy

import onnx
import pytest
import torch
from torch import nn

from netpress.errors import ModelError
from netpress.export.nbits import export_nbits, nbits_layers, pack_matmul
from netpress.export.runtimes import ort_runner
from netpress.techniques.quantize.storage import save_packed
from netpress.techniques.quantize.weight_only import WeightOnly, quantize_weights

# accuracy_level 0 dequantizes to float32: the same products as torch, summed in
# another order (MLAS blocks), so outputs agree to float rounding
REL_TOL = 1e-5


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _mlp(k: int = 64, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(k, 48), nn.ReLU(), nn.Linear(48, 10)).eval()


def _ops(proto: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in proto.graph.node]


def _float_matrices(proto: onnx.ModelProto) -> list[str]:
    """Float 2-D initializers other than the low-bit layers' scales."""
    return [i.name for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT
            and len(i.dims) == 2 and not i.name.endswith(".weight.scales")]


def _packed_bytes(model: nn.Module) -> int:
    """Bytes of the low-bit tensors the graph should hold: codes, float32 scales per
    block, packed zero points."""
    total = 0
    for lay in nbits_layers(model).values():
        b, z = pack_matmul(lay)
        total += b.nbytes + lay.scale.nbytes + z.nbytes
    return total


@pytest.mark.parametrize("bits,group", [(4, 16), (4, 32), (8, 32), (4, 0)])
def test_mlp_matches_torch_with_codes_only(bits, group, tmp_path):
    model = quantize_weights(_mlp(), WeightOnly(bits=bits, group_size=group, method="rtn"))
    x = torch.randn(7, 64)
    path = export_nbits(model, x[:1], tmp_path / "m.onnx")
    proto = onnx.load(path)
    assert _ops(proto).count("MatMulNBits") == 2
    assert "Gemm" not in _ops(proto) and "MatMul" not in _ops(proto)
    assert _float_matrices(proto) == []  # no float copy of a quantized weight
    with torch.no_grad():
        ref = model(x)
    assert _rel(ort_runner(path)(x), ref) < REL_TOL
    size, biases = path.stat().st_size, 4 * (48 + 10)
    assert _packed_bytes(model) + biases < size < _packed_bytes(model) + biases + 1024  # graph
    # near the packed safetensors file: the same codes, scales in float32 instead of float16
    packed = save_packed(model, tmp_path / "w.safetensors").stat().st_size
    assert size < 1.2 * packed + 1024
    assert size < {4: 0.25, 8: 0.35}[bits] * 4 * (64 * 48 + 48 * 10) + 1024  # fp32 weights


@pytest.mark.parametrize("k,group", [(40, 16), (33, 32), (8, 16), (100, 0)])
def test_inputs_not_a_multiple_of_the_block(k, group, tmp_path):
    model = quantize_weights(_mlp(k), WeightOnly(bits=4, group_size=group, method="rtn"))
    x = torch.randn(3, k)
    path = export_nbits(model, x[:1], tmp_path / "m.onnx")
    with torch.no_grad():
        assert _rel(ort_runner(path)(x), model(x)) < REL_TOL


def test_group_size_48_uses_blocks_of_16(tmp_path):
    model = quantize_weights(_mlp(96), WeightOnly(bits=4, group_size=48, method="rtn"))
    assert {lay.block for lay in nbits_layers(model).values()} == {16}
    x = torch.randn(3, 96)
    path = export_nbits(model, x[:1], tmp_path / "m.onnx")
    with torch.no_grad():
        assert _rel(ort_runner(path)(x), model(x)) < REL_TOL


def test_accuracy_level_4_is_close(tmp_path):
    model = quantize_weights(_mlp(), WeightOnly(bits=4, group_size=32, method="rtn"))
    x = torch.randn(16, 64)
    path = export_nbits(model, x[:1], tmp_path / "m.onnx", accuracy_level=4)
    levels = [a.i for n in onnx.load(path).graph.node for a in n.attribute
              if a.name == "accuracy_level"]
    assert levels == [4, 4]
    with torch.no_grad():
        assert _rel(ort_runner(path)(x), model(x)) < 5e-2  # int8 activations


def test_learned_lsq_steps_are_what_ships(tmp_path):
    from netpress.techniques.quantize.qat import make_lsq

    model = quantize_weights(_mlp(), WeightOnly(bits=4, group_size=32, method="rtn"))
    for delta in make_lsq(model):  # steps moved by QAT, not yet frozen
        delta.data.uniform_(-0.05, 0.05)
    x = torch.randn(5, 64)
    path = export_nbits(model, x[:1], tmp_path / "m.onnx")
    with torch.no_grad():
        assert _rel(ort_runner(path)(x), model(x)) < REL_TOL


@pytest.mark.parametrize("cfg,match", [
    (WeightOnly(bits=3, group_size=32, method="rtn"), "3-bit"),
    (WeightOnly(bits=4, group_size=8, method="rtn"), "multiple of 16"),
])
def test_unsupported_grids_say_why(cfg, match, tmp_path):
    model = quantize_weights(_mlp(), cfg)
    with pytest.raises(ModelError, match=match):
        export_nbits(model, torch.zeros(1, 64), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_float_model_is_refused(tmp_path):
    with pytest.raises(ModelError, match="WeightOnly"):
        export_nbits(_mlp(), torch.zeros(1, 64), tmp_path / "m.onnx")


def test_equal_weights_each_get_their_layer(tmp_path):
    """Layers are matched by probe, not by value: two equal weights (and the same
    Linear called twice) still each become MatMulNBits."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 32)).eval()
    model[2].load_state_dict(model[0].state_dict())
    quantize_weights(model, WeightOnly(bits=4, group_size=16, method="rtn"))
    x = torch.randn(4, 32)
    path = export_nbits(model, x[:1], tmp_path / "m.onnx")
    proto = onnx.load(path)
    assert _ops(proto).count("MatMulNBits") == 2 and _float_matrices(proto) == []
    with torch.no_grad():
        assert _rel(ort_runner(path)(x), model(x)) < REL_TOL


class _Bag(nn.Module):
    """A token table and a head: the table goes to GatherBlockQuantized."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.table = nn.Embedding(100, 48)
        self.head = nn.Linear(48, 6)

    def forward(self, ids):
        return self.head(self.table(ids).mean(1))


@pytest.mark.parametrize("bits,symmetric", [(4, False), (4, True), (8, True)])
def test_token_table_and_symmetric_grids(bits, symmetric, tmp_path):
    model = quantize_weights(_Bag().eval(), WeightOnly(
        bits=bits, group_size=16, method="rtn", symmetric=symmetric, embedding_bits=bits))
    ids = torch.randint(0, 100, (5, 7))
    path = export_nbits(model, ids[:1], tmp_path / "m.onnx")
    proto = onnx.load(path)
    assert sorted(_ops(proto)) == ["GatherBlockQuantized", "MatMulNBits", "ReduceMean"]
    assert _float_matrices(proto) == []
    zero_points = [i.name for i in proto.graph.initializer if i.name.endswith("zero_points")]
    assert len(zero_points) == (0 if symmetric else 2)  # ORT's default 2^(bits-1) is ours
    with torch.no_grad():
        assert _rel(ort_runner(path)(ids), model(ids)) < REL_TOL


class _Reads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 8)

    def forward(self, x):
        return self.fc(x) + self.fc.weight.sum()  # the weight is read by a ReduceSum too


def test_weight_read_elsewhere_is_an_error(tmp_path):
    model = quantize_weights(_Reads().eval(), WeightOnly(bits=4, group_size=16, method="rtn"))
    with pytest.raises(ModelError, match="'fc'"):
        export_nbits(model, torch.zeros(1, 32), tmp_path / "m.onnx")


@pytest.fixture(scope="module")
def tiny_bert(make_tiny_hf):
    from netpress.zoo import build_model

    return {kind: build_model(make_tiny_hf(kind)).eval() for kind in ("encoder", "classifier")}


def _tokens(vocab: int, batch: int = 3, length: int = 9) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, vocab, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, 5:] = 0  # a padded row
    return {"input_ids": ids, "attention_mask": mask,
            "token_type_ids": torch.zeros(batch, length, dtype=torch.long)}


@pytest.mark.parametrize("kind,bits,group,emb,count", [
    ("encoder", 4, 16, 4, 12),  # q, k, v, attention out, FFN in and out of 2 layers
    ("encoder", 8, 32, 8, 12),
    ("classifier", 4, 32, 0, 14),  # + pooler and classifier head
])
def test_tiny_bert_matches_torch(tiny_bert, kind, bits, group, emb, count, tmp_path):
    model = quantize_weights(copy.deepcopy(tiny_bert[kind]), WeightOnly(
        bits=bits, group_size=group, method="rtn", embedding_bits=emb))
    x = _tokens(30522)  # the MiniLM tokenizer's vocabulary
    path = export_nbits(model, {k: v[:1, :4] for k, v in x.items()}, tmp_path / "m.onnx")
    proto = onnx.load(path)
    ops = _ops(proto)
    assert ops.count("MatMulNBits") == count
    assert ops.count("GatherBlockQuantized") == (1 if emb else 0)
    floats = sorted(n.rsplit(".", 2)[-2] for n in _float_matrices(proto))
    kept = ["position_embeddings", "token_type_embeddings"]  # not quantized
    assert floats == sorted(kept + ([] if emb else ["word_embeddings"]))
    table = 30522 * 32 * 4  # the word table in float32
    if emb:  # stored in `emb` bits (+ float32 scales and zero points per group)
        assert path.stat().st_size < table * (emb / 32 + 0.1) + 200_000
    with torch.no_grad():
        ref = model(**x)
    out = ort_runner(path)(x)
    assert out.shape == ref.shape
    assert _rel(out, ref) < REL_TOL
