"""Behaviour checks that fit text, for every text task, model against baseline on test.

- **Token dropout** (rate p): each real token other than the first and the last is
  removed with probability p; the rest shift left and the attention mask shrinks.
- **Token swaps** (rate p): each adjacent pair of such tokens is swapped with
  probability p.
- **FGSM on the embedding layer** (eps): the word-embedding output moves by
  ``eps · rms(embeddings) · sign(∂ loss / ∂ embedding)``, the loss being the task's
  (labels for classification, the reference embeddings for sentence encoders, next
  tokens for language models). Pixel noise and input-space FGSM have no meaning for
  token ids; this is the standard substitute.
- **Per-class gaps** where the task has classes.

Each perturbed score is measured for the model and the baseline on the same perturbed
inputs, seeded, so a gap is the compression's and not the perturbation's. The targets of
the sentence-embedding task stay the reference's embeddings of the *clean* text.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..batches import take
from ..evaluate.metrics import per_class_accuracy
from ..targets import token_embedding
from .base import Task

RATES = (0.1, 0.2)
EPS = (0.02, 0.05)


def _perturb(tokens: dict, rate: float, mode: str, seed: int) -> dict:
    """Token dropout (``mode='drop'``) or adjacent swaps (``'swap'``) at ``rate``."""
    g = torch.Generator().manual_seed(seed)
    ids, mask = tokens["input_ids"].clone(), tokens["attention_mask"].clone()
    pad = int(ids[mask == 0][0]) if (mask == 0).any() else 0
    out_ids = torch.full_like(ids, pad)
    out_mask = torch.zeros_like(mask)
    for i in range(len(ids)):
        n = int(mask[i].sum())
        row = ids[i, :n].clone()
        inner = torch.arange(1, max(1, n - 1))
        if mode == "swap":
            for j in inner[:-1].tolist():
                if float(torch.rand((), generator=g)) < rate:
                    row[j], row[j + 1] = row[j + 1].clone(), row[j].clone()
        else:
            keep = torch.ones(n, dtype=torch.bool)
            if len(inner):
                keep[inner] = torch.rand(len(inner), generator=g) >= rate
            row = row[keep]
        out_ids[i, :len(row)] = row
        out_mask[i, :len(row)] = 1
    out = {k: v for k, v in tokens.items()}
    out["input_ids"], out["attention_mask"] = out_ids, out_mask
    if "token_type_ids" in out:
        out["token_type_ids"] = torch.zeros_like(out_ids)
    return out


def fgsm_embedding_score(task, model: nn.Module, inputs: dict, targets: torch.Tensor,
                         eps: float, batch_size: int = 256) -> float:
    """The task's score when the word-embedding output takes one FGSM step of ``eps``
    (relative to the embeddings' RMS) against the task's loss."""
    emb = token_embedding(model)
    if emb is None:
        return float("nan")
    scale = float(emb.weight.detach().pow(2).mean().sqrt())
    state: dict = {}

    def hook(mod, args, out):
        if "delta" in state:
            return out + state["delta"]
        out.retain_grad()
        state["out"] = out
        return out

    handle = emb.register_forward_hook(hook)
    was = model.training
    model.eval()
    outs = []
    try:
        n = len(targets)
        for i in range(0, n, batch_size):
            x, y = take(inputs, slice(i, i + batch_size)), targets[i:i + batch_size]
            state.clear()
            model.zero_grad(set_to_none=True)
            task.loss(model, x, y).backward()
            state["delta"] = eps * scale * state["out"].grad.sign()
            with torch.no_grad():
                outs.append(task.forward(model, x).float())
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
        model.train(was)
    out = torch.cat(outs)
    if hasattr(task, "_compact"):
        out = task._compact(out, targets)
    return task.score_outputs(out, targets)


def _score_on(task, model, inputs, targets) -> float:
    from .text import CausalLanguageModel, lm_targets

    if isinstance(task, CausalLanguageModel):
        targets = lm_targets(inputs)
    loader = task.with_part("test", inputs, targets).loader("test", min(256, task.eval_batch_size))
    return task.score_outputs(*task.predict(model, loader=loader))


def text_behaviour(task, model: nn.Module, baseline: nn.Module, seed: int = 0,
                   rates: Sequence[float] = RATES, eps: Sequence[float] = EPS) -> dict:
    """The behaviour record of a text task (see the module docstring).

    Keys: those of ``Task.behaviour`` plus ``token_dropout`` and ``token_swap``
    (``[{rate, accuracy, baseline_accuracy}]``), ``fgsm_embedding``
    (``[{eps, accuracy, baseline_accuracy}]``) and, for classifiers, ``per_class``,
    ``max_class_drop_pp`` and ``worst_class``. "accuracy" is the task's score.
    """
    from ..evaluate.behaviour import per_class_drops, worst_index

    rec = Task.behaviour(task, model, baseline, seed=seed)
    inputs, targets = task.part("test")
    for mode, key in (("drop", "token_dropout"), ("swap", "token_swap")):
        rows = []
        for r in rates:
            pert = _perturb(inputs, r, mode, seed)
            rows.append({"rate": r, "accuracy": _score_on(task, model, pert, targets),
                         "baseline_accuracy": _score_on(task, baseline, pert, targets)})
        rec[key] = rows
    bs = min(256, task.eval_batch_size)  # a language model's logits are large
    rec["fgsm_embedding"] = [
        {"eps": e, "accuracy": fgsm_embedding_score(task, model, inputs, targets, e, bs),
         "baseline_accuracy": fgsm_embedding_score(task, baseline, inputs, targets, e, bs)}
        for e in eps]
    if task.classes:
        out, y = task.predict(model, "test")
        ref, _ = task.predict(baseline, "test")
        pc, pc_base = (per_class_accuracy(out, y, task.num_classes),
                       per_class_accuracy(ref, y, task.num_classes))
        drops = per_class_drops(pc, pc_base)
        worst = worst_index(drops)
        rec["per_class"] = {"names": task.class_names, "accuracy": pc, "baseline": pc_base,
                            "drop_pp": drops}
        rec["max_class_drop_pp"] = float("nan") if worst is None else drops[worst]
        rec["worst_class"] = None if worst is None else task.class_names[worst]
    return rec
