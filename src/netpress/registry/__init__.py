"""The model registry (MLflow): lineage, gated promotion behind ``champion``, rollback.

Example:
    >>> from netpress.registry import Store, register, promote  # doctest: +SKIP
    >>> store = Store()  # sqlite:///.netpress/mlflow.db  # doctest: +SKIP
    >>> v = register(store, "runs/dc", "lenet")  # doctest: +SKIP
    >>> promote(store, "lenet", v["version"], max_acc_drop=0.5)  # doctest: +SKIP
"""

from .lineage import lineage, sha256_file
from .store import RegistryError, Store, tracking_uri
from .versions import (
    ALIAS,
    describe,
    download,
    list_models,
    promote,
    register,
    resolve,
    rollback,
)

__all__ = ["ALIAS", "RegistryError", "Store", "describe", "download", "lineage", "list_models",
           "promote", "register", "resolve", "rollback", "sha256_file", "tracking_uri"]
