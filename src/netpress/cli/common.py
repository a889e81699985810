"""Options and helpers shared by every command: model/data loading and output."""

from __future__ import annotations

import contextvars
import functools
import inspect
import json

import typer

from .. import ui
from ..api import load_model
from ..data.loaders import load_split
from ..data.splits import Split
from ..errors import NetpressError
from ..io import json_safe
from ..tasks.build import TextOptions, load_task

ModelOpt = typer.Option(..., "--model", "-m",
                        help="Zoo name (lenet-300-100, lenet5-caffe, lenet5, resnet-small), "
                             "hf:DIR (a local Hugging Face or sentence-transformers folder) "
                             "or package.module:factory.")
WeightsOpt = typer.Option(None, "--weights", "-w",
                          help="Weights as .safetensors (zoo models: default the zoo baseline, "
                               "trained once with the zoo's settings and cached in "
                               "$NETPRESS_CACHE or .netpress/cache).")
DataOpt = typer.Option("fashion-mnist", "--data", "-d",
                       help="fashion-mnist, digits, package.module:function, or for hf: models "
                            "text:FILE (.txt, .jsonl, .csv, .tsv), text:fortunes, "
                            "text:fortunes-topics, text:manpages.")
DataDirOpt = typer.Option(None, "--data-dir",
                          help="Folder with the Fashion-MNIST IDX files "
                               "(default $NETPRESS_DATA_DIR or /usr/share/datasets/fashion-mnist).")
SeedOpt = typer.Option(0, "--seed", help="Seed for data order, initialisation and sampling.")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object on stdout.")
INVOKED_ARGS: list[str] = []  # the command line ``main`` ran (``--nproc`` re-runs it)
NprocOpt = typer.Option(1, "--nproc", help=(
    "Train data-parallel in N processes on this machine (torchrun, gloo on CPU); see "
    "docs/distributed.md. Use --threads 1 per process on small machines."))
ThreadsOpt = typer.Option(2, "--threads", help="Intra-op threads for training and timing.")


def get_split(data: str, data_dir: str | None, seed: int) -> Split:
    """Load the image data set named on the command line."""
    ui.info(f"loading data: {data}")
    return load_split(data, data_dir=data_dir, seed=seed)


_TEXT: contextvars.ContextVar[TextOptions | None] = contextvars.ContextVar("netpress_text",
                                                                         default=None)
_TEXT_PARAMS = [
    inspect.Parameter("task", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
        None, "--task", help="hf: models: embedding | text-classification | causal-lm "
                             "(default: what the folder is).")),
    inspect.Parameter("max_length", inspect.Parameter.KEYWORD_ONLY, annotation=int,
                      default=typer.Option(128, "--max-length",
                                           help="hf: models: tokens per text (longer ones are cut).")),
    inspect.Parameter("text_column", inspect.Parameter.KEYWORD_ONLY, annotation=str,
                      default=typer.Option("text", "--text-column",
                                           help="JSONL/CSV text data: the column with the text.")),
    inspect.Parameter("label_column", inspect.Parameter.KEYWORD_ONLY, annotation=str,
                      default=typer.Option(None, "--label-column", help=(
                          "JSONL/CSV text data: the column with the class (text "
                          "classification; default 'label')."))),
    inspect.Parameter("max_texts", inspect.Parameter.KEYWORD_ONLY, annotation=int,
                      default=typer.Option(None, "--max-texts",
                                           help="Use at most this many texts (seeded choice).")),
]


def text_options(fn):
    """Give a command the text-data options (``--task``, ``--max-length``, …) without
    repeating them in every signature; ``get_task`` reads them."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, task=None, max_length=128, text_column="text", label_column=None,
                max_texts=None, **kwargs):
        token = _TEXT.set(TextOptions(task, max_length, text_column, label_column, max_texts))
        try:
            return fn(*args, **kwargs)
        finally:
            _TEXT.reset(token)

    wrapper.__signature__ = sig.replace(parameters=list(sig.parameters.values()) + _TEXT_PARAMS)
    return wrapper


def get_task(model: str, net, data: str, data_dir: str | None, seed: int):
    """The task of ``--model`` on ``--data``: image classification, or for ``hf:`` models
    the folder's text task (``--task`` overrides) on tokenised ``text:`` data."""
    ui.info(f"loading data: {data}")
    return load_task(model, data, net, seed=seed, data_dir=data_dir, text=_TEXT.get() or TextOptions())


def get_model(spec: str, weights: str | None, need_weights: bool = True):
    """Build the model named on the command line and load its weights (an ``hf:`` folder
    holds its own pretrained weights, so ``--weights`` is optional there; ``--task`` loads it
    for that task, and a weights file with a fresh head says its own task)."""
    if spec.startswith("hf:"):
        ui.info(f"loading {spec}")
        return load_model(spec, weights, task=(_TEXT.get() or TextOptions()).task)
    if need_weights and weights is None:
        raise NetpressError(
            f"--weights is required for {spec}; train weights first with "
            f"`netpress train --model {spec} --out model.safetensors`"
        )
    return load_model(spec, weights)


def baseline_weights(spec: str, weights: str | None, data: str, data_dir: str | None,
                     seed: int) -> str | None:
    """``weights``, or for a zoo model without them the zoo baseline on ``data``: trained
    once with the zoo's epochs and learning rate, then reused from ``$NETPRESS_CACHE`` (default
    ``.netpress/cache``), so ``netpress prune --model lenet-300-100 …`` works as typed.

    Example:
        >>> baseline_weights("hf:./bert", None, "text:fortunes", None, 0) is None
        True
    """
    import os
    from pathlib import Path

    from ..zoo import ZOO

    if weights is not None or spec not in ZOO or data.startswith("text:"):
        return weights
    from .demo import cached_baseline

    cache = Path(os.environ.get("NETPRESS_CACHE", ".netpress/cache"))
    path = cached_baseline(spec, get_split(data, data_dir, seed), seed, cache)
    ui.info(f"no --weights given: using the {spec} baseline {path}")
    return str(path)


def model_from_args(artifact: str | None, model: str | None, weights: str | None):
    """``(model, spec)`` from a command's ARTIFACT argument or ``--model``/``--weights``: a
    .netpress artifact, a packed weight-only file (the ``model.safetensors`` of a weight-only
    ``netpress quantize``, loaded with its quantization grids) or any weights netpress wrote."""
    if artifact is not None:
        from ..encode.artifact import load_artifact

        net, header = load_artifact(artifact)
        return net, model or str(header["model"].get("spec"))
    if model is None:
        raise NetpressError("give an ARTIFACT (a .netpress file) or --model and --weights")
    if weights is not None:
        from ..techniques.edits import read_metadata

        if "netpress_quant" in read_metadata(weights):
            from ..techniques.quantize.storage import load_packed

            return load_packed(get_model(model, None, need_weights=False), weights), model
    return get_model(model, weights), model


def folder_is_reference(weights: str) -> bool:
    """Whether an ``hf:`` folder's own model is the natural reference of ``weights``: not
    when ``netpress train`` wrote them (they are a new baseline; a random or headless
    folder is no reference) or when they hold another task's head."""
    from ..techniques.edits import EDITS_KEY, read_metadata
    from ..train_text import TRAINED_BY

    meta = read_metadata(weights)
    if meta.get("trained_by") == TRAINED_BY:
        return False
    try:
        edits = json.loads(meta.get(EDITS_KEY, "[]"))
    except json.JSONDecodeError:
        return True  # loading the weights reports the broken metadata
    return not any(isinstance(e, dict) and e.get("op") == "hf_task" for e in edits)


def emit_json(obj: dict) -> None:
    """Print ``obj`` as one line of strict JSON on stdout."""
    print(json.dumps(json_safe(obj), allow_nan=False, sort_keys=False))


def start(json_out: bool) -> None:
    """Per-command setup: progress bars off under --json."""
    ui.set_quiet(json_out)
