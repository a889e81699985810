"""netpress: compress trained PyTorch models and prove the result with real measurements.

Example:
    >>> import netpress
    >>> split = netpress.load_split("digits")
    >>> model = netpress.load_model("lenet-300-100")
    >>> netpress.evaluate(model, split).n
    300
"""

from .api import compress, evaluate, load_model, profile, train
from .bake import bake
from .config import Config, register
from .context import Context
from .data import load_split
from .errors import NetpressError
from .io import load_weights, save_weights
from .targets import Targets
from .version import __version__

__all__ = ["Config", "Context", "NetpressError", "Targets", "bake", "compress", "evaluate",
           "load_model", "load_split", "load_weights", "profile", "register", "save_weights",
           "train", "__version__"]
