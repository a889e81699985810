"""Register, refuse a failing promotion, promote, roll back; lineage against the files."""

import json

import pytest

from netpress.cli import main
from netpress.registry import (
    RegistryError,
    Store,
    describe,
    download,
    promote,
    register,
    resolve,
    rollback,
    sha256_file,
)


def test_gated_promotion_rollback_and_lineage(runs, uri, tmp_path, capsys):
    store = Store(uri)
    assert store.artifacts == (tmp_path / "reg" / "mlartifacts").as_uri()
    v1 = register(store, runs["pass1"], "lenet")
    assert v1["version"] == "1" and v1["parent_version"] is None
    checks, moved = promote(store, "lenet", "1", max_acc_drop=0.5, min_ratio=10)
    assert moved and all(c.passed for c in checks)
    v2 = register(store, runs["fail"], "lenet")
    assert v2["parent_version"] == "1"  # the champion when it was registered
    checks, moved = promote(store, "lenet", "2", max_acc_drop=0.5, min_ratio=10)
    assert not moved and [c.passed for c in checks] == [False, True]
    assert resolve(store, "models:/lenet@champion") == ("lenet", "1")
    register(store, runs["pass3"], "lenet")
    assert promote(store, "lenet", "3", max_acc_drop=0.5)[1]
    assert resolve(store, "models:/lenet@champion") == ("lenet", "3")
    assert rollback(store, "lenet") == {"name": "lenet", "from": "3", "to": "1"}
    assert resolve(store, "models:/lenet@champion") == ("lenet", "1")
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(store, "lenet")

    d = describe(store, "lenet")
    assert [v["version"] for v in d["versions"]] == ["3", "2", "1"]
    assert d["aliases"] == {"champion": "1"} and d["champion_history"] == ["1"]
    assert d["versions"][1]["gate"][0]["passed"] is False and d["versions"][0]["rolled_back"]
    for version, key in (("1", "pass1"), ("2", "fail"), ("3", "pass3")):
        root = runs[key]
        lin = d["versions"][3 - int(version)]["lineage"]
        assert lin["artifact_sha256"] == sha256_file(root / "model.netpress")
        assert lin["baseline_weights_sha256"] == sha256_file(root / "base.safetensors")
        got = download(store, "lenet", version, tmp_path / "dl" / version)
        assert sha256_file(got / "model.netpress") == sha256_file(root / "model.netpress")
        full = json.loads((got / "lineage.json").read_text())
        import sklearn.datasets

        digits = f"{sklearn.datasets.__file__.rsplit('/', 1)[0]}/data/digits.csv.gz"
        assert full["data_files"][0]["sha256"] == sha256_file(digits)
        assert full["recipe"]["name"] == f"r{key[-1] if key != 'fail' else 2}"
        assert full["netpress_version"] and (got / "model_card.md").is_file()
        assert (got / "report.json").is_file() and (got / "baseline.netpress").is_file()


def test_cli_exit_codes_and_json(runs, uri, capsys):
    assert main(["register", str(runs["pass1"]), "--name", "m", "--tracking-uri", uri, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "1"
    assert main(["register", str(runs["fail"]), "--name", "m", "--tracking-uri", uri]) == 0
    assert main(["promote", "m", "--version", "2", "--max-acc-drop", "0.5", "--tracking-uri", uri]) == 1
    assert main(["promote", "m", "--version", "1", "--max-acc-drop", "0.5", "--tracking-uri", uri,
                 "--json"]) == 0
    capsys.readouterr()
    assert main(["promote", "m", "--version", "9", "--max-acc-drop", "0.5", "--tracking-uri", uri]) == 2
    assert "no version 9" in capsys.readouterr().err
    assert main(["promote", "m", "--version", "1", "--tracking-uri", uri]) == 2  # no budget
    assert main(["rollback", "m", "--tracking-uri", uri]) == 2
    assert main(["registry", "show", "m", "--tracking-uri", uri, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["aliases"] == {"champion": "1"}
    assert main(["registry", "list", "--tracking-uri", uri, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["versions"] == 2
    assert main(["register", str(runs["pass1"].parent / "nope"), "--name", "m",
                 "--tracking-uri", uri]) == 2
