"""Throughput over held-out examples: batches in stored order cut to their longest text,
every form over the same examples, medians of passes, ratios against the first form."""

import time

import torch

from netpress.data.loaders import trim_padding
from netpress.profile.throughput import held_out_batches, throughput


def _tokens() -> dict:
    lengths = torch.tensor([3, 7, 2, 5, 1])
    mask = (torch.arange(8)[None, :] < lengths[:, None]).long()
    return {"input_ids": torch.arange(40).reshape(5, 8) * mask, "attention_mask": mask,
            "token_type_ids": torch.zeros(5, 8, dtype=torch.long)}


def test_batches_keep_order_and_cut_each_to_its_longest_text():
    x = _tokens()
    batches = held_out_batches(x, 2)
    assert [b["input_ids"].shape for b in batches] == [(2, 7), (2, 5), (1, 1)]
    assert torch.equal(torch.cat([b["input_ids"][:, :1] for b in batches]), x["input_ids"][:, :1])
    assert [b["attention_mask"].sum().item() for b in batches] == [10, 7, 1]  # no text cut
    assert [len(b) for b in held_out_batches(torch.zeros(7, 3), 3, limit=5)] == [3, 2]


def test_trim_padding_leaves_images_alone():
    img = torch.zeros(2, 1, 4, 4)
    assert trim_padding(img) is img


def test_a_form_three_times_as_slow_reads_a_third_of_the_rate():
    def fast(x):
        time.sleep(0.003)

    def slow(x):
        time.sleep(0.009)

    r = throughput({"fast": fast, "slow": slow}, _tokens(), batch_sizes=(1, 2), passes=3, warmup=1)
    assert r["fast"]["b1"]["vs_baseline"] == 1.0
    assert 0.2 < r["slow"]["b1"]["vs_baseline"] < 0.5
    assert len(r["slow"]["b2"]["passes"]) == 3
    # batch 2 makes 3 calls for 5 texts, batch 1 makes 5: more texts per second
    assert r["fast"]["b2"]["per_s"] > r["fast"]["b1"]["per_s"]


def test_example_inputs_of_a_text_task_are_cut_to_their_text(tiny_text_models):
    from netpress.tasks.build import TextOptions, load_task
    from netpress.zoo import build_model

    spec = tiny_text_models["enc"]
    task = load_task(spec, tiny_text_models["text"], build_model(spec), text=TextOptions(max_length=12))
    ex = task.example_inputs(1, "test")
    assert ex["attention_mask"].all()  # one text, no padding left
    assert ex["input_ids"].shape[1] == int(task.part("test")[0]["attention_mask"][0].sum())
