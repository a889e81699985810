"""Lineage of a run folder: what a registered version was made from, as SHA-256 hashes.

``lineage(run_dir)`` reads ``run.json`` and hashes the files the run used: the
baseline weights (``run.json["weights"]``), the data files (the four Fashion-MNIST IDX
files, scikit-learn's bundled digits file, or a ``text:FILE``), the artifact
(``model.netpress``) and, when present, the fp32 ``baseline.netpress`` the server's
shadow mode runs. A file that cannot be found is listed with ``sha256: null`` and a
``note`` instead of failing: lineage says what it knows.

Example:
    >>> lineage("runs/dc")["artifact"]["sha256"][:8]  # doctest: +SKIP
    '3f1c9a2e'
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..errors import DataError, FormatError
from ..version import __version__

CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, as hex, read in 1 MiB chunks.

    Example:
        >>> import tempfile; p = Path(tempfile.mkdtemp()) / "x"; _ = p.write_bytes(b"abc")
        >>> sha256_file(p)[:12]
        'ba7816bf8f01'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def file_entry(path: str | os.PathLike | None, base: Path | None = None) -> dict:
    """``{"path", "sha256", "bytes"}`` of a file, or ``sha256: None`` with a note when it
    is not there (a relative path is tried as given, then under ``base``).

    Example:
        >>> file_entry("no-such-file")["sha256"] is None
        True
    """
    if path is None or str(path) in ("", "None"):
        return {"path": None, "sha256": None, "note": "not recorded in run.json"}
    p = Path(path)
    if not p.is_file() and base is not None and not p.is_absolute() and (base / p).is_file():
        p = base / p
    if not p.is_file():
        return {"path": str(path), "sha256": None, "note": "file not found when registering"}
    return {"path": str(p.resolve()), "sha256": sha256_file(p), "bytes": p.stat().st_size}


def data_files(data: str | None, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The files a named data set is read from (empty when netpress cannot tell).

    Example:
        >>> [p.name for p in data_files("digits")]
        ['digits.csv.gz']
    """
    if not data:
        return []
    if data == "fashion-mnist":
        from ..data.fashion_mnist import FILES, _find
        from ..data.fashion_mnist import data_dir as fm_dir

        folder = fm_dir(data_dir)
        out = []
        for stem in FILES.values():
            try:
                out.append(_find(folder, stem))
            except DataError:  # a missing file is listed as missing
                out.append(folder / f"{stem}.gz")
        return out
    if data == "digits":
        import sklearn.datasets

        return [Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"]
    if data.startswith("text:") and not data.startswith("text:fortunes"):
        return [Path(data[len("text:"):])]
    return []


def read_run(run_dir: str | os.PathLike) -> dict:
    """``run.json`` of a run folder; FormatError saying what to do when absent.

    Example:
        >>> read_run("missing-run")
        Traceback (most recent call last):
        ...
        netpress.errors.FormatError: missing-run is not a run folder (no run.json); ...
    """
    p = Path(run_dir) / "run.json"
    if not p.is_file():
        raise FormatError(f"{run_dir} is not a run folder (no run.json); give the --run-dir of a "
                          "finished `netpress compress`")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{p} is not valid JSON ({e}); run `netpress compress` again") from e
    if not isinstance(obj, dict):
        raise FormatError(f"{p} is not a JSON object; run `netpress compress` again")
    return obj


def lineage(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None,
            parent: str | None = None) -> dict:
    """Everything a registered version records about where it came from.

    Example:
        >>> sorted(lineage("runs/dc"))  # doctest: +SKIP
        ['artifact', 'baseline_artifact', 'baseline_weights', 'data', 'data_files', ...]
    """
    root = Path(run_dir)
    run = read_run(root)
    artifact = root / "model.netpress"
    if not artifact.is_file():
        raise FormatError(f"{root} has no model.netpress; the run did not finish: "
                          "run `netpress compress --run-dir DIR --resume`")
    base = root / "baseline.netpress"
    return {
        "run_dir": str(root.resolve()),
        "model": run.get("model"),
        "data": run.get("data"),
        "seed": run.get("seed"),
        "baseline_weights": file_entry(run.get("weights"), root),
        "data_files": [file_entry(p) for p in data_files(run.get("data"), data_dir)],
        "artifact": file_entry(artifact),
        "baseline_artifact": file_entry(base) if base.is_file() else None,
        "recipe": run.get("recipe"),
        "netpress_version": __version__,
        "parent_version": parent,
    }
