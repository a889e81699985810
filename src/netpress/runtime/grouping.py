"""Run a batch of texts in groups of similar length instead of padded to its longest.

A batch of token sequences costs what its longest text costs times its size: on
``text:fortunes`` (34 tokens on average, up to 128) a batch of 32 consecutive texts is
mostly padding. An encoder whose output is one row per text (a sentence embedding, a
class's logits) and that masks padding gives each row the same result whatever the
batch's padding, so the batch can be run as a few sub-batches, each cut to its own
longest text. ``length_groups`` chooses them: the texts sorted by length, cut where the
cost — ``overhead`` token-equivalents per call plus ``size × longest`` per group — is
least (an exact dynamic programme over the sorted lengths). ``run_grouped`` runs them and
puts the rows back in the batch's order.

Rows are not bit-identical to the padded run where the graph quantizes activations with a
scale per tensor (dynamic int8: the scale then covers another set of texts); a form's
fidelity is measured the way it runs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import ModelError

OVERHEAD_TOKENS = 16  # cost of one call, in tokens of one text (measured: ~0.3-0.5 ms)


def length_groups(lengths: np.ndarray, overhead: int = OVERHEAD_TOKENS) -> list[np.ndarray]:
    """Index groups of ``lengths`` (texts' token counts) that cost least to run apart.

    Example:
        >>> [g.tolist() for g in length_groups(np.array([3, 100, 4, 98]), overhead=16)]
        [[0, 2], [3, 1]]
    """
    lengths = np.asarray(lengths)
    order = np.argsort(lengths, kind="stable")
    sl = lengths[order].astype(np.float64)
    n = len(sl)
    best = np.zeros(n + 1)
    cut = np.zeros(n + 1, dtype=np.int64)
    idx = np.arange(n)
    for j in range(1, n + 1):  # best[j]: cheapest split of the j shortest texts
        cost = best[:j] + overhead + (j - idx[:j]) * sl[j - 1]
        i = int(np.argmin(cost))
        best[j], cut[j] = cost[i], i
    groups, j = [], n
    while j > 0:
        i = int(cut[j])
        groups.append(order[i:j])
        j = i
    return groups[::-1]


def run_grouped(run: Callable[[dict[str, np.ndarray]], np.ndarray],
                feeds: dict[str, np.ndarray], mask: str = "attention_mask",
                overhead: int = OVERHEAD_TOKENS, cut: list[str] | None = None) -> np.ndarray:
    """``run`` over ``feeds`` (arrays by input name, ``mask`` among them) in length groups;
    the rows of the output in the batch's order. The inputs named in ``cut`` (default:
    every input of the mask's shape) are cut to each group's rows and length; every other
    input is passed whole. ``run`` must give one row per text: anything else is a
    ModelError. All-padding rows run at length 1.

    Example:
        >>> f = {"ids": np.array([[1, 2, 0], [3, 0, 0]]), "attention_mask": np.array([[1, 1, 0], [1, 0, 0]])}
        >>> run_grouped(lambda d: d["ids"].sum(1, keepdims=True), f).tolist()
        [[3], [3]]
    """
    m = feeds[mask]
    if m.ndim != 2 or m.shape[0] <= 1:
        return run(feeds)
    cut = [k for k, v in feeds.items() if v.shape == m.shape] if cut is None else cut
    bad = [k for k in cut if feeds[k].shape != m.shape]
    if bad:
        raise ModelError(f"inputs {bad} do not have the attention mask's shape {m.shape}; "
                         "run the batch without length groups (group_lengths=False)")
    lengths = m.shape[1] - np.argmax(m[:, ::-1] != 0, axis=1)  # last kept position + 1
    lengths[~(m != 0).any(axis=1)] = 1
    groups = length_groups(lengths, overhead)
    if len(groups) == 1 and lengths.max() == m.shape[1]:
        return run(feeds)
    out = None
    for g in groups:
        width = int(lengths[g].max())
        part = {k: v[g, :width] if k in cut else v for k, v in feeds.items()}
        y = np.asarray(run(part))
        if y.ndim < 1 or y.shape[0] != len(g) or (out is not None and y.shape[1:] != out.shape[1:]):
            raise ModelError(f"the graph gives an output of shape {y.shape} for {len(g)} texts, "
                             "not one row per text; run it without length groups "
                             "(group_lengths=False)")
        if out is None:
            out = np.empty((m.shape[0], *y.shape[1:]), dtype=y.dtype)
        out[g] = y
    return out
