"""The model zoo, and resolution of ``--model`` specs.

A spec is a zoo name (``lenet-300-100``, ``lenet5-caffe``, ``lenet5``,
``resnet-small``), ``hf:DIR`` for a local Hugging Face or sentence-transformers folder
(never downloaded; ``zoo.hf``), or ``package.module:factory`` for a user's own model
(called with no arguments).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..errors import ModelError
from ..resolve import resolve_callable
from .lenet import LeNet5, LeNet5Caffe, lenet_300_100
from .resnet import ResNetSmall


@dataclass(frozen=True)
class ZooEntry:
    """A zoo model: its factory and the training defaults that reach its baseline."""

    factory: Callable[[], nn.Module]
    epochs: int  # default training epochs on Fashion-MNIST
    lr: float  # Adam learning rate at the start of the cosine schedule


ZOO: dict[str, ZooEntry] = {
    "lenet-300-100": ZooEntry(lenet_300_100, epochs=20, lr=1e-3),
    "lenet5-caffe": ZooEntry(LeNet5Caffe, epochs=12, lr=1e-3),
    "lenet5": ZooEntry(LeNet5, epochs=12, lr=1e-3),
    "resnet-small": ZooEntry(ResNetSmall, epochs=6, lr=2e-3),
}


def zoo_entry(spec: str) -> ZooEntry | None:
    """The zoo entry for ``spec``, or None for a user factory."""
    return ZOO.get(spec)


def build_model(spec: str, task: str | None = None) -> nn.Module:
    """Build an untrained model from a zoo name or ``package.module:factory``, or load the
    pretrained Hugging Face model of a local folder ``hf:DIR`` (``task`` overrides the task
    read from the folder: embedding, text-classification or causal-lm).

    Example:
        >>> type(build_model("lenet5-caffe")).__name__
        'LeNet5Caffe'
    """
    if spec in ZOO:
        return ZOO[spec].factory()
    if spec.startswith("hf:"):
        from .hf import load_hf

        return load_hf(spec[3:], task=task)[0]
    if ":" in spec:
        model = resolve_callable(spec, ModelError, "model factory")()
        if not isinstance(model, nn.Module):
            raise ModelError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
        return model
    raise ModelError(
        f"unknown model {spec!r}; use one of {', '.join(ZOO)}, hf:DIR or package.module:factory"
    )


__all__ = ["ZOO", "ZooEntry", "build_model", "zoo_entry", "LeNet5", "LeNet5Caffe",
           "ResNetSmall", "lenet_300_100"]
