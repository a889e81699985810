"""netpress: compress trained PyTorch models and prove the result with real measurements.

Example:
    >>> import netpress
    >>> split = netpress.load_split("digits")
    >>> model = netpress.load_model("lenet-300-100")
    >>> netpress.evaluate(model, split).n
    300
"""

__version__ = "0.1.0"

from .api import bake, compress, evaluate, load_model, profile, train  # noqa: E402
from .config import Config, register  # noqa: E402
from .context import Context  # noqa: E402
from .data import load_split  # noqa: E402
from .errors import NetpressError  # noqa: E402
from .io import load_weights, save_weights  # noqa: E402
from .targets import Targets  # noqa: E402

__all__ = ["Config", "Context", "NetpressError", "Targets", "bake", "compress", "evaluate",
           "load_model", "load_split", "load_weights", "profile", "register", "save_weights",
           "train", "__version__"]
