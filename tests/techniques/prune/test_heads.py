import pytest
import safetensors.torch
import torch
import transformers
from torch import nn
from torch.nn.utils import parametrize
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertModel,
    GPT2Config,
    GPT2LMHeadModel,
)

from netpress.errors import ConfigError, ModelError
from netpress.techniques.prune.head_importance import (
    ffn_importance,
    ffn_magnitude,
    gated,
    head_importance,
    head_magnitude,
    select_lowest,
)
from netpress.techniques.prune.heads import (
    apply_transformer_shape,
    attention_blocks,
    drop_layers_hf,
    ffn_blocks,
    pruned_shape,
    remove_ffn_neurons,
    remove_heads,
    transformer_shape,
)
from netpress.zoo.hf import load_hf, save_hf

transformers.utils.logging.disable_progress_bar()
FAMILIES = ("bert", "distil", "gpt2")
WIDTH = {"bert": 64, "distil": 64, "gpt2": 128}  # FFN neurons per layer


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64, vocab_size=100,
        max_position_embeddings=64, num_labels=3, initializer_range=0.2)).save_pretrained(root / "bert")
    DistilBertModel(DistilBertConfig(dim=32, n_heads=4, hidden_dim=64, n_layers=3, vocab_size=100,
                                     max_position_embeddings=64)).save_pretrained(root / "distil")
    GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=3, n_head=4, vocab_size=100, n_positions=64, bos_token_id=0,
                               eos_token_id=0)).save_pretrained(root / "gpt2")
    return root


def _batch():
    ids = torch.randint(1, 100, (3, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 4:] = 0
    return ids, mask


def _load(folders, name):
    m, _ = load_hf(folders / name)
    return m.eval()


def _run(m):
    with torch.no_grad():
        return m(*_batch())


def _loss(m, b):
    return m(b["input_ids"], b["attention_mask"]).float().pow(2).mean()


HEADS = {0: [1, 3], 2: [0]}
NEURONS = {1: [0, 5, 9, 10, 33]}


def _gates(m):
    heads = {i: torch.ones(4) for i in HEADS}
    for i, hs in HEADS.items():
        heads[i][hs] = 0
    ffn = {1: torch.ones(ffn_blocks(m)[1].width)}
    ffn[1][NEURONS[1]] = 0
    return heads, ffn


@pytest.mark.parametrize("name", FAMILIES)
def test_removal_equals_masking(folders, name):
    m = _load(folders, name)
    before = _run(m)
    n_params = sum(p.numel() for p in m.parameters())
    heads, ffn = _gates(m)
    with gated(m, heads=heads, ffn=ffn):
        masked = _run(m)
    remove_heads(m, HEADS)
    remove_ffn_neurons(m, NEURONS)
    after = _run(m)
    assert (after - masked).abs().max().item() < 1e-5
    assert (after - before).abs().max().item() > 1e-3  # the removed units mattered
    assert [b.num_heads for b in attention_blocks(m)] == [2, 4, 3]
    assert [f.width for f in ffn_blocks(m)] == [WIDTH[name], WIDTH[name] - 5, WIDTH[name]]
    # 3 heads x (q, k, v rows + biases, o columns) of 8 dims, 5 neurons x (up row + bias, down column)
    assert n_params - sum(p.numel() for p in m.parameters()) == 3 * 8 * (3 * 33 + 32) + 5 * (33 + 32)
    shape = transformer_shape(m)
    assert [e["heads"] for e in shape["layers"]] == [[0, 2], [0, 1, 2, 3], [1, 2, 3]]
    remove_heads(m, {2: [1]})  # positions count in the current heads; the shape keeps original indices
    assert transformer_shape(m)["layers"][2]["heads"] == [1, 3]


def test_removal_equals_masking_with_eager_attention(folders):
    m = _load(folders, "bert")
    m.model.set_attn_implementation("eager")
    heads, ffn = _gates(m)
    with gated(m, heads=heads, ffn=ffn):
        masked = _run(m)
    remove_ffn_neurons(remove_heads(m, HEADS), NEURONS)
    assert (_run(m) - masked).abs().max().item() < 1e-5


@pytest.mark.parametrize("name", FAMILIES)
def test_pruned_shape_replays_from_safetensors(folders, name):
    m = _load(folders, name)
    assert pruned_shape(m) is None
    remove_ffn_neurons(remove_heads(m, HEADS), NEURONS)
    drop_layers_hf(m, [0, 2])
    out = _run(m)
    shape = pruned_shape(m)
    assert shape is not None and [e["source"] for e in shape["layers"]] == [0, 2]
    blob = safetensors.torch.save({k: v.contiguous() for k, v in m.state_dict().items()
                                   if not k.endswith("lm_head.weight")})
    fresh = _load(folders, name)
    apply_transformer_shape(fresh, shape)
    missing, unexpected = fresh.load_state_dict(safetensors.torch.load(blob), strict=False)
    assert unexpected == [] and missing in ([], ["model.lm_head.weight"])  # tied to wte
    assert torch.equal(_run(fresh), out)
    assert transformer_shape(fresh) == shape


@pytest.mark.parametrize("name", ("bert", "gpt2"))
def test_save_hf_keeps_the_pruned_shape(folders, name, tmp_path):
    m = _load(folders, name)
    remove_ffn_neurons(remove_heads(m, HEADS), NEURONS)
    drop_layers_hf(m, [1, 2])
    again, _ = load_hf(save_hf(m, tmp_path / "pruned"))
    assert torch.equal(_run(again.eval()), _run(m))
    assert transformer_shape(again)["layers"][1]["heads"] == [1, 2, 3]
    assert "netpress_shape" not in again.model.config.to_dict()
    assert "netpress_shape" not in m.model.config.to_dict()
    # plain transformers builds the same heads in every layer
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        transformers.AutoModel.from_pretrained(tmp_path / "pruned", local_files_only=True)


@pytest.mark.parametrize("name", FAMILIES)
def test_drop_layers_equals_skipping_them(folders, name):
    m = _load(folders, name)
    layers = m.model.base_model.h if name == "gpt2" else \
        (m.model.base_model.transformer.layer if name == "distil" else m.model.base_model.encoder.layer)
    skip = layers[1].register_forward_hook(lambda _m, args, _out: args[0])  # layer 1 as identity
    skipped = _run(m)
    skip.remove()
    drop_layers_hf(m, [0, 2])
    assert m.model.config.num_hidden_layers == 2 and len(attention_blocks(m)) == 2
    assert torch.equal(_run(m), skipped)


def test_gpt2_generates_after_surgery_with_its_cache(folders):
    m = _load(folders, "gpt2")
    drop_layers_hf(remove_heads(m, HEADS), [0, 2])
    ids = torch.tensor([[5, 6, 7]])
    gen = m.model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=0)
    seq = ids
    for _ in range(4):  # greedy decoding without a cache
        with torch.no_grad():
            seq = torch.cat([seq, m(seq)[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(gen, seq)


@pytest.mark.parametrize("name", ("bert", "gpt2"))
def test_importance_scores(folders, name):
    m = _load(folders, name)
    b = attention_blocks(m)[0]
    with torch.no_grad():  # head 1 of layer 0 and neuron 5 of layer 1 contribute nothing
        if name == "gpt2":
            b.out.weight[8:16] = 0
            ffn_blocks(m)[1].down.weight[5] = 0
        else:
            b.out.weight[:, 8:16] = 0
            ffn_blocks(m)[1].down.weight[:, 5] = 0
    ids, mask = _batch()
    batches = [{"input_ids": ids[s], "attention_mask": mask[s]} for s in (slice(0, 2), slice(2, 3))]
    raw = head_importance(m, batches, _loss, normalize=False)
    assert raw[0][1].item() == 0 and (raw[0][[0, 2, 3]] > 0).all() and (raw[1] > 0).all()
    assert torch.allclose(head_importance(m, batches, _loss)[2].norm(), torch.tensor(1.0))
    # the score is |dL/dgate|: compare with a central difference on head 2 of layer 1, batch 0
    eps = 1e-2

    def loss_at(g):
        gate = torch.ones(4)
        gate[2] = g
        with gated(m, heads={1: gate}), torch.no_grad():
            return _loss(m, batches[0]).item()
    fd = abs(loss_at(1 + eps) - loss_at(1 - eps)) / (2 * eps)
    assert head_importance(m, batches[:1], _loss, normalize=False)[1][2].item() == pytest.approx(fd, rel=2e-2)
    ffn = ffn_importance(m, batches, _loss)
    assert ffn[1][5].item() == 0 and (ffn[1] > 0).sum() == WIDTH[name] - 1
    assert not m.training and all(p.grad is None for p in m.parameters())
    mag = head_magnitude(m)
    assert mag[0][1].item() > 0 and mag[0].shape == (4,)
    fm = ffn_magnitude(m)
    up = ffn_blocks(m)[1].up.weight
    up_row = up[:, 7] if name == "gpt2" else up[7]
    down = ffn_blocks(m)[1].down.weight
    down_col = down[7] if name == "gpt2" else down[:, 7]
    expected = (up_row.pow(2).sum() + down_col.pow(2).sum()).sqrt().item()
    assert fm[1][7].item() == pytest.approx(expected, rel=1e-5)


def test_head_magnitude_of_a_zeroed_head_is_zero(folders):
    m = _load(folders, "distil")
    b = attention_blocks(m)[2]
    with torch.no_grad():
        for lin in (*b.qkv, b.out):
            w = lin.weight
            (w[8:16] if lin is not b.out else w[:, 8:16]).zero_()
    assert head_magnitude(m)[2][1].item() == 0 and (head_magnitude(m)[2][[0, 2, 3]] > 0).all()


def test_select_lowest():
    scores = {0: torch.tensor([0.1, 0.2, 0.3]), 1: torch.tensor([5.0, 0.05, 4.0])}
    assert select_lowest(scores, 0.5) == {0: [0, 1], 1: [1]}
    assert select_lowest(scores, 1.0) == {0: [0, 1], 1: [1, 2]}  # one unit stays per layer
    assert select_lowest(scores, 0.34, scope="layer") == {0: [0], 1: [1]}
    with pytest.raises(ConfigError):
        select_lowest(scores, 1.5)


def test_errors(folders):
    m = _load(folders, "bert")
    with pytest.raises(ConfigError, match="drop_layers_hf"):
        remove_heads(m, {0: [0, 1, 2, 3]})
    with pytest.raises(ConfigError, match="layer 7 does not exist"):
        remove_ffn_neurons(m, {7: [0]})
    with pytest.raises(ConfigError, match="heads 0..3"):
        remove_heads(m, {0: [4]})
    with pytest.raises(ConfigError, match="increasing"):
        drop_layers_hf(m, [2, 0])
    with pytest.raises(ConfigError, match="at least one batch"):
        head_importance(m, [], _loss)
    parametrize.register_parametrization(ffn_blocks(m)[0].up, "weight", nn.Identity())
    with pytest.raises(ConfigError, match="bake"):
        remove_ffn_neurons(m, {0: [1]})
    with pytest.raises(ModelError, match="no transformers model"):
        attention_blocks(nn.Linear(2, 2))
    with pytest.raises(ModelError, match="distilbert model"):
        apply_transformer_shape(m, transformer_shape(_load(folders, "distil")))
