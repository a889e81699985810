"""``GraphModule``: an ``nn.Module`` that runs a ``.netpress`` file's graph in ONNX Runtime
(``netpress.runtime``), for files whose torch model netpress does not rebuild
(``encode.artifact.model_from_artifact``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..runtime.model import Model


class GraphModule(nn.Module):
    """An ``nn.Module`` that runs a ``.netpress`` file's graph in ONNX Runtime.

    Positional inputs feed the graph's inputs in order, keyword inputs by name; the
    result is the graph's first output as a torch tensor. Low-bit layers compute in
    float32 (``exact``), so evaluations reproduce the compressed torch model. It holds no parameters and
    cannot be trained; ``netpress eval``, ``gate``, ``compare`` and the runtime use it.

    Example:
        >>> m = load("m.netpress")  # doctest: +SKIP
        >>> m(torch.zeros(1, 1, 28, 28)).shape  # doctest: +SKIP
        torch.Size([1, 10])
    """

    def __init__(self, data: bytes, threads: int | None = None, exact: bool = True):
        super().__init__()
        self.runtime = Model(data, threads or torch.get_num_threads(), exact=exact)
        self.header = self.runtime.header

    def forward(self, *args, **kwargs) -> torch.Tensor:
        def arr(v):
            return v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v
        if kwargs:
            inputs = {k: arr(v) for k, v in kwargs.items()}
            inputs.update(zip(self.runtime.input_names, map(arr, args), strict=False))
        else:
            inputs = [arr(a) for a in args]
        return torch.from_numpy(np.ascontiguousarray(self.runtime.run(inputs)))

    def __deepcopy__(self, memo):  # the session is immutable; copies share it
        return self

    def extra_repr(self) -> str:
        return f"graph of {self.runtime.spec}, inputs {', '.join(self.runtime.input_names)}"
