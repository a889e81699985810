"""Run by test_ddp.py, alone or under torchrun: a recipe on digits through ``run_recipe``;
rank 0 writes the result (accuracy, artifact digest, bytes per step) and the weights."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from netpress.context import Context
from netpress.data import load_split
from netpress.distributed import ddp
from netpress.errors import NetpressError
from netpress.pipeline.recipe import load_recipe
from netpress.pipeline.runner import run_recipe
from netpress.zoo import build_model


def main() -> None:
    out, weights, recipe, run_dir = (Path(a) for a in sys.argv[1:5])
    resume = "--resume" in sys.argv
    ddp.init_from_env()
    torch.set_num_threads(1)
    from netpress.io import load_weights

    model = build_model("lenet-300-100")
    model.load_state_dict(load_weights(weights))
    ctx = Context(load_split("digits"), threads=1)
    try:
        run = run_recipe(model, load_recipe(recipe), ctx, "lenet-300-100", run_dir=run_dir,
                         resume=resume)
    except NetpressError as e:
        if ddp.is_main():
            (out / "error.txt").write_text(str(e))
        raise SystemExit(2) from None
    if ddp.is_main():
        world = ddp.world_size()
        save_file({k: v.contiguous() for k, v in run.model.state_dict().items()},
                  str(out / f"weights-{world}.safetensors"))
        (out / f"result-{world}.json").write_text(json.dumps({
            "val": run.stages[-1].val_accuracy, "test": run.test_accuracy,
            "sha256": hashlib.sha256(run.artifact).hexdigest(), "resumed_from": run.resumed_from,
            "comm": [c for s in run.stages for c in (s.comm or [])]}))
    ddp.shutdown()


if __name__ == "__main__":
    main()
