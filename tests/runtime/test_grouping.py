"""Length groups: the split is the cheapest one, rows come back in the batch's order, and
a text encoder's .netpress file gives the same embeddings grouped as padded."""

import itertools

import numpy as np
import onnx
import pytest
import torch

from netpress.errors import ModelError
from netpress.runtime.grouping import length_groups, run_grouped
from netpress.runtime.model import _groupable


def _cost(parts, overhead):
    """The cost of running each array of lengths in ``parts`` as one call."""
    return sum(overhead + len(p) * p.max() for p in parts)


@pytest.mark.parametrize("seed", range(5))
def test_groups_are_the_cheapest_contiguous_split(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 128, size=9)
    groups = length_groups(lengths, overhead=16)
    assert sorted(np.concatenate(groups).tolist()) == list(range(9))
    s = np.sort(lengths)
    best = min(_cost([s[i:j] for i, j in zip((0, *cuts), (*cuts, 9), strict=True)], 16)
               for k in range(9) for cuts in itertools.combinations(range(1, 9), k))
    assert _cost([lengths[g] for g in groups], 16) == pytest.approx(best)


def test_one_group_when_calls_are_dear_and_many_when_cheap():
    lengths = np.array([5, 6, 7, 120])
    assert len(length_groups(lengths, overhead=10_000)) == 1
    assert len(length_groups(lengths, overhead=0)) == 4


def test_rows_come_back_in_order_and_are_cut_to_their_length():
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0] * 6])
    ids = np.arange(24).reshape(4, 6) * mask
    widths = []

    def run(f):
        widths.append(f["input_ids"].shape[1])
        assert f["input_ids"].shape == f["attention_mask"].shape
        return f["input_ids"].sum(1, keepdims=True)

    out = run_grouped(run, {"input_ids": ids, "attention_mask": mask}, overhead=0)
    assert out[:, 0].tolist() == ids.sum(1).tolist()
    assert max(widths) == 6 and min(widths) == 1


def test_only_graphs_with_one_row_per_text_are_grouped():
    mask = {"attention_mask": {"shape": ["batch", "sequence"]}}
    assert _groupable(mask, {"shape": ["batch", 384]})
    assert _groupable(mask, {"shape": ["batch", "Divoutput_dim_1"]})
    assert not _groupable(mask, {"shape": ["batch", "sequence"]})  # one value per token
    assert not _groupable(mask, {"shape": [1, 384]})
    assert not _groupable({"attention_mask": {"shape": [4, 8]}}, {"shape": [4, 384]})
    assert not _groupable({}, {"shape": ["batch", 384]})


def test_outputs_that_are_not_per_text_and_odd_inputs_are_refused():
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    feeds = {"input_ids": mask.copy(), "attention_mask": mask}
    with pytest.raises(ModelError, match="one row per text"):
        run_grouped(lambda f: np.zeros((len(f["input_ids"]) + 1, 3)), feeds, overhead=0)
    seen = []
    out = run_grouped(lambda f: seen.append(f["pos"].shape) or f["input_ids"][:, :1],
                      {**feeds, "pos": np.arange(4)[None]}, overhead=0, cut=["input_ids",
                                                                            "attention_mask"])
    assert out.shape == (3, 1) and set(seen) == {(1, 4)}  # passed whole, not cut
    with pytest.raises(ModelError, match="attention mask's shape"):
        run_grouped(lambda f: f["input_ids"][:, :1], {**feeds, "pos": np.arange(4)[None]},
                    cut=["pos"])


def test_encoder_file_gives_the_same_rows_grouped(tiny_text_models, tmp_path):
    from netpress.encode.artifact import graph_artifact_bytes
    from netpress.export.onnx import export_onnx
    from netpress.runtime.model import Model
    from netpress.tasks.build import TextOptions, load_task
    from netpress.zoo import build_model

    spec = tiny_text_models["enc"]
    model = build_model(spec).eval()
    task = load_task(spec, tiny_text_models["text"], model, text=TextOptions(max_length=12))
    fp = export_onnx(model, task.example_inputs(1, "train"), tmp_path / "m.onnx")
    data = graph_artifact_bytes(onnx.load(str(fp)), spec)
    grouped, padded = Model(data), Model(data, group_lengths=False)
    assert grouped.group_lengths and not padded.group_lengths
    x = {k: v.numpy() for k, v in task.part("test")[0].items()}
    a, b = grouped.run(x), padded.run(x)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max())
    with torch.no_grad():
        ref = model(**task.part("test")[0]).numpy()
    np.testing.assert_allclose(a, ref, rtol=0, atol=1e-4 * np.abs(ref).max())


def test_int8_graph_file_is_smaller_and_decodes_to_the_same_graph(tiny_text_models, tmp_path):
    from netpress.encode.artifact import graph_artifact_bytes
    from netpress.export.int8 import ort_dynamic
    from netpress.export.onnx import export_onnx
    from netpress.export.runtimes import ort_runner
    from netpress.runtime.model import Model
    from netpress.tasks.build import TextOptions, load_task
    from netpress.zoo import build_model

    spec = tiny_text_models["enc"]
    model = build_model(spec).eval()
    task = load_task(spec, tiny_text_models["text"], model, text=TextOptions(max_length=12))
    fp = export_onnx(model, task.example_inputs(1, "train"), tmp_path / "m.onnx")
    q = ort_dynamic(fp, tmp_path / "q.onnx")
    data = graph_artifact_bytes(onnx.load(str(q)), spec)
    assert len(data) < q.stat().st_size  # the int8 tables entropy-coded
    m = Model(data, group_lengths=False)
    assert m.header["model"] == {"spec": spec, "class": "onnx", "params": m.header["model"]["params"]}
    x = task.part("test")[0]
    want = ort_runner(q)(x).numpy()
    np.testing.assert_array_equal(m.run({k: v.numpy() for k, v in x.items()}), want)
