"""One place that turns a ``--model`` and a ``--data`` spec into a Task.

Images (``fashion-mnist``, ``digits``, ``package.module:function``) give image
classification over a ``Split``. ``hf:DIR`` models with ``text:SPEC`` data give the
folder's task (or ``task``): the texts are read and split by seed
(``data.text.load_text_split``) and tokenised with the model's own tokenizer; a sentence
encoder's targets are the embeddings of ``model`` as loaded (the uncompressed reference).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import DataError
from .base import Task
from .classification import ImageClassification


@dataclass(frozen=True)
class TextOptions:
    """How text data is read and tokenised (CLI: ``--task``, ``--max-length``, …)."""

    task: str | None = None  # embedding | text-classification | causal-lm (default: the folder's)
    max_length: int = 128  # tokens per text; longer texts are truncated
    text_column: str = "text"  # column of JSONL/CSV files holding the text
    label_column: str | None = None  # column holding the class (text classification)
    max_texts: int | None = None  # cap on the texts used (seeded choice), for quick runs


def load_task(model_spec: str, data_spec: str, model: nn.Module | None = None, seed: int = 0,
              data_dir: str | None = None, text: TextOptions = TextOptions()) -> Task:
    """The task for ``model_spec`` on ``data_spec``.

    Example:
        >>> load_task("lenet5", "digits").kind
        'image-classification'
    """
    if not model_spec.startswith("hf:"):
        if data_spec.startswith("text:"):
            raise DataError(f"{model_spec} is an image model; text data needs --model hf:DIR")
        from ..data.loaders import load_split

        return ImageClassification(load_split(data_spec, data_dir=data_dir, seed=seed))
    if not data_spec.startswith("text:"):
        raise DataError(f"{model_spec} is a text model; give --data text:FILE (one text per line, "
                        "or JSONL/CSV with a text column) or text:fortunes")
    from ..data.text import check_tokenizer, load_text_split
    from ..zoo.hf import load_hf, load_tokenizer
    from .text import make_text_task

    path = model_spec[3:]
    if model is None:
        model = load_hf(path, task=text.task)[0]
    info = getattr(model, "hf_info", None)
    if info is None:
        info = load_hf(path, task=text.task)[1]
    kind = text.task or info.task
    label_column = text.label_column
    if kind == "text-classification" and label_column is None and not data_spec.startswith(
            "text:fortunes"):
        label_column = "label"
    split = load_text_split(data_spec, seed=seed, text_column=text.text_column,
                            label_column=label_column, max_texts=text.max_texts)
    tok = load_tokenizer(path)
    check_tokenizer(tok, info.vocab_size)
    if kind == "causal-lm" and tok.pad_token is None:
        tok.pad_token = tok.eos_token
    max_length = min(text.max_length, info.max_length or text.max_length)
    return make_text_task(kind, split, tok, max_length, info.max_length,
                          reference=model if kind == "embedding" else None,
                          input_names=info.input_names)
