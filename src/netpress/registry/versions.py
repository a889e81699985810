"""Register, promote, roll back and list versions of a model in MLflow's model registry.

A registered version is one MLflow run (experiment ``netpress``) whose ``model/``
artifacts are the run folder's artifact, reports, model card, drift reference and
lineage, plus a model version pointing at them. Lineage hashes are tags of the version
(``lineage.artifact_sha256``, …) and the whole record is ``model/lineage.json``.

Promotion uses MLflow's aliases: ``champion`` moves only when the version's
``report.json`` passes every budget of ``netpress gate`` (the same ``check_budgets``).
The champion history, oldest first, is the registered model's tag
``netpress.champion_history`` (JSON), so ``rollback`` moves ``champion`` back to the
one before. Concurrent promotions of one model are not serialized (registrations are).

Example:
    >>> store = Store("sqlite:////tmp/reg/mlflow.db")  # doctest: +SKIP
    >>> v = register(store, "runs/dc", "lenet")  # doctest: +SKIP
    >>> checks, moved = promote(store, "lenet", v["version"], max_acc_drop=0.5)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .lineage import lineage as run_lineage
from .store import RegistryError, Store, is_missing

if TYPE_CHECKING:  # the gate imports torch; the server resolves versions without it
    from ..evaluate.gate import Check

ALIAS = "champion"
HISTORY_TAG = "netpress.champion_history"
ARTIFACT_DIR = "model"
LOGGED = ("model.netpress", "baseline.netpress", "reference.json", "report.json", "report.html",
          "report.md", "model_card.md", "model_card.json", "run.json", "recipe.yaml",
          "record.json", "behaviour.json")
METRICS = ("accuracy", "baseline_accuracy", "accuracy_drop_pp", "compression_ratio", "size_bytes",
           "max_class_drop_pp")


def _ensure_model(store: Store, name: str) -> None:
    try:
        store.client.create_registered_model(name, tags={HISTORY_TAG: "[]"})
    except Exception as e:  # another process created it first
        if getattr(e, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise


def _champion(store: Store, name: str) -> str | None:
    try:
        return str(store.client.get_model_version_by_alias(name, ALIAS).version)
    except Exception as e:
        if is_missing(e):
            return None
        raise


def _flat_tags(lin: dict) -> dict[str, str]:
    tags = {"lineage.netpress_version": str(lin["netpress_version"]),
            "lineage.model": str(lin.get("model")), "lineage.data": str(lin.get("data")),
            "lineage.parent_version": str(lin.get("parent_version"))}
    for key in ("artifact", "baseline_weights", "baseline_artifact"):
        entry = lin.get(key) or {}
        tags[f"lineage.{key}_sha256"] = str(entry.get("sha256"))
    for i, entry in enumerate(lin.get("data_files", [])):
        tags[f"lineage.data_file_{i}_sha256"] = str(entry.get("sha256"))
    tags["lineage.recipe"] = json.dumps(lin.get("recipe"), sort_keys=True)[:4900]
    return tags


def register(store: Store, run_dir: str | os.PathLike, name: str,
             data_dir: str | os.PathLike | None = None, parent: str | None = None,
             description: str | None = None) -> dict:
    """Log a finished run folder as a new version of ``name``; returns its summary.

    ``parent`` defaults to the current champion (none for the first version). The run
    folder needs ``model.netpress`` and ``report.json``; a missing model card is written
    first (``netpress report DIR`` writes both).

    Example:
        >>> register(store, "runs/dc", "lenet")["version"]  # doctest: +SKIP
        '1'
    """
    from ..evaluate.gate import load_report

    root = Path(run_dir)
    load_report(root)  # the gate input must be there before anything is logged
    if not (root / "model_card.json").is_file():  # the report is kept as it is
        from ..report.card import write_card

        write_card(root, data_dir)
    _ensure_model(store, name)
    parent = parent if parent is not None else _champion(store, name)
    lin = run_lineage(root, data_dir=data_dir, parent=parent)
    client = store.client
    run = client.create_run(store.experiment_id, run_name=f"{name}-{root.name}",
                            tags={"netpress.registered_model": name, **_flat_tags(lin)})
    rid = run.info.run_id
    try:
        report = load_report(root)
        for key in METRICS:
            value = report.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                client.log_metric(rid, key, float(value))
        lat = (report.get("latency_ms") or {}).get("batch1_p50")
        if isinstance(lat, int | float):
            client.log_metric(rid, "latency_batch1_p50_ms", float(lat))
        for fname in LOGGED:
            if (root / fname).is_file():
                client.log_artifact(rid, str(root / fname), ARTIFACT_DIR)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "lineage.json").write_text(json.dumps(lin, indent=1) + "\n")
            client.log_artifact(rid, str(Path(tmp) / "lineage.json"), ARTIFACT_DIR)
        client.set_terminated(rid)
    except Exception:
        client.set_terminated(rid, status="FAILED")
        raise
    mv = client.create_model_version(name, source=f"{run.info.artifact_uri}/{ARTIFACT_DIR}",
                                     run_id=rid, tags=_flat_tags(lin), description=description)
    return {"name": name, "version": str(mv.version), "run_id": rid, "source": mv.source,
            "parent_version": parent, "lineage": lin}


def _version(store: Store, name: str, version: str):
    try:
        return store.client.get_model_version(name, str(version))
    except Exception as e:
        if is_missing(e):
            raise RegistryError(f"{name} has no version {version}; list them with "
                                f"`netpress registry show {name}`") from e
        raise


def download(store: Store, name: str, version: str, dst: str | os.PathLike) -> Path:
    """Copy a version's ``model/`` artifacts into ``dst``; returns that folder.

    Example:
        >>> (download(store, "lenet", "1", "/tmp/v1") / "model.netpress").is_file()  # doctest: +SKIP
        True
    """
    mv = _version(store, name, version)
    Path(dst).mkdir(parents=True, exist_ok=True)
    return Path(store.client.download_artifacts(mv.run_id, ARTIFACT_DIR, str(dst)))


def _history(store: Store, name: str) -> list[str]:
    try:
        tags = store.client.get_registered_model(name).tags
    except Exception as e:
        if is_missing(e):
            raise RegistryError(f"no registered model {name!r}; register one with "
                                f"`netpress register RUN_DIR --name {name}`") from e
        raise
    try:
        hist = json.loads(tags.get(HISTORY_TAG, "[]"))
    except json.JSONDecodeError:
        hist = []
    return [str(v) for v in hist] if isinstance(hist, list) else []


def promote(store: Store, name: str, version: str, **budgets: float | None) -> tuple[list[Check], bool]:
    """Gate ``version``'s report on ``budgets`` (the keyword arguments of
    ``check_budgets``); move ``champion`` to it only if every budget holds.
    Returns ``(checks, moved)``.

    Example:
        >>> checks, moved = promote(store, "lenet", "2", max_acc_drop=0.5)  # doctest: +SKIP
    """
    from ..evaluate.gate import check_budgets, load_report

    _version(store, name, version)
    hist = _history(store, name)
    with tempfile.TemporaryDirectory() as tmp:
        folder = download(store, name, version, tmp)
        checks = check_budgets(load_report(folder / "report.json"), **budgets)
    passed = all(c.passed for c in checks)
    store.client.set_model_version_tag(name, str(version), "netpress.gate",
                                       json.dumps([c.as_dict() for c in checks]))
    if not passed:
        return checks, False
    store.client.set_registered_model_alias(name, ALIAS, str(version))
    if not hist or hist[-1] != str(version):
        hist.append(str(version))
    store.client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(hist))
    return checks, True


def rollback(store: Store, name: str) -> dict:
    """Move ``champion`` back to the previous champion; returns ``{"from", "to"}``.

    Example:
        >>> rollback(store, "lenet")  # doctest: +SKIP
        {'name': 'lenet', 'from': '2', 'to': '1'}
    """
    hist = _history(store, name)
    if len(hist) < 2:
        raise RegistryError(f"{name} has no previous champion to roll back to (champion history "
                            f"{hist or 'empty'}); promote a version with `netpress promote`")
    old = hist.pop()
    store.client.set_registered_model_alias(name, ALIAS, hist[-1])
    store.client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(hist))
    store.client.set_model_version_tag(name, old, "netpress.rolled_back", "true")
    return {"name": name, "from": old, "to": hist[-1]}


def describe(store: Store, name: str) -> dict:
    """A registered model's versions (newest first), aliases, lineage and gate results.

    Example:
        >>> describe(store, "lenet")["aliases"]  # doctest: +SKIP
        {'champion': '1'}
    """
    hist = _history(store, name)
    rm = store.client.get_registered_model(name)
    aliases = {a: str(v) for a, v in (rm.aliases or {}).items()}
    versions = []
    for mv in store.client.search_model_versions(f"name='{name}'"):
        tags = dict(mv.tags or {})
        gate = tags.pop("netpress.gate", None)
        versions.append({
            "version": str(mv.version), "run_id": mv.run_id, "source": mv.source,
            "created": mv.creation_timestamp,
            "aliases": sorted(a for a, v in aliases.items() if v == str(mv.version)),
            "lineage": {k[len("lineage."):]: v for k, v in tags.items() if k.startswith("lineage.")},
            "gate": json.loads(gate) if gate else None,
            "rolled_back": tags.get("netpress.rolled_back") == "true",
        })
    versions.sort(key=lambda v: int(v["version"]), reverse=True)
    return {"name": name, "aliases": aliases, "champion_history": hist, "versions": versions}


def list_models(store: Store) -> list[dict]:
    """Every registered model: name, number of versions, aliases.

    Example:
        >>> list_models(store)  # doctest: +SKIP
        [{'name': 'lenet', 'versions': 2, 'aliases': {'champion': '1'}}]
    """
    out = []
    for rm in store.client.search_registered_models():
        n = len(store.client.search_model_versions(f"name='{rm.name}'"))
        out.append({"name": rm.name, "versions": n,
                    "aliases": {a: str(v) for a, v in (rm.aliases or {}).items()}})
    return sorted(out, key=lambda r: r["name"])


def resolve(store: Store, uri: str) -> tuple[str, str]:
    """``(name, version)`` of ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.

    Example:
        >>> resolve(store, "models:/lenet/3")  # doctest: +SKIP
        ('lenet', '3')
    """
    if not uri.startswith("models:/"):
        raise RegistryError(f"{uri!r} is not a registry URI; write models:/NAME@ALIAS or "
                            "models:/NAME/VERSION")
    rest = uri[len("models:/"):]
    if "@" in rest:
        name, alias = rest.split("@", 1)
        try:
            return name, str(store.client.get_model_version_by_alias(name, alias).version)
        except Exception as e:
            if is_missing(e):
                raise RegistryError(f"{name} has no alias {alias!r}; promote a version with "
                                    f"`netpress promote {name} --version V`") from e
            raise
    if "/" not in rest:
        raise RegistryError(f"{uri!r} names no version; write models:/NAME@ALIAS or models:/NAME/V")
    name, version = rest.rsplit("/", 1)
    _version(store, name, version)
    return name, version
