"""Built-in text corpora that install offline from Debian packages.

``fortunes`` reads the records of Debian's ``fortunes`` package
(``/usr/share/games/fortunes``): every file there with a ``.dat`` index beside it is a
list of ``%``-separated records. Each record is cleaned — overstrike (``_\\b``) and bell
characters removed, ASCII-art-like records dropped, whitespace collapsed, records
shorter than 20 or longer than 600 characters dropped — and de-duplicated (case and
whitespace folded), keeping the first occurrence in file order. ``fortunes-topics``
labels each record with its file's name and keeps the topics with at least 200 records.

The corpus is returned in file order; the split shuffles it by seed. Nothing is written.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from ..errors import DataError

FORTUNES_DIR = Path("/usr/share/games/fortunes")
MIN_CHARS, MAX_CHARS = 20, 600  # a record's length after whitespace is collapsed
MIN_TOPIC_RECORDS = 200  # fortunes-topics keeps the files with at least this many records

_OVERSTRIKE = (re.compile(r"_+\x08"), re.compile(r".\x08"))  # underline runs, then X\bX bold
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]")
_SPACE = re.compile(r"\s")
_LETTER = re.compile(r"[^\W\d_]")
_SYMBOL = re.compile(r"[^\w\s.,;:!?'\"()-]|_")  # neither letter, digit nor plain punctuation
_SYMBOL_RUN = re.compile(r"([^\w\s.!?])\1{3,}")  # "====", "____", "////": rules and drawings


def is_art_like(record: str) -> bool:
    """True for records that are drawings, rules, tables or code rather than prose.

    Example:
        >>> is_art_like("  /\\\\_/\\\\\\n ( o.o )\\n  > ^ <"), is_art_like("A yawn is a silent shout.")
        (True, False)
    """
    chars = len(record) - len(_SPACE.findall(record))
    if not chars:
        return True
    symbols, letters = len(_SYMBOL.findall(record)), len(_LETTER.findall(record))
    return symbols > 0.15 * chars or letters < 0.5 * chars or bool(_SYMBOL_RUN.search(record))


def clean_record(record: str) -> str | None:
    """One fortune record as a single line of plain text, or None when it is dropped.

    Example:
        >>> clean_record("It's *___\\bonly*  ones\\n\\tand zeroes.\\x07")
        "It's *only* ones and zeroes."
    """
    for pattern in _OVERSTRIKE:
        record = pattern.sub("", record)
    record = record.replace("\x07", "")
    if _CONTROL.search(record) or is_art_like(record):
        return None
    text = " ".join(record.split())
    return text if MIN_CHARS <= len(text) <= MAX_CHARS else None


def fortune_files(root: Path | None = None) -> list[Path]:
    """The fortune files in ``root`` (those with a ``.dat`` sibling), sorted by name.

    ``root`` defaults to ``FORTUNES_DIR``. Sub-folders such as ``off/`` (the offensive
    fortunes) are never read.

    Example:
        >>> [p.name for p in fortune_files()][:2]  # doctest: +SKIP
        ['art', 'ascii-art']
    """
    root = FORTUNES_DIR if root is None else root
    if not root.is_dir():
        raise DataError(
            f"the fortunes corpus is not installed ({root} is missing); run `apt-get install fortunes` "
            "as root, or pass your own file as text:FILE.txt|.jsonl|.csv|.tsv"
        )
    files = [
        p for p in sorted(root.iterdir())
        if p.suffix != ".dat" and p.is_file() and p.with_name(p.name + ".dat").is_file()
    ]
    if not files:
        raise DataError(f"{root} holds no fortune files (FILE with FILE.dat); reinstall with "
                        "`apt-get install --reinstall fortunes`, or pass your own file")
    return files


def _records(path: Path) -> list[str]:
    """The raw ``%``-separated records of one fortune file."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    records, current = [], []
    for line in text.split("\n"):
        if line.rstrip("\r") == "%":
            records.append("\n".join(current))
            current = []
        else:
            current.append(line)
    records.append("\n".join(current))
    return records


def _dedup_key(text: str) -> str:
    return " ".join(text.casefold().split())


def fortunes_by_topic(root: Path | None = None) -> list[tuple[str, str]]:
    """Every clean, unique fortune as ``(text, topic)`` in file order.

    Example:
        >>> fortunes_by_topic()[0]  # doctest: +SKIP
        ('A "critic" is a man who creates nothing and ... -- Robert Heinlein', 'art')
    """
    return list(_fortune_pairs(FORTUNES_DIR if root is None else root))


@functools.lru_cache(maxsize=4)
def _fortune_pairs(root: Path) -> tuple[tuple[str, str], ...]:
    """Cached in memory (never on disk): a run that splits with several seeds reads once."""
    seen: set[str] = set()
    out = []
    for path in fortune_files(root):
        for record in _records(path):
            text = clean_record(record)
            if text is None or _dedup_key(text) in seen:
                continue
            seen.add(_dedup_key(text))
            out.append((text, path.name))
    return tuple(out)


def load_fortunes(topics: bool, root: Path | None = None) -> tuple[list[str], list[str] | None]:
    """Texts of ``text:fortunes`` (labels None) or ``text:fortunes-topics`` (labels = topic).

    Example:
        >>> texts, labels = load_fortunes(topics=False)  # doctest: +SKIP
        >>> len(texts) > 5000, labels  # doctest: +SKIP
        (True, None)
    """
    pairs = fortunes_by_topic(root)
    if not topics:
        return [t for t, _ in pairs], None
    counts: dict[str, int] = {}
    for _, topic in pairs:
        counts[topic] = counts.get(topic, 0) + 1
    keep = {t for t, n in counts.items() if n >= MIN_TOPIC_RECORDS}
    if len(keep) < 2:
        where = root or FORTUNES_DIR
        raise DataError(f"fewer than 2 fortune files in {where} have {MIN_TOPIC_RECORDS} records; "
                        "install Debian's `fortunes` package or pass your own labelled file")
    kept = [(t, topic) for t, topic in pairs if topic in keep]
    return [t for t, _ in kept], [topic for _, topic in kept]
