"""Where the registry lives: an MLflow tracking/registry store, local SQLite by default.

The store is, first found wins: the ``uri`` a command is given (``--tracking-uri``),
``$NETPRESS_TRACKING_URI``, ``$MLFLOW_TRACKING_URI``, else ``sqlite:///.netpress/mlflow.db``
in the working folder (gitignored). Artifacts go to an explicit location: for a SQLite
store, the ``mlartifacts`` folder beside the database file; otherwise
``$NETPRESS_ARTIFACT_URI`` or ``.netpress/mlartifacts``. Nothing goes to ``$HOME``.

MLflow's telemetry is switched off before it is imported (``MLFLOW_DISABLE_TELEMETRY``,
``DO_NOT_TRACK``), as are its progress bars and INFO logging, so no command of the
registry reaches the network or clutters stderr.

Several processes may open a fresh SQLite store at once; MLflow creates its tables with
Alembic migrations that race each other there, so the first open of a SQLite store is
serialized by an ``fcntl`` lock file beside the database (MLflow itself retries
version-number conflicts and sets SQLite's ``busy_timeout`` for later writes).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path

from ..errors import ConfigError, NetpressError

DEFAULT_DB = Path(".netpress") / "mlflow.db"
EXPERIMENT = "netpress"


class RegistryError(NetpressError):
    """A registry operation cannot be done (unknown model or version, missing files)."""


def import_mlflow():
    """Import MLflow with telemetry, progress bars and INFO logs off.

    Example:
        >>> import_mlflow().__name__
        'mlflow'
    """
    for key, value in (("MLFLOW_DISABLE_TELEMETRY", "true"), ("DO_NOT_TRACK", "true"),
                       ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")):
        os.environ.setdefault(key, value)
    try:
        import mlflow
    except ImportError as e:
        raise RegistryError("the registry needs MLflow: pip install 'netpress[mlflow]'") from e
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def tracking_uri(uri: str | None = None) -> str:
    """The store's URI (see the module docstring).

    Example:
        >>> tracking_uri("sqlite:///tmp/r.db")
        'sqlite:///tmp/r.db'
    """
    found = uri or os.environ.get("NETPRESS_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if found:
        return found
    return f"sqlite:///{DEFAULT_DB.resolve()}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None.

    Example:
        >>> sqlite_path("sqlite:////tmp/r.db")
        PosixPath('/tmp/r.db')
    """
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?")[0])


def artifact_location(uri: str) -> str:
    """Where run artifacts go for the store at ``uri`` (a ``file://`` URI by default).

    Example:
        >>> artifact_location("sqlite:////tmp/r.db")
        'file:///tmp/mlartifacts'
    """
    db = sqlite_path(uri)
    if db is not None:
        return (db.resolve().parent / "mlartifacts").as_uri()
    env = os.environ.get("NETPRESS_ARTIFACT_URI")
    if env:
        return env
    return (Path(".netpress") / "mlartifacts").resolve().as_uri()


@contextlib.contextmanager
def _first_open_lock(uri: str):
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.parent / f"{db.name}.lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Store:
    """An open registry: ``client`` (an ``mlflow.MlflowClient``), the URI and the id of
    the ``netpress`` experiment that holds one MLflow run per registered version.

    Example:
        >>> store = Store("sqlite:////tmp/reg/mlflow.db")  # doctest: +SKIP
        >>> store.client.search_registered_models()  # doctest: +SKIP
        []
    """

    def __init__(self, uri: str | None = None):
        mlflow = import_mlflow()
        self.uri = tracking_uri(uri)
        self.artifacts = artifact_location(self.uri)
        with _first_open_lock(self.uri):
            try:
                self.client = mlflow.MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
                self.experiment_id = self._experiment()
            except Exception as e:  # MLflow raises its own and SQLAlchemy's types
                if isinstance(e, NetpressError):
                    raise
                raise ConfigError(f"cannot open the registry at {self.uri} ({_first_line(e)}); "
                                  "give a valid --tracking-uri (e.g. sqlite:///DIR/mlflow.db)") from e

    def _experiment(self) -> str:
        exp = self.client.get_experiment_by_name(EXPERIMENT)
        if exp is not None:
            return exp.experiment_id
        return self.client.create_experiment(EXPERIMENT, artifact_location=self.artifacts)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def is_missing(e: BaseException) -> bool:
    """Whether an MLflow exception says the thing asked for does not exist.

    Example:
        >>> is_missing(ValueError("x"))
        False
    """
    code = getattr(e, "error_code", "")
    text = str(e).lower()
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or (
        code == "INVALID_PARAMETER_VALUE" and ("not found" in text or "does not exist" in text))
