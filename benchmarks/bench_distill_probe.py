"""A short probe of distillation settings for the lenet5-caffe width-0.4 student: seed 0,
4 epochs, the same initial weights as ``bench_distill.py``; validation accuracy (the
figure a setting would be chosen on) and test accuracy for each setting.

Reproduce: ``.venv/bin/python benchmarks/bench_distill_probe.py``
"""

from __future__ import annotations

import copy

from common import THREADS, baseline, fashion, save_result

from netpress import api
from netpress.context import Context
from netpress.techniques.distill import Distill, distill_into, scale_width

SETTINGS = (
    {"temperature": 2.0, "alpha": 0.5},
    {"temperature": 4.0, "alpha": 0.5, "hints": ("conv2=conv2",)},
)


def main() -> None:
    split = fashion()
    teacher, _ = baseline("lenet5-caffe", split)
    ctx = Context(split, seed=0, threads=THREADS)
    init = scale_width(teacher, 0.4, split.train[0][:2], seed=0)
    rows = []
    for s in SETTINGS:
        cfg = Distill(width=0.4, epochs=4, lr=1e-3, **s)
        student = copy.deepcopy(init)
        distill_into(student, teacher, cfg, ctx)
        rows.append({"setting": {k: list(v) if isinstance(v, tuple) else v for k, v in s.items()},
                     "val_accuracy": ctx.evaluate(student),
                     "test_accuracy": api.evaluate(student, split).accuracy})
        print(rows[-1], flush=True)
    save_result("distill_probe", {"seed": 0, "epochs": 4, "rows": rows})


if __name__ == "__main__":
    main()
