"""A probe of distillation settings for the lenet5-caffe width-0.4 student: seed 0, the
same initial weights as ``bench_distill.py``, ``PROBE_EPOCHS`` epochs (default 4);
validation accuracy (the figure a setting is chosen on) and test accuracy for each
setting, and the same student trained from scratch for reference. Teacher logits are
cached (``Distill.cache_teacher``), so each setting costs one training run.

Reproduce: ``PROBE_EPOCHS=8 .venv/bin/python benchmarks/bench_distill_probe.py``
→ ``benchmarks/results/distill_probe_e8.json``
"""

from __future__ import annotations

import copy
import os

from common import THREADS, baseline, fashion, save_result

from netpress import api
from netpress.context import Context
from netpress.techniques.distill import Distill, distill_into, scale_width

EPOCHS = int(os.environ.get("PROBE_EPOCHS", 4))
SETTINGS = (
    {"temperature": 2.0, "alpha": 0.5},
    {"temperature": 4.0, "alpha": 0.5},
    {"temperature": 2.0, "alpha": 0.7},
    {"temperature": 1.0, "alpha": 0.5},
)


def main() -> None:
    split = fashion()
    teacher, _ = baseline("lenet5-caffe", split)
    ctx = Context(split, seed=0, threads=THREADS)
    init = scale_width(teacher, 0.4, split.train[0][:2], seed=0)
    scratch = copy.deepcopy(init)
    ctx.finetune(scratch, EPOCHS, lr=1e-3, description="scratch")
    rows = [{"setting": "scratch", "val_accuracy": ctx.evaluate(scratch),
             "test_accuracy": api.evaluate(scratch, split).accuracy}]
    print(rows[-1], flush=True)
    for s in SETTINGS:
        cfg = Distill(width=0.4, epochs=EPOCHS, lr=1e-3, **s)
        student = copy.deepcopy(init)
        distill_into(student, teacher, cfg, ctx)
        rows.append({"setting": {k: list(v) if isinstance(v, tuple) else v for k, v in s.items()},
                     "val_accuracy": ctx.evaluate(student),
                     "test_accuracy": api.evaluate(student, split).accuracy})
        print(rows[-1], flush=True)
    save_result(f"distill_probe_e{EPOCHS}", {"seed": 0, "epochs": EPOCHS, "rows": rows})


if __name__ == "__main__":
    main()
