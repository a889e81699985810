"""Open run reports in headless Chromium: every plot decoded, and a screenshot kept.

For each run folder given (default: the newest demo run and the search benchmark's run),
writes the report with ``netpress report``, loads report.html in Debian's chromium, reads
``data-images-loaded`` / ``data-images-total`` from the rendered DOM (every embedded PNG
must decode), takes a 1280-px-wide screenshot, checks it is not blank, and keeps a
half-size copy in benchmarks/results/report-<name>.png. Writes benchmarks/results/report.json.

Usage: python benchmarks/bench_report.py [RUN_DIR ...]
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from common import RESULTS, ROOT, bench_lock, save_result  # noqa: E402

from netpress.report.browser import rendered_dom, screenshot  # noqa: E402
from netpress.report.write import write_report  # noqa: E402


def default_runs() -> list[Path]:
    runs = ROOT / ".netpress" / "runs"
    demo = sorted(p for p in runs.glob("*-deep-compression") if (p / "run.json").is_file())
    out = demo[-1:]
    if (runs / "bench-search" / "trials.json").is_file():
        out.append(runs / "bench-search")
    return out


def check(run_dir: Path, name: str) -> dict:
    paths = write_report(run_dir)
    dom = rendered_dom(paths["html"])
    loaded = int(re.search(r'data-images-loaded="(\d+)"', dom).group(1))
    total = int(re.search(r'data-images-total="(\d+)"', dom).group(1))
    with tempfile.TemporaryDirectory() as d:
        shot = screenshot(paths["html"], Path(d) / "shot.png", width=1280, height=3600)
        img = mpimg.imread(shot)
    grey = img[..., :3].mean(axis=2)
    keep = RESULTS / f"report-{name}.png"
    half = img[::2, ::2, :3]
    plt.imsave(keep, half)
    return {"run_dir": str(run_dir), "html_bytes": paths["html"].stat().st_size,
            "images_loaded": loaded, "images_total": total, "all_images_loaded": loaded == total,
            "screenshot_shape": list(img.shape), "pixel_std": float(grey.std()),
            "kept": str(keep.relative_to(ROOT)), "kept_bytes": keep.stat().st_size}


def main(args: list[str]) -> None:
    runs = [Path(a) for a in args] or default_runs()
    rows = []
    with bench_lock():
        for run in runs:
            name = "search" if "search" in run.name else "demo"
            rows.append(check(run, name))
            print(rows[-1], flush=True)
    save_result("report", {"reports": rows})


if __name__ == "__main__":
    main(sys.argv[1:])
