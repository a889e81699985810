"""Compression techniques. Each subpackage registers its configs with ``netpress.config``
(and, when it changes shapes, its edit ops with ``techniques.edits``) when imported.

``MODULES`` is the one list of them: recipes, edit replay and the conformance check all
call ``load_techniques`` instead of keeping lists of their own. Nothing is discovered by
walking packages. ``netpress.zoo.hf_task`` registers no technique, only the edit that gives
a Hugging Face folder another task (a fresh classification head).
"""

import importlib

MODULES = ("netpress.techniques.prune", "netpress.techniques.cluster",
           "netpress.techniques.quantize", "netpress.techniques.lowrank",
           "netpress.techniques.distill", "netpress.techniques.share",
           "netpress.techniques.regularize",
           "netpress.pipeline.steps", "netpress.zoo.hf_task")


def load_techniques() -> None:
    """Import every technique module so that its configs and edit ops are registered.

    Example:
        >>> load_techniques()
        >>> from netpress.config import CONFIGS
        >>> "WeightShare" in CONFIGS and "MagnitudePrune" in CONFIGS
        True
    """
    for mod in MODULES:
        importlib.import_module(mod)
