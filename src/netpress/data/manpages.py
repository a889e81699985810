"""``text:manpages``: English prose from the installed manual pages (Debian's ``manpages``
and every package's pages), an unlabelled corpus that installs offline.

Sentence-encoder recovery (pruning, distillation) learns from the uncompressed model's
embeddings, so any English text serves, and fortunes alone (14,123 texts) is what limited
it. This reads ``/usr/share/man/man1`` … ``man8`` (not the translated folders): each page
(gzip or plain roff) is split into paragraphs at every macro that is not a font macro;
font macros (``.B``, ``.IR``, …) keep their words, no-fill blocks (``.nf``/``.fi``,
``.EX``/``.EE``: code, tables) and comments are dropped, and roff escapes are removed or
turned into their characters. A paragraph is kept when, cleaned like a fortune
(``corpus.clean_record``), it has at least 6 words and ends a sentence; then it is
de-duplicated (case and whitespace folded), in path order. Pages that only point at
another (``.so``) and files over 1 MiB are skipped. There is no roff renderer here on
purpose: groff is not always installed, and this reads the source as data.

The corpus is returned in path order; the split shuffles it by seed. Nothing is written.
"""

from __future__ import annotations

import functools
import gzip
import re
from pathlib import Path

from ..errors import DataError
from .corpus import _dedup_key, clean_record

MAN_DIR = Path("/usr/share/man")
SECTIONS = tuple(f"man{i}" for i in range(1, 9))
MAX_FILE_BYTES = 1 << 20
MIN_WORDS = 6
FONT_MACROS = {"B", "I", "BR", "RB", "IR", "RI", "BI", "IB", "SM", "SB"}

_ESCAPES = (
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),  # font changes
    (re.compile(r"\\s[+-]?\d+"), ""),  # size changes
    (re.compile(r"\\\*(\[[^\]]*\]|\(..|.)"), ""),  # strings
    (re.compile(r"\\\((em|en|hy|mi)"), "-"),
    (re.compile(r"\\\(aq"), "'"),
    (re.compile(r"\\\((lq|rq|dq|oq|cq)"), '"'),
    (re.compile(r"\\\(..|\\\[[^\]]*\]"), ""),  # other special characters
    (re.compile(r"\\-"), "-"),
    (re.compile(r"\\e"), "\x00"),  # a backslash, put back after the catch-all below
    (re.compile(r"\\[ ~0]"), " "),
    (re.compile(r"\\."), ""),  # zero-width and the rest (\&, \|, \^, \c, …)
)


def unescape(text: str) -> str:
    """Roff escapes removed or turned into characters.

    Example:
        >>> unescape(r"use \\fB\\-l\\fR for \\(lqlong\\(rq output\\&.")
        'use -l for "long" output.'
    """
    for pattern, repl in _ESCAPES:
        text = pattern.sub(repl, text)
    return text.replace("\x00", "\\")


def _macro_words(args: str) -> str:
    return " ".join(a.strip('"') for a in re.findall(r'"[^"]*"|\S+', args))


def paragraphs(source: str) -> list[str]:
    """The text paragraphs of one roff page (see the module docstring), unescaped.

    Example:
        >>> paragraphs(".TH X 1\\n.SH NAME\\nx \\\\- does things\\n.PP\\nIt reads\\n.B files\\nfast.\\n")
        ['x - does things', 'It reads files fast.']
    """
    out: list[str] = []
    cur: list[str] = []
    nofill = False

    def flush() -> None:
        if cur:
            text = " ".join(unescape(" ".join(cur)).split())
            if text:
                out.append(text)
            cur.clear()

    for line in source.split("\n"):
        if line.startswith((".", "'")):
            body = line[1:].strip()
            if body.startswith('\\"') or not body:
                continue
            name, _, args = body.partition(" ")
            if name in ("nf", "EX"):
                flush()
                nofill = True
            elif name in ("fi", "EE"):
                nofill = False
            elif name in FONT_MACROS and not nofill:
                cur.append(_macro_words(args))
            else:  # any other macro (headings, paragraphs, lists, mdoc) ends a paragraph
                flush()
            continue
        if nofill:
            continue
        if not line.strip():
            flush()
        else:
            cur.append(line)
    flush()
    return out


def _read_page(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    text = data.decode("utf-8", errors="replace")
    if text.lstrip().startswith(".so "):
        return None
    return text


def page_files(root: Path | None = None) -> list[Path]:
    """The manual pages of sections 1-8 under ``root`` (default ``MAN_DIR``), sorted.

    Example:
        >>> [p.name for p in page_files()][:1]  # doctest: +SKIP
        ['[.1.gz']
    """
    root = MAN_DIR if root is None else root
    files = [p for s in SECTIONS if (root / s).is_dir() for p in sorted((root / s).iterdir())
             if p.is_file()]
    if not files:
        raise DataError(f"no manual pages under {root}/man1..man8; install them with "
                        "`apt-get install manpages` as root, or pass your own file as "
                        "text:FILE.txt|.jsonl|.csv|.tsv")
    return files


def keep(paragraph: str) -> str | None:
    """A paragraph as a corpus text, or None when it is not a sentence of prose.

    Example:
        >>> keep("List information about the files in the current directory."), keep("-a, --all")
        ('List information about the files in the current directory.', None)
    """
    text = clean_record(paragraph)
    if text is None or len(text.split()) < MIN_WORDS or text[-1] not in ".!?":
        return None
    return text


@functools.lru_cache(maxsize=2)
def _texts(root: Path) -> tuple[str, ...]:
    seen: set[str] = set()
    out = []
    for path in page_files(root):
        source = _read_page(path)
        if source is None:
            continue
        for p in paragraphs(source):
            text = keep(p)
            if text is None or _dedup_key(text) in seen:
                continue
            seen.add(_dedup_key(text))
            out.append(text)
    return tuple(out)


def load_manpages(root: Path | None = None) -> list[str]:
    """Texts of ``text:manpages`` (cached in memory, never on disk).

    Example:
        >>> len(load_manpages()) > 10_000  # doctest: +SKIP
        True
    """
    texts = list(_texts(MAN_DIR if root is None else root))
    if not texts:
        raise DataError(f"the manual pages under {root or MAN_DIR} hold no English prose "
                        "paragraphs; pass your own file as text:FILE.txt|.jsonl|.csv|.tsv")
    return texts
