"""Tiny served models, built once per session in a few seconds.

lenet-300-100 trained 1 epoch on digits is the fp32 baseline; a 60 %-pruned copy is the
compressed "champion", a static-int8 copy of it the fast rung, and a 90 %-pruned copy a
second version to hot-swap to. ``reference.json`` summarises the calibration split, run
through the champion, as ``netpress compress`` writes it.
"""

import copy
import json

import pytest

from netpress import api
from netpress.config import apply
from netpress.context import Context
from netpress.encode.artifact import artifact_bytes
from netpress.runtime import Model
from netpress.serve.drift import build_reference
from netpress.techniques.prune.magnitude import MagnitudePrune
from netpress.techniques.quantize.ptq import StaticInt8

SPEC = "lenet-300-100"


@pytest.fixture(scope="session")
def served(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("served")
    base, _ = api.train(SPEC, digits, epochs=1, seed=0, threads=1)
    base.eval()
    ctx = Context(digits, seed=0, threads=1)
    example = digits.test[0][:1]
    pruned = apply(copy.deepcopy(base), MagnitudePrune(0.6), ctx)
    int8 = apply(copy.deepcopy(pruned), StaticInt8(), ctx)
    pruned90 = apply(copy.deepcopy(base), MagnitudePrune(0.9), ctx)
    files = {}
    for name, m in (("baseline", base), ("model", pruned), ("int8", int8), ("v2", pruned90)):
        files[name] = root / f"{name}.netpress"
        files[name].write_bytes(artifact_bytes(m, SPEC, example=example))
    calib = digits.calib[0].numpy()
    ref = build_reference(calib, Model(files["model"].read_bytes()).run(calib))
    (root / "reference.json").write_text(json.dumps(ref))
    x, y = digits.test[0].numpy(), digits.test[1].numpy()
    return {"root": root, **files, "reference": root / "reference.json", "x": x, "y": y}
