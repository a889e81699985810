"""text:manpages: roff pages (gzip or plain) become de-duplicated prose paragraphs; code
blocks, comments, option lists and pointer pages are left out; a missing folder is one
clear error."""

import gzip

import pytest

from netpress.data import manpages
from netpress.errors import DataError

PAGE = r""".\" a comment that must not appear
.TH DEMO 1 "2026" "demo 1.0"
.SH NAME
demo \- show what a page holds
.SH DESCRIPTION
.B demo
reads each \fIfile\fR in turn and prints a summary of what it found there.
.PP
Use \fB\-\-all\fR to include hidden files, which are skipped by default\&.
.TP
\fB\-a\fR, \fB\-\-all\fR
do not ignore entries
.nf
for f in *; do demo "$f"; done   # a code block is not prose.
.fi
It says \(lqdone\(rq when every file has been read and closed.
"""


def _tree(tmp_path):
    (tmp_path / "man1").mkdir()
    (tmp_path / "man3").mkdir()
    (tmp_path / "fr" / "man1").mkdir(parents=True)  # translations are not read
    (tmp_path / "man1" / "demo.1.gz").write_bytes(gzip.compress(PAGE.encode()))
    (tmp_path / "man1" / "copy.1").write_text(PAGE)  # the same text again: de-duplicated
    (tmp_path / "man1" / "alias.1.gz").write_bytes(gzip.compress(b".so man1/demo.1\n"))
    (tmp_path / "man3" / "broken.3.gz").write_bytes(b"not gzip")
    (tmp_path / "fr" / "man1" / "demo.1").write_text(".PP\nCeci est une phrase en francais ici.\n")
    return tmp_path


def test_pages_become_prose_paragraphs(tmp_path):
    texts = manpages.load_manpages(_tree(tmp_path))
    assert texts == [
        "demo reads each file in turn and prints a summary of what it found there.",
        "Use --all to include hidden files, which are skipped by default.",
        'It says "done" when every file has been read and closed.',
    ]


def test_escapes_and_filters():
    assert manpages.unescape(r"\fB\-x\fP \(em \(aqq\(aq \e \s-1small\s0") == "-x - 'q' \\ small"
    assert manpages.keep("-a, --all") is None  # an option, not a sentence
    assert manpages.keep("Too short to keep.") is None
    assert manpages.paragraphs(".nf\ncode line\n.fi\n") == []


def test_missing_pages_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="apt-get install manpages"):
        manpages.load_manpages(tmp_path)
    (tmp_path / "man1").mkdir()
    (tmp_path / "man1" / "x.1").write_text(".TH X 1\n.SH NAME\nx\n")
    with pytest.raises(DataError, match="no English prose"):
        manpages.load_manpages(tmp_path)


def test_text_spec_reads_the_corpus(monkeypatch, tmp_path):
    from netpress.data.text import load_text_split

    monkeypatch.setattr(manpages, "MAN_DIR", _tree(tmp_path))
    split = load_text_split("text:manpages", seed=0, val_fraction=0.34, test_fraction=0.34,
                            calib_size=1)
    got = sorted(split.train.texts + split.val.texts + split.test.texts)
    assert got == sorted(manpages.load_manpages(tmp_path)) and split.num_classes == 0
    with pytest.raises(DataError, match="no label column"):
        load_text_split("text:manpages", label_column="label")
