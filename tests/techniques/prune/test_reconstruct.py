"""Least-squares refit of the projections that lose inputs when units are removed."""

import copy

import pytest
import torch
from torch import nn

from netpress.techniques.prune.reconstruct import full_weight, input_grams, refit_inputs


def _mlp_and_data():
    g = torch.Generator().manual_seed(0)
    mlp = nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 8)).eval()
    x = torch.randn(512, 16, generator=g)
    return mlp, x


@torch.no_grad()
def _cut(mlp, kept):
    cut = copy.deepcopy(mlp)
    cut[0] = nn.Linear(16, len(kept))
    cut[0].weight.copy_(mlp[0].weight[kept])
    cut[0].bias.copy_(mlp[0].bias[kept])
    cut[2] = nn.Linear(len(kept), 8)
    cut[2].weight.copy_(mlp[2].weight[:, kept])
    cut[2].bias.copy_(mlp[2].bias)
    return cut


@torch.no_grad()
def test_refit_recovers_most_of_the_removed_units_output():
    mlp, x = _mlp_and_data()
    ref = mlp(x)
    kept = torch.arange(0, 64, 2)  # half of the hidden units
    plain = _cut(mlp, kept)
    refit = _cut(mlp, kept)
    gram = input_grams(mlp, {0: mlp[2]}, [x[:256], x[256:]])[0]
    assert gram.shape == (65, 65) and float(gram[64, 64]) == 512  # the constant column counts rows
    refit_inputs(refit[2], *full_weight(mlp[2]), gram, kept)
    err_plain = float((plain(x) - ref).pow(2).mean())
    err_refit = float((refit(x) - ref).pow(2).mean())
    assert err_refit < 0.5 * err_plain
    # with every unit kept the refit is the identity (up to the damping)
    same = copy.deepcopy(mlp)
    refit_inputs(same[2], *full_weight(mlp[2]), gram, torch.arange(64), damp=0.0)
    assert torch.allclose(same(x), ref, atol=1e-4)


@torch.no_grad()
def test_padding_tokens_are_left_out_of_the_gram():
    lin = nn.Linear(4, 2)

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lin

        def forward(self, input_ids, attention_mask):
            return self.lin(input_ids.float().unsqueeze(-1).expand(-1, -1, 4))

    ids = torch.tensor([[1, 2, 0], [3, 0, 0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    gram = input_grams(Wrap(), {0: lin}, [({"input_ids": ids, "attention_mask": mask}, None)])[0]
    assert float(gram[4, 4]) == 3  # three real tokens
    assert float(gram[0, 0]) == 1 + 4 + 9


@pytest.mark.parametrize("heads,ffn", [(0.0, 0.5), (0.25, 0.5)])
def test_transformer_prune_reconstruct_is_closer_to_the_original(tiny_text_models, heads, ffn):
    from netpress.config import apply
    from netpress.context import Context
    from netpress.tasks.build import TextOptions, load_task
    from netpress.techniques.prune.heads import ffn_blocks
    from netpress.techniques.prune.transformer import TransformerPrune
    from netpress.zoo import build_model

    spec = tiny_text_models["enc"]
    model = build_model(spec)
    task = load_task(spec, tiny_text_models["text"], model, text=TextOptions(max_length=12))
    ctx = Context(task, seed=0)
    cos = {}
    for rec in (False, True):
        cfg = TransformerPrune(heads=heads, ffn=ffn, reconstruct=rec, scope="layer", batches=2)
        m = apply(copy.deepcopy(model), cfg, ctx)
        assert all(b.width == 32 for b in ffn_blocks(m))  # half of 64 neurons, per layer here
        cos[rec] = task.score(m, "train")  # the tokens the refit saw: it must fit them better
    assert cos[True] > cos[False]
