"""Recipes: YAML files listing technique stages, turned into validated configs.

A recipe is a mapping with ``stages`` (a list of technique configs, each written as
``_type: <ConfigName>`` plus its fields) and optionally ``name``, ``description`` and
``artifact`` (how the result is stored: ``coder: auto|ans|huffman``, ``index:
auto|relative|bitmap``) and ``distributed`` (how data-parallel ranks exchange gradients
under torchrun, a ``netpress.distributed.CommHook``: ``{hook: powersgd, rank: 2}``).
Every stage is checked by its config class; an error names the file, the line of the
offending key and what is valid. Kept simple on purpose: a
later issue adds resume and search on top of ``Recipe``.

Example:
    >>> r = parse_recipe("stages:\\n  - _type: WeightShare\\n    bits: 4\\n")
    >>> r.stages[0].bits, r.coder
    (4, 'ans')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import Config
from ..errors import ConfigError
from ..techniques import load_techniques

# Technique packages whose configs a recipe may name; importing one registers its configs.
# Configs that turn the model into runtime int8 modules, which neither a checkpoint nor an
# artifact holds: they are deployment steps, run on a recipe's result.
NOT_IN_RECIPES = {
    "StaticInt8": "netpress quantize --method static",
    "DynamicInt8": "netpress quantize --method dynamic",
}
STAGE_KEYS = ("check",)  # recipe keys of a stage besides its technique config
CODERS = ("auto", "ans", "huffman")
INDEX_KINDS = ("auto", "relative", "bitmap")
TOP_KEYS = ("name", "description", "stages", "artifact", "distributed")


@dataclass(frozen=True)
class Recipe:
    """An ordered list of technique configs and how to store the result.

    Example:
        >>> parse_recipe("stages: [{_type: WeightShare}]").to_dict()["artifact"]
        {'coder': 'ans', 'index': 'auto'}
    """

    stages: tuple[Config, ...]
    name: str = "recipe"
    description: str = ""
    coder: str = "ans"  # entropy coder of the streams: ans, huffman or auto (smaller each)
    index: str = "auto"  # sparse positions: auto (smaller), relative or bitmap
    source: str = "<recipe>"
    lines: tuple[int, ...] = field(default=(), compare=False)  # YAML line of each stage
    checks: tuple[float | None, ...] = ()  # per stage: largest validation drop allowed, pp
    comm: Config | None = None  # distributed.CommHook: gradient exchange under torchrun

    def to_dict(self) -> dict:
        """Plain data, as stored in an artifact's header."""
        out = {"name": self.name, "stages": [s.to_dict() for s in self.stages],
               "artifact": {"coder": self.coder, "index": self.index}}
        if any(c is not None for c in self.checks):
            out["checks"] = list(self.checks)
        if self.comm is not None:
            out["distributed"] = _comm_dict(self.comm)
        return out

    def check_of(self, i: int) -> float | None:
        """The accuracy check of stage ``i`` (0-based): max validation drop in pp, or None."""
        return self.checks[i] if i < len(self.checks) else None


def _comm_dict(comm: Config) -> dict:
    return {k: v for k, v in comm.to_dict().items() if not k.startswith("_")}


def _parse_comm(value: object, root: yaml.Node, source: str) -> Config | None:
    from ..config import _build
    from ..distributed.hooks import CommHook

    if value is None:
        return None
    line = _key_line(root, "distributed")
    if not isinstance(value, dict):
        raise ConfigError(f"{source} line {line}: 'distributed' must be a mapping such as "
                          "{hook: powersgd, rank: 2}")
    return _build(CommHook, value, f"{source} line {line} (distributed)")


def _key_line(node: yaml.Node, key: str) -> int | None:
    if isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k.start_mark.line + 1
    return None


def _named_key_line(node: yaml.Node, message: str) -> int | None:
    """Line of the stage key that ``message`` names first (``None`` if it names none)."""
    best: tuple[int, int] | None = None
    if isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            m = re.search(rf"\b{re.escape(str(k.value))}\b", message)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), k.start_mark.line + 1)
    return best[1] if best else None


def parse_recipe(text: str, source: str = "<recipe>") -> Recipe:
    """Parse and validate recipe YAML ``text`` (``source`` names it in errors).

    Example:
        >>> parse_recipe("stages: [{_type: WeightShare, bits: 9}]", "r.yaml")
        Traceback (most recent call last):
        ...
        netpress.errors.ConfigError: r.yaml line 1 (stage 1): bits=9: ...
    """
    load_techniques()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a recipe is a mapping with a 'stages' list")
    for k in data:
        if k not in TOP_KEYS:
            raise ConfigError(f"{source} line {_key_line(root, str(k))}: unknown key {k!r}; "
                              f"valid keys: {', '.join(TOP_KEYS)}")
    stages_data = data.get("stages")
    if not isinstance(stages_data, list) or not stages_data:
        raise ConfigError(f"{source}: 'stages' must be a non-empty list of technique configs")
    stages_node = next(v for k, v in root.value if k.value == "stages")
    stages, lines, checks = [], [], []
    for i, (item, node) in enumerate(zip(stages_data, stages_node.value, strict=True)):
        line = node.start_mark.line + 1
        where = f"{source} line {line} (stage {i + 1})"
        if isinstance(item, dict) and item.get("_type") in NOT_IN_RECIPES:
            raise ConfigError(
                f"{where}: {item['_type']} converts the model to runtime int8 modules, which an "
                f"artifact cannot hold; run `{NOT_IN_RECIPES[item['_type']]}` on the result")
        if isinstance(item, dict) and "check" in item:
            item = dict(item)
            checks.append(_parse_check(item.pop("check"), f"{source} line "
                                       f"{_key_line(node, 'check')} (stage {i + 1})"))
        else:
            checks.append(None)
        try:
            stages.append(Config.from_dict(item, where=where))
        except ConfigError as e:
            msg = str(e)
            key_line = _named_key_line(node, msg[len(where):])
            if key_line is not None and key_line != line:
                msg = msg.replace(f"line {line} (stage", f"line {key_line} (stage", 1)
            raise ConfigError(msg) from None
        lines.append(line)
    art = data.get("artifact") or {}
    if not isinstance(art, dict):
        raise ConfigError(f"{source}: 'artifact' must be a mapping (coder, index)")
    for k, v in art.items():
        valid = {"coder": CODERS, "index": INDEX_KINDS}.get(k)
        line = _key_line(next(v for k2, v in root.value if k2.value == "artifact"), str(k))
        if valid is None:
            raise ConfigError(f"{source} line {line}: unknown artifact key {k!r}; "
                              "valid keys: coder, index")
        if v not in valid:
            raise ConfigError(f"{source} line {line}: artifact {k} {v!r} is not one of "
                              f"{list(valid)}")
    return Recipe(tuple(stages), name=str(data.get("name", Path(source).stem)),
                  description=str(data.get("description", "")),
                  coder=art.get("coder", "ans"), index=art.get("index", "auto"),
                  source=source, lines=tuple(lines), checks=tuple(checks),
                  comm=_parse_comm(data.get("distributed"), root, source))


def _parse_check(value: object, where: str) -> float:
    """A stage's ``check: {max_drop_pp: X}``: X ≥ 0, the largest validation accuracy drop
    (percentage points, against the baseline) allowed after the stage."""
    if not isinstance(value, dict) or set(value) != {"max_drop_pp"}:
        raise ConfigError(f"{where}: check must be a mapping with one key, max_drop_pp "
                          f"(e.g. check: {{max_drop_pp: 1.0}}), got {value!r}")
    x = value["max_drop_pp"]
    if isinstance(x, bool) or not isinstance(x, int | float) or not 0 <= x < 100:
        raise ConfigError(f"{where}: check max_drop_pp must be a number in [0, 100), got {x!r}")
    return float(x)


def dump_recipe(recipe: Recipe) -> str:
    """The YAML text of ``recipe``; ``parse_recipe`` reads it back to an equal recipe.

    Example:
        >>> r = parse_recipe("stages: [{_type: WeightShare, bits: 3}]")
        >>> parse_recipe(dump_recipe(r)) == r
        True
    """
    data: dict = {"name": recipe.name}
    if recipe.description:
        data["description"] = recipe.description
    data["stages"] = []
    for i, s in enumerate(recipe.stages):
        stage = s.to_dict()
        if recipe.check_of(i) is not None:
            stage["check"] = {"max_drop_pp": recipe.check_of(i)}
        data["stages"].append(stage)
    data["artifact"] = {"coder": recipe.coder, "index": recipe.index}
    if recipe.comm is not None:
        data["distributed"] = _comm_dict(recipe.comm)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file.

    Example:
        >>> load_recipe("recipes/deep-compression.yaml").name  # doctest: +SKIP
        'deep-compression'
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe not found: {path}; see recipes/ for ready ones")
    return parse_recipe(path.read_text(), source=str(path))
