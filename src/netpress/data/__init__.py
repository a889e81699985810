"""Data sets with netpress's fixed split, and fast deterministic loaders."""

from .loaders import ArrayLoader, load_split
from .splits import Split
from .text import TextPart, TextSplit, check_tokenizer, load_text_split, tokenize

__all__ = [
    "ArrayLoader",
    "Split",
    "TextPart",
    "TextSplit",
    "check_tokenizer",
    "load_split",
    "load_text_split",
    "tokenize",
]
