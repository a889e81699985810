"""Text data for ``--data text:SPEC``: read, split by seed, tokenize.

``SPEC`` is a file — ``.txt`` (one text per line, blank lines skipped), ``.jsonl`` (one
JSON object per line), ``.csv`` or ``.tsv`` (a header row) — or a built-in corpus:
``fortunes`` (unlabelled) or ``fortunes-topics`` (labelled by topic), read from Debian's
``fortunes`` package (see ``corpus.py``), or ``manpages`` (unlabelled: prose paragraphs of
the installed manual pages, see ``manpages.py``). Labels may be strings or integers; their
distinct values become class ids in sorted order (integers numerically).

The split is a pure function of the data and the seed: a seeded, stratified order puts
every class in ``train``, and ``val``/``test`` get each class in proportion; ``calib``
is a seeded subset of ``train``. All randomness comes from ``random.Random(...).random()``
seeded with a string, which Python keeps identical across versions. Nothing is written.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError
from .corpus import load_fortunes
from .manpages import load_manpages

BUILTIN = ("fortunes", "fortunes-topics", "manpages")
SUFFIXES = (".txt", ".jsonl", ".csv", ".tsv")
_INT = re.compile(r"[+-]?\d+")
_TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class TextPart:
    """Texts of one part of a split, with their class ids (None for unlabelled data)."""

    texts: tuple[str, ...]
    labels: tuple[int, ...] | None

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class TextSplit:
    """A text data set split into train, val, test and calib (a subset of train)."""

    name: str
    train: TextPart
    val: TextPart
    test: TextPart
    calib: TextPart
    num_classes: int  # 0 without labels
    class_names: tuple[str, ...]


def load_text_split(
    spec: str,
    seed: int = 0,
    text_column: str = "text",
    label_column: str | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    calib_size: int = 256,
    max_texts: int | None = None,
) -> TextSplit:
    """Read ``text:FILE`` or ``text:fortunes``/``text:fortunes-topics`` and split it by seed.

    ``val_fraction`` and ``test_fraction`` are fractions of all texts (each part gets at
    least one); ``max_texts`` keeps a seeded, stratified subset of the texts first.

    Example:
        >>> s = load_text_split("text:fortunes-topics", seed=0, max_texts=1000)
        >>> len(s.train), len(s.val), len(s.test), len(s.calib), s.num_classes
        (800, 100, 100, 256, 22)
    """
    _check_options(val_fraction, test_fraction, calib_size, max_texts)
    texts, raw_labels = _read_spec(spec, text_column, label_column)
    name = spec.strip()
    if not texts:
        raise DataError(f"{name} has no texts (nothing left after blank texts were skipped); "
                        "pass a file with at least one non-empty text")
    ids, class_names = _class_ids(raw_labels, name, label_column) if raw_labels is not None else (None, ())
    if max_texts is not None and max_texts < len(texts):
        keep = sorted(_stratified_order(ids or [0] * len(texts), _rng("subset", seed))[0][:max_texts])
        texts = [texts[i] for i in keep]
        ids = [ids[i] for i in keep] if ids is not None else None
    return _split(name, texts, ids, class_names, seed, val_fraction, test_fraction, calib_size)


def _check_options(val_fraction: float, test_fraction: float, calib_size: int, max_texts: int | None) -> None:
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(f"val fraction {val_fraction} and test fraction {test_fraction} must each be in "
                        "[0, 1) and sum to less than 1; e.g. 0.1 and 0.1")
    if calib_size < 0:
        raise DataError(f"calibration size {calib_size} is negative; pass 0 or more")
    if max_texts is not None and max_texts < 1:
        raise DataError(f"max texts {max_texts} must be at least 1; leave it unset to use every text")


# --- reading -------------------------------------------------------------------------------------


def _read_spec(spec: str, text_column: str, label_column: str | None) -> tuple[list[str], list[Any] | None]:
    """Texts and raw labels (None when unlabelled) named by a ``text:`` spec."""
    if not spec.startswith("text:") or not spec[5:].strip():
        raise DataError(f"text data spec {spec!r} must be text:FILE or text:NAME, "
                        f"NAME one of {', '.join(BUILTIN)}")
    body = spec[5:].strip()
    if body == "manpages":
        if label_column is not None:
            raise DataError("text:manpages takes no label column; drop the label column option")
        return load_manpages(), None
    if body in BUILTIN:
        if label_column is not None:
            hint = "its labels are the topics" if body == "fortunes-topics" else "use text:fortunes-topics"
            raise DataError(f"text:{body} takes no label column ({hint}); drop the label column option")
        return load_fortunes(topics=body == "fortunes-topics")
    path = Path(body).expanduser()
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        if suffix or path.exists():
            raise DataError(f"{body}: unsupported file type {suffix or '(no suffix)'}; "
                            f"use a {', '.join(SUFFIXES)} file")
        raise DataError(f"unknown built-in text corpus {body!r}; use one of {', '.join(BUILTIN)}, "
                        f"or a file as text:FILE{'|'.join(SUFFIXES)}")
    text = _read_utf8(path)
    if suffix == ".txt":
        if label_column is not None:
            raise DataError(f"{body}: a .txt file has no columns, so no label column {label_column!r}; "
                            "put texts and labels in a .jsonl, .csv or .tsv file")
        lines = (line.strip() for line in text.split("\n"))
        return [line for line in lines if line], None
    if suffix == ".jsonl":
        return _read_jsonl(text, body, text_column, label_column)
    return _read_table(text, body, "\t" if suffix == ".tsv" else ",", text_column, label_column)


def _read_utf8(path: Path) -> str:
    """A file's text; a DataError names the first line that is not UTF-8."""
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise DataError(f"text file {path} {what}; pass an existing {', '.join(SUFFIXES)} file")
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"text file {path} is empty; put at least one text in it")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path} line {line} is not valid UTF-8; the file must be UTF-8 "
                        "(convert it, e.g. `iconv -f latin1 -t utf-8`)") from e


def _read_jsonl(
    text: str, name: str, text_column: str, label_column: str | None
) -> tuple[list[str], list[Any] | None]:
    texts: list[str] = []
    labels: list[Any] | None = [] if label_column is not None else None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{name} line {number} is not valid JSON ({e.msg}); "
                            "each line must be one JSON object") from e
        if not isinstance(row, dict):
            raise DataError(f"{name} line {number} is a JSON {type(row).__name__}, not an object; "
                            f'each line must be like {{"{text_column}": "..."}}')
        _take_row(row, f"{name} line {number}", text_column, label_column, texts, labels)
    return texts, labels


def _read_table(
    text: str, name: str, delimiter: str, text_column: str, label_column: str | None
) -> tuple[list[str], list[Any] | None]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    texts: list[str] = []
    labels: list[Any] | None = [] if label_column is not None else None
    try:
        if reader.fieldnames is None:
            return texts, labels
        _check_columns(reader.fieldnames, f"{name} header row", text_column, label_column)
        for row in reader:
            if all(v in (None, "") for v in row.values()):
                continue  # an empty line between records
            if any(row[c] is None for c in (text_column, label_column) if c is not None):
                raise DataError(f"{name} line {reader.line_num} has fewer cells than the header "
                                f"({len(reader.fieldnames)} columns); fill in the missing cells")
            _take_row(row, f"{name} line {reader.line_num}", text_column, label_column, texts, labels)
    except csv.Error as e:
        kind = "TSV" if delimiter == "\t" else "CSV"
        raise DataError(f"{name} line {reader.line_num} is not valid {kind} ({e}); check its quoting") from e
    return texts, labels


def _check_columns(columns: Sequence[str], where: str, text_column: str, label_column: str | None) -> None:
    """A DataError naming the columns there are when the text or label column is missing."""
    for kind, column in (("text", text_column), ("label", label_column)):
        if column is not None and column not in columns:
            have = ", ".join(repr(c) for c in columns) or "none"
            raise DataError(f"{where} has no {kind} column {column!r}; its columns are {have}")


def _take_row(
    row: dict[str, Any],
    where: str,
    text_column: str,
    label_column: str | None,
    texts: list[str],
    labels: list[Any] | None,
) -> None:
    """Append one record's text (and label); records with a blank text are skipped."""
    _check_columns(list(row), where, text_column, label_column)
    value = row[text_column]
    if not isinstance(value, str):
        raise DataError(f"{where}: {text_column!r} is {json.dumps(value)}, not a string; "
                        "texts must be strings")
    if not value.strip():
        return
    texts.append(value.strip())
    if labels is not None:
        label = row[label_column]
        if isinstance(label, bool) or not isinstance(label, str | int) or label == "":
            raise DataError(f"{where}: label {json.dumps(label)} in {label_column!r} is not a string or "
                            "integer; every text needs a label")
        labels.append(label)


def _class_ids(raw: list[Any], name: str, column: str | None) -> tuple[list[int], tuple[str, ...]]:
    """Class ids for raw labels: integers sorted numerically, otherwise names sorted."""
    if all(isinstance(v, int) or _INT.fullmatch(v.strip()) for v in raw):
        values = [int(v) for v in raw]
        order = sorted(set(values))
        names = tuple(str(v) for v in order)
    else:
        values = [str(v).strip() for v in raw]
        order = sorted(set(values))
        names = tuple(order)
    if len(order) < 2:
        raise DataError(f"{name}: the label column {column or 'label'!r} has only one value "
                        f"({names[0]!r}); a classifier needs at least 2 classes")
    index = {v: i for i, v in enumerate(order)}
    return [index[v] for v in values], names


# --- splitting -----------------------------------------------------------------------------------


def _rng(purpose: str, seed: int) -> random.Random:
    return random.Random(f"netpress.text.{purpose}.{seed}")


def _stratified_order(labels: Sequence[int], rng: random.Random) -> tuple[list[int], list[float]]:
    """Indices in an order whose every prefix holds each class in proportion, and the random keys.

    Within a class the order is random; the first ``num_classes`` indices are one per class.
    """
    keys = [rng.random() for _ in labels]
    size = Counter(labels)
    seen: Counter[int] = Counter()
    position = [0.0] * len(labels)
    for i in sorted(range(len(labels)), key=keys.__getitem__):
        position[i] = seen[labels[i]] / size[labels[i]]
        seen[labels[i]] += 1
    return sorted(range(len(labels)), key=lambda i: (position[i], keys[i])), keys


def _part_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    def size(fraction: float) -> int:
        return max(1, int(n * fraction + 0.5)) if fraction > 0 else 0

    return size(val_fraction), size(test_fraction)


def _min_texts(num_classes: int, val_fraction: float, test_fraction: float) -> int:
    n = 1
    while n - sum(_part_sizes(n, val_fraction, test_fraction)) < max(1, num_classes):
        n += 1
    return n


def _split(
    name: str,
    texts: list[str],
    ids: list[int] | None,
    class_names: tuple[str, ...],
    seed: int,
    val_fraction: float,
    test_fraction: float,
    calib_size: int,
) -> TextSplit:
    n, num_classes = len(texts), len(class_names)
    n_val, n_test = _part_sizes(n, val_fraction, test_fraction)
    if n - n_val - n_test < max(1, num_classes):
        need = _min_texts(num_classes, val_fraction, test_fraction)
        parts = [f"one for {p}" for p, f in (("val", val_fraction), ("test", test_fraction)) if f > 0]
        parts.append(f"every one of the {num_classes} classes in train" if num_classes else "one for train")
        raise DataError(f"{name} has {n} texts; splitting it needs at least {need} ({', '.join(parts)}); "
                        "add texts or raise max texts")
    labels = ids if ids is not None else [0] * n
    order, keys = _stratified_order(labels, _rng("split", seed))
    n_train = n - n_val - n_test
    train = sorted(order[:n_train], key=keys.__getitem__)
    val = sorted(order[n_train:n_train + n_val], key=keys.__getitem__)
    test = sorted(order[n_train + n_val:], key=keys.__getitem__)
    in_train, _ = _stratified_order([labels[i] for i in train], _rng("calib", seed))
    calib = [train[j] for j in sorted(in_train[:calib_size])]

    def part(idx: list[int]) -> TextPart:
        return TextPart(tuple(texts[i] for i in idx), tuple(ids[i] for i in idx) if ids is not None else None)

    return TextSplit(name, part(train), part(val), part(test), part(calib), num_classes, class_names)


# --- tokenizing ----------------------------------------------------------------------------------


def tokenize(
    tokenizer: Any, texts: Sequence[str], max_length: int, model_max_length: int | None = None
) -> dict[str, torch.Tensor]:
    """Tokenize texts into int64 tensors padded to the longest text, at most ``max_length`` tokens.

    Returns ``input_ids``, ``attention_mask`` and, when the tokenizer makes them,
    ``token_type_ids``, each (len(texts), L) with L = min(longest text, max_length), so
    every batch cut from the result has the same length. Longer texts are truncated to
    ``max_length``; a DataError is raised when ``max_length`` exceeds ``model_max_length``
    (the model's position limit) and a text would need more positions than the model has.

    Example:
        >>> enc = tokenize(tok, ["a short text", "a"], max_length=128)  # doctest: +SKIP
        >>> enc["input_ids"].shape, enc["attention_mask"][1].tolist()  # doctest: +SKIP
        (torch.Size([2, 5]), [1, 1, 1, 0, 0])
    """
    texts = list(texts)
    if not texts:
        raise DataError("no texts to tokenize; pass at least one text")
    if max_length < 1:
        raise DataError(f"max length {max_length} must be at least 1 token; pass e.g. --max-length 128")
    if model_max_length is not None and max_length > model_max_length:
        lengths = [len(ids) for ids in tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
        for i, count in enumerate(lengths):
            if count > model_max_length:
                raise DataError(f"text {i} has {count} tokens but the model takes at most "
                                f"{model_max_length}; pass --max-length {model_max_length} or less")
    try:
        enc = tokenizer(texts, padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
    except ValueError as e:
        if "pad" not in str(e).lower():
            raise
        raise DataError(f"the tokenizer cannot pad ({e}); set its pad_token, e.g. to its eos_token") from e
    return {k: enc[k].to(torch.int64) for k in _TOKEN_KEYS if k in enc}


def check_tokenizer(tokenizer: Any, vocab_size: int) -> None:
    """Raise DataError when the tokenizer makes token ids the model's embedding cannot hold.

    Example:
        >>> check_tokenizer(tok, model.config.vocab_size)  # doctest: +SKIP
    """
    if len(tokenizer) > vocab_size:
        raise DataError(f"the tokenizer does not match the model: it has {len(tokenizer)} tokens but the "
                        f"model's vocabulary has {vocab_size}; use the tokenizer saved with the model")
