"""Run a ``.netpress`` file with numpy and ONNX Runtime only: no torch, no model class.

Example:
    >>> from netpress import runtime
    >>> m = runtime.load("model.netpress")  # doctest: +SKIP
    >>> m.run({"input_ids": ids, "attention_mask": mask})  # doctest: +SKIP

Importing this package imports neither torch nor the ``onnx`` package.
"""

from .model import Model, allocation_bound, import_onnxruntime, load, read_file, session_options

__all__ = ["Model", "allocation_bound", "import_onnxruntime", "load", "read_file",
           "session_options"]
