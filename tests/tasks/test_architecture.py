"""Architectural rules: techniques reach data only through the task, and nothing in
``techniques/`` hard-codes cross-entropy or accuracy."""

import ast
from pathlib import Path

import netpress

ROOT = Path(netpress.__file__).parent
TECHNIQUES = ROOT / "techniques"
FORBIDDEN_IMPORTS = ("netpress.data", "netpress.evaluate.metrics", "..data", "...data",
                     "...evaluate.metrics", "....data")
FORBIDDEN_NAMES = {"cross_entropy", "cross_entropy_loss", "Split", "ArrayLoader", "predict",
                   "accuracy", "runner_accuracy", "load_split"}


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = "." * node.level + (node.module or "")
            if any(mod == f or mod.startswith(f + ".") for f in FORBIDDEN_IMPORTS):
                out.append(f"{path.name}:{node.lineno} imports {mod}")
            for a in node.names:
                if a.name in FORBIDDEN_NAMES:
                    out.append(f"{path.name}:{node.lineno} imports {a.name}")
        elif isinstance(node, ast.Attribute):
            if node.attr == "split" and isinstance(node.value, ast.Name) and node.value.id == "ctx":
                out.append(f"{path.name}:{node.lineno} reads ctx.split")
            if node.attr in ("cross_entropy", "nll_loss"):
                out.append(f"{path.name}:{node.lineno} calls {node.attr}")
            if node.attr in ("train", "val", "test", "calib") and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "split":
                out.append(f"{path.name}:{node.lineno} reads split.{node.attr}")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES - {"accuracy"}:
            out.append(f"{path.name}:{node.lineno} uses {node.id}")
    return out


def test_techniques_reach_data_only_through_the_task():
    files = sorted(TECHNIQUES.rglob("*.py"))
    assert len(files) > 30
    bad = [v for f in files for v in _violations(f)]
    assert bad == []


def test_the_checker_catches_each_kind_of_leak(tmp_path):
    f = tmp_path / "leaky.py"
    f.write_text("from ...data.loaders import ArrayLoader\n"
                 "import torch.nn.functional as F\n"
                 "def h(model, ctx):\n"
                 "    x, y = ctx.split.train\n"
                 "    return F.cross_entropy(model(x), y)\n", encoding="utf-8")
    found = _violations(f)
    assert any("imports ...data.loaders" in v for v in found)
    assert any("ArrayLoader" in v for v in found)
    assert any("ctx.split" in v for v in found)
    assert any("split.train" in v for v in found)
    assert any("cross_entropy" in v for v in found)


def test_one_technique_list_and_core_modules():
    from netpress import techniques
    from netpress.pipeline import recipe
    from netpress.techniques import edits

    assert not hasattr(recipe, "TECHNIQUES") and not hasattr(edits, "_import_ops")
    assert recipe.load_techniques is techniques.load_techniques
    for f in TECHNIQUES.rglob("*.py"):  # techniques never import the API module
        assert "from ...api import" not in f.read_text(encoding="utf-8"), f
    from netpress.version import __version__

    assert netpress.__version__ == __version__
    uses = [f for f in ROOT.rglob("*.py") if "importlib.import_module(mod_name)" in f.read_text()]
    assert [f.name for f in uses] == ["resolve.py"]
