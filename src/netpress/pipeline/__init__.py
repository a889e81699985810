"""Recipes (YAML stages of technique configs) and the runner that applies them."""

from .recipe import Recipe, load_recipe, parse_recipe
from .runner import RunResult, StageResult, run_recipe

__all__ = ["Recipe", "RunResult", "StageResult", "load_recipe", "parse_recipe", "run_recipe"]
