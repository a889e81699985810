"""Text tasks: classification, sentence embedding and causal language modelling.

Inputs are dicts of token tensors (``input_ids``, ``attention_mask``, ``token_type_ids``)
made by the model's own tokenizer; models are netpress's Hugging Face wrappers, whose
forward returns one tensor (``zoo.hf``).

- ``TextClassification``: labels from the data; cross-entropy, top-1 accuracy.
- ``SentenceEmbedding``: no labels. The targets are the *reference* (uncompressed)
  model's embeddings, computed once when the task is made; the loss is ``1 − cos``, the
  score the mean cosine to the reference, and the comparison adds recall@10: of each
  query's 10 nearest texts by the reference's embeddings, the share the model also ranks
  in its top 10 (queries are the first 500 texts of the part, the corpus the rest).
- ``CausalLanguageModel``: next-token labels (padding ignored); cross-entropy; the score is
  next-token top-1 accuracy (a fraction, so drops read in pp) and perplexity is reported.
  ``predict`` keeps two numbers per position (the target's log-probability, NaN where
  ignored, and the argmax token), never the (N, T, vocab) logits; the comparison with a reference is the
  next-token agreement and the mean absolute change of the target's log-probability.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..batches import Inputs, take
from ..data.loaders import ArrayLoader, token_lengths
from ..data.splits import Split
from ..data.text import TextPart, TextSplit, tokenize
from .base import Task
from .classification import Classification

IGNORE = -100


def recall_at_k(emb: torch.Tensor, ref: torch.Tensor, k: int = 10, queries: int = 500) -> float:
    """Mean share of each query's ``k`` nearest neighbours under ``ref`` that ``emb`` also
    puts in its top ``k`` (cosine; the query itself excluded).

    Example:
        >>> e = torch.randn(50, 8)
        >>> recall_at_k(e, e)
        1.0
    """
    n = len(emb)
    k = min(k, n - 1)
    if k < 1:
        return float("nan")
    q = min(queries, n)
    a, b = F.normalize(emb.float(), dim=1), F.normalize(ref.float(), dim=1)
    sim_a, sim_b = a[:q] @ a.T, b[:q] @ b.T
    eye = torch.arange(q)
    sim_a[eye, eye] = sim_b[eye, eye] = -float("inf")
    top_a, top_b = sim_a.topk(k, dim=1).indices, sim_b.topk(k, dim=1).indices
    hits = (top_a.unsqueeze(2) == top_b.unsqueeze(1)).any(2).sum()
    return float(hits) / (q * k)


def mean_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine similarity of matching rows."""
    return float(F.cosine_similarity(a.float(), b.float(), dim=-1).mean())


def _levels(kw: dict) -> dict:
    """The perturbation levels a caller chose (``rates``, ``eps``); other keys are the image
    checks' and do not apply to text."""
    return {k: tuple(v) for k, v in kw.items() if k in ("rates", "eps") and v is not None}


class TextClassification(Classification):
    """Sequence classification: token dicts in, logits out, labels from the data."""

    kind = "text-classification"

    def behaviour(self, model, baseline, seed: int = 0, **kw) -> dict:
        """Per-class gaps and robustness to token dropout and swaps (see ``behaviour``)."""
        from .text_behaviour import text_behaviour

        return text_behaviour(self, model, baseline, seed=seed, **_levels(kw))


class SentenceEmbedding(Task):
    """Fidelity of a sentence encoder to its uncompressed reference.

    Example:
        >>> task = SentenceEmbedding(split_of_token_dicts_and_reference_embeddings)  # doctest: +SKIP
    """

    kind = "embedding"
    score_name = "cosine"

    def loss_outputs(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (1.0 - F.cosine_similarity(outputs, targets, dim=-1)).mean()

    def distill_loss(self, student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor,
                     temperature: float = 1.0, alpha: float = 1.0) -> torch.Tensor:
        soft = (1.0 - F.cosine_similarity(student, teacher.detach(), dim=-1)).mean()
        return alpha * soft + (1.0 - alpha) * self.loss_outputs(student, targets)

    def divergence(self, outputs: torch.Tensor, reference: torch.Tensor) -> float:
        return 1.0 - mean_cosine(outputs, reference)

    def score_outputs(self, outputs: torch.Tensor, targets: torch.Tensor) -> float:
        return mean_cosine(outputs, targets)

    def metrics_outputs(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict:
        return {"cosine": mean_cosine(outputs, targets),
                "recall_at_10": recall_at_k(outputs, targets)}

    def compare_outputs(self, outputs: torch.Tensor, reference: torch.Tensor) -> dict:
        return {"cosine": mean_cosine(outputs, reference),
                "recall_at_10": recall_at_k(outputs, reference)}

    def behaviour(self, model, baseline, seed: int = 0, **kw) -> dict:
        from .text_behaviour import text_behaviour

        return text_behaviour(self, model, baseline, seed=seed, **_levels(kw))


class CausalLanguageModel(Task):
    """Next-token prediction on held-out text."""

    kind = "causal-lm"
    score_name = "token_accuracy"
    token_targets = True

    def __init__(self, split: Split, eval_batch_size: int = 32) -> None:
        # a batch's logits are (batch, tokens, vocabulary) floats: 32 × 128 × 30,522 is 0.5 GB
        super().__init__(split, eval_batch_size)

    def loss_outputs(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)

    def distill_loss(self, student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor,
                     temperature: float = 1.0, alpha: float = 1.0) -> torch.Tensor:
        mask = targets != IGNORE
        t = temperature
        s, te = student[mask] / t, teacher.detach()[mask] / t
        soft = F.kl_div(F.log_softmax(s, -1), F.log_softmax(te, -1), log_target=True,
                        reduction="batchmean") * t * t
        return alpha * soft + (1.0 - alpha) * self.loss_outputs(student, targets)

    @staticmethod
    def _compact(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), -1)
        safe = targets.clamp_min(0)
        tgt = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
        tgt = torch.where(targets == IGNORE, torch.full_like(tgt, float("nan")), tgt)
        return torch.stack([tgt, logits.argmax(-1).float()], -1)

    @torch.inference_mode()
    def predict(self, model: nn.Module, part: str = "val", loader=None):
        was_training = model.training
        model.eval()
        loader = loader if loader is not None else self.loader(part)
        outs, ys = [], []
        for x, y in loader:
            outs.append(self._compact(self.forward(model, x), y))
            ys.append(y)
        model.train(was_training)
        return loader.gather(outs), loader.gather(ys, IGNORE)

    @torch.inference_mode()
    def runner_outputs(self, run, part: str = "test"):
        loader = self.loader(part)
        outs, ys = [], []
        for x, y in loader:
            outs.append(self._compact(run(x), y))
            ys.append(y)
        return loader.gather(outs), loader.gather(ys, IGNORE)

    def score_outputs(self, outputs: torch.Tensor, targets: torch.Tensor) -> float:
        mask = targets != IGNORE
        return float((outputs[..., 1][mask] == targets[mask].float()).float().mean())

    def metrics_outputs(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict:
        mask = targets != IGNORE
        nll = float(-outputs[..., 0][mask].mean())
        return {"token_accuracy": self.score_outputs(outputs, targets),
                "perplexity": math.exp(nll), "nll": nll, "tokens": int(mask.sum())}

    def output_error(self, outputs: torch.Tensor, reference: torch.Tensor) -> float:
        """On the target log-probs only: the other column is an argmax token id (a near-tie
        may flip it; ``compare_outputs`` reports the agreement)."""
        return super().output_error(outputs[..., 0], reference[..., 0])

    def compare_outputs(self, outputs: torch.Tensor, reference: torch.Tensor) -> dict:
        valid = ~reference[..., 0].isnan()  # ignored positions carry NaN
        agree = float((outputs[..., 1][valid] == reference[..., 1][valid]).float().mean())
        delta = float((outputs[..., 0][valid] - reference[..., 0][valid]).abs().mean())
        return {"next_token_agreement": agree, "mean_abs_logprob_change": delta}

    def divergence(self, outputs: torch.Tensor, reference: torch.Tensor) -> float:
        return self.compare_outputs(outputs, reference)["mean_abs_logprob_change"]

    def behaviour(self, model, baseline, seed: int = 0, **kw) -> dict:
        from .text_behaviour import text_behaviour

        return text_behaviour(self, model, baseline, seed=seed, **_levels(kw))


# -- building a text task -----------------------------------------------------------------

TEXT_TASKS = {"text-classification": TextClassification, "embedding": SentenceEmbedding,
              "causal-lm": CausalLanguageModel}


def lm_targets(tokens: dict[str, torch.Tensor]) -> torch.Tensor:
    """Next-token labels: ``input_ids`` shifted left, padding and the last position ignored.

    Example:
        >>> lm_targets({"input_ids": torch.tensor([[5, 6, 7, 0]]),
        ...             "attention_mask": torch.tensor([[1, 1, 1, 0]])}).tolist()
        [[6, 7, -100, -100]]
    """
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    nxt = torch.full_like(ids, IGNORE)
    nxt[:, :-1] = torch.where(mask[:, 1:].bool(), ids[:, 1:], torch.full_like(ids[:, 1:], IGNORE))
    return nxt


@torch.inference_mode()
def reference_outputs(reference: nn.Module, inputs: Inputs, n: int,
                      batch_size: int = 256) -> torch.Tensor:
    """The reference model's outputs over ``inputs`` (for embedding targets)."""
    from ..batches import call
    reference.eval()
    if token_lengths(inputs) is None:
        return torch.cat([call(reference, take(inputs, slice(i, i + batch_size))).float()
                          for i in range(0, n, batch_size)])
    loader = ArrayLoader.of_tokens(inputs, torch.zeros(n), min(batch_size, 128))
    return loader.gather([call(reference, x).float() for x, _ in loader])


def make_text_task(kind: str, data: TextSplit, tokenizer, max_length: int,
                   model_max_length: int | None = None, reference: nn.Module | None = None,
                   input_names: tuple[str, ...] | None = None) -> Task:
    """Tokenise every part of ``data`` with the model's tokenizer and build the task.

    ``reference`` (the uncompressed model) is required for ``embedding``: its embeddings
    are the targets. ``input_names`` keeps only the inputs the model takes.

    Example:
        >>> task = make_text_task("embedding", split, tok, 128, 512, reference=model)  # doctest: +SKIP
    """
    from ..errors import DataError

    if kind not in TEXT_TASKS:
        raise DataError(f"unknown task {kind!r}; use one of {', '.join(TEXT_TASKS)}")
    if kind == "text-classification" and not data.num_classes:
        raise DataError(f"{data.name} has no labels; text classification needs a label column "
                        "(--label-column) or use --task embedding")
    parts = {}
    for name in ("train", "val", "calib", "test"):
        part: TextPart = getattr(data, name)
        tokens = tokenize(tokenizer, part.texts, max_length, model_max_length)
        if input_names is not None:
            tokens = {k: v for k, v in tokens.items() if k in input_names}
        if kind == "text-classification":
            targets = torch.tensor(part.labels, dtype=torch.int64)
        elif kind == "causal-lm":
            targets = lm_targets(tokens)
        else:
            if reference is None:
                raise DataError("the embedding task needs the reference (uncompressed) model")
            targets = reference_outputs(reference, tokens, len(part))
        parts[name] = (tokens, targets)
    split = Split(data.name, parts["train"], parts["val"], parts["test"], parts["calib"],
                  data.num_classes, tuple(data.class_names))
    return TEXT_TASKS[kind](split)
