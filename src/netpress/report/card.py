"""The model card of a run's artifact: generated from the run folder, never hand-written.

``build_card(data)`` gathers intended use, the baseline and the compressed model side by
side (task score, largest class drop, calibration, robustness, agreement, size, measured
latency on the CPU it names), energy per inference, the lineage hashes, the recipe and
the known limitations. ``write_report`` writes it as ``model_card.json`` and
``model_card.md`` and shows it in the HTML report; ``netpress register`` logs both.

Energy is an *estimate*, never a power measurement: the artifact (and the fp32
``baseline.netpress``, when the run folder has one) is run in netpress's runtime (ONNX
Runtime, 1 thread) at batch 1 after warm-up, the process CPU time per inference is
measured with ``time.process_time``, and energy = CPU seconds × ``WATTS_PER_CORE`` (10 W
per busy core, a round figure between laptop and server cores; set
``NETPRESS_WATTS_PER_CORE`` to your CPU's figure). Idle power, memory and the host are
left out.

Example:
    >>> card = build_card(load_run("runs/dc"))  # doctest: +SKIP
    >>> card["energy"]["estimate"], card["energy"]["watts_per_core"]  # doctest: +SKIP
    (True, 10.0)
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np

from ..registry.lineage import data_files, file_entry
from ..version import __version__
from .data import RunData

CARD_VERSION = 1
WATTS_PER_CORE = 10.0
TIME_BUDGET_S = 0.4


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``.

    Example:
        >>> isinstance(cpu_name(), str)
        True
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def example_feed(model) -> tuple[dict, str | None]:
    """One batch-1 input for a runtime ``Model`` (zeros; ones for integer inputs); dynamic
    non-batch dimensions become 128, which the returned note says.

    Example:
        >>> feed, note = example_feed(runtime.load("m.netpress"))  # doctest: +SKIP
    """
    feed, note = {}, None
    for name, v in model.inputs.items():
        shape = []
        for i, d in enumerate(v["shape"]):
            if isinstance(d, int) and d > 0:
                shape.append(d)
            elif i == 0:
                shape.append(1)
            else:
                shape.append(128)
                note = "dynamic input lengths timed at 128"
        dt = np.dtype(v["dtype"])
        feed[name] = (np.ones if dt.kind in "iu" else np.zeros)(shape, dt)
    return feed, note


def cpu_ms_per_inference(path: Path) -> tuple[float, str | None]:
    """Process CPU time per batch-1 inference of an artifact, in ms (1 thread, after 10
    warm-up calls, as many calls as fit in 0.4 s, at least 20).

    Example:
        >>> cpu_ms_per_inference(Path("runs/dc/model.netpress"))  # doctest: +SKIP
        (0.041, None)
    """
    from ..runtime import load

    model = load(path, threads=1)
    feed, note = example_feed(model)
    for _ in range(10):
        model.run(feed)
    calls, t_wall, t_cpu = 0, time.perf_counter(), time.process_time()
    while calls < 20 or time.perf_counter() - t_wall < TIME_BUDGET_S:
        model.run(feed)
        calls += 1
        if calls >= 100_000:
            break
    return (time.process_time() - t_cpu) * 1000 / calls, note


def energy(run_dir: Path) -> dict:
    """The energy estimate of the run's artifact (and its fp32 baseline artifact).

    Example:
        >>> energy(Path("runs/dc"))["compressed_mj"]  # doctest: +SKIP
        0.41
    """
    watts = float(os.environ.get("NETPRESS_WATTS_PER_CORE", WATTS_PER_CORE))
    out: dict = {"estimate": True, "watts_per_core": watts, "threads": 1, "batch": 1,
                 "method": "process CPU time per batch-1 inference in netpress's runtime (ONNX "
                           f"Runtime, 1 thread) × {watts:g} W per busy core; idle power, memory "
                           "and the host are not counted", "cpu": cpu_name()}
    for key, fname in (("compressed", "model.netpress"), ("baseline", "baseline.netpress")):
        path = run_dir / fname
        if not path.is_file():
            out[f"{key}_cpu_ms"] = out[f"{key}_mj"] = None
            continue
        try:
            ms, note = cpu_ms_per_inference(path)
        except Exception as e:  # noqa: BLE001 - a card is still written, saying why
            out[f"{key}_cpu_ms"] = out[f"{key}_mj"] = None
            out[f"{key}_note"] = f"not measured: {str(e).splitlines()[0][:160]}"
            continue
        out[f"{key}_cpu_ms"] = ms
        out[f"{key}_mj"] = ms * watts  # ms × W = mJ
        if note:
            out["note"] = note
    return out


def _row(name: str, base, comp, unit: str = "") -> dict:
    return {"metric": name, "baseline": base, "compressed": comp, "unit": unit}


def comparison(record: dict, beh: dict) -> list[dict]:
    """Rows of the side-by-side table (values as numbers; None where not measured).

    Example:
        >>> comparison({"accuracy": 0.9, "baseline_accuracy": 0.91}, {})[0]["metric"]
        'accuracy'
    """
    score = record.get("score_name") or beh.get("score_name") or "accuracy"
    rows = [_row(score, record.get("baseline_accuracy", beh.get("baseline_accuracy")),
                 record.get("accuracy", beh.get("accuracy")))]
    if "max_class_drop_pp" in beh:
        rows.append(_row(f"largest class drop ({beh.get('worst_class')})", 0.0,
                         beh["max_class_drop_pp"], "pp"))
    if "ece" in beh:
        rows.append(_row("calibration error (ECE)", beh.get("baseline_ece"), beh["ece"]))
    for key, items in beh.items():
        if not isinstance(items, list):
            continue
        for it in items:
            if isinstance(it, dict) and "accuracy" in it and "baseline_accuracy" in it:
                level = next((f"{k} {it[k]:g}" for k in ("sigma", "eps", "rate")
                              if isinstance(it.get(k), int | float)), "")
                rows.append(_row(f"{key} {level}".strip(), it["baseline_accuracy"], it["accuracy"]))
    if "agreement" in beh:
        rows.append(_row("top-1 agreement with baseline", 1.0, beh["agreement"]))
    rows.append(_row("size on disk", record.get("baseline_size_bytes"), record.get("size_bytes"),
                     "bytes"))
    lat, blat = record.get("latency_ms") or {}, record.get("baseline_latency_ms") or {}
    for key, label in (("batch1_p50", "latency batch 1 p50"), ("batch1_p95", "latency batch 1 p95"),
                       ("batchN_p50", f"latency batch {lat.get('batch_n', 'N')} p50")):
        if key in lat:
            rows.append(_row(label, blat.get(key), lat.get(key), "ms"))
    return rows


def limitations(data: RunData, record: dict, beh: dict, en: dict) -> list[str]:
    """Known limitations, each derived from a measured number of the run.

    Example:
        >>> limitations(RunData(Path("r"), {"data": "digits"}), {}, {}, {})[0]
        'Evaluated only on the digits test split; other data may behave differently.'
    """
    run = data.run
    out = [f"Evaluated only on the {run.get('data', '?')} test split; other data may behave "
           "differently."]
    if record.get("latency_ms"):
        out.append(f"Latency was measured on {en.get('cpu') or cpu_name()} with "
                   f"{record.get('threads', '?')} threads; other CPUs and thread counts differ.")
        b1, bb1 = record["latency_ms"].get("batch1_p50"), \
            (record.get("baseline_latency_ms") or {}).get("batch1_p50")
        if isinstance(b1, int | float) and isinstance(bb1, int | float) and b1 > bb1:
            out.append(f"The compressed model is slower than the baseline at batch 1 "
                       f"({b1:.3f} ms vs {bb1:.3f} ms p50): it is smaller, not faster, here.")
    drop = beh.get("max_class_drop_pp")
    if isinstance(drop, int | float) and drop > 1.0:
        out.append(f"Class {beh.get('worst_class')!r} loses {drop:.2f} pp of accuracy, more "
                   "than the average drop.")
    for key in ("noise", "fgsm", "token_dropout", "token_swap", "fgsm_embedding"):
        for it in beh.get(key) or []:
            if isinstance(it, dict) and isinstance(it.get("accuracy"), int | float) and \
                    isinstance(it.get("baseline_accuracy"), int | float) and \
                    it["baseline_accuracy"] - it["accuracy"] > 0.02:
                lvl = {k: it[k] for k in ("sigma", "eps", "rate") if k in it}
                loss = 100 * (it["baseline_accuracy"] - it["accuracy"])
                out.append(f"Under {key} {lvl} it scores {loss:.1f} pp below the baseline there.")
    out.append("Energy per inference is an estimate from CPU time, not a power measurement.")
    return out


def build_card(data: RunData, data_dir: str | None = None) -> dict:
    """The model card of a run folder (see the module docstring).

    Example:
        >>> build_card(load_run("runs/dc"))["model"]  # doctest: +SKIP
        'lenet-300-100'
    """
    run, record, beh = data.run, data.record or {}, data.behaviour or {}
    root = Path(data.run_dir)
    en = energy(root)
    task = run.get("task") or record.get("task") or "image-classification"
    recipe = run.get("recipe") or record.get("recipe")
    return {
        "card_version": CARD_VERSION,
        "generated_by": f"netpress {__version__}",
        "model": run.get("model"),
        "task": task,
        "data": run.get("data"),
        "intended_use": (f"{task} of inputs like the {run.get('data', '?')} data it was "
                         "evaluated on, on a CPU, where the budgets of its gate hold. Not "
                         "validated for other input distributions or for decisions about "
                         "people without further evaluation."),
        "cpu": en["cpu"],
        "threads": record.get("threads"),
        "comparison": comparison(record, beh),
        "energy": en,
        "lineage": {"baseline_weights": file_entry(run.get("weights"), root),
                    "data_files": [file_entry(p) for p in data_files(run.get("data"), data_dir)],
                    "artifact": file_entry(root / "model.netpress"),
                    "baseline_artifact": file_entry(root / "baseline.netpress")},
        "recipe": recipe,
        "limitations": limitations(data, record, beh, en),
    }


def fmt(v, unit: str = "") -> str:
    """A card value for people.

    Example:
        >>> fmt(0.91234), fmt(20480, "bytes"), fmt(None)
        ('0.9123', '20,480 bytes', '–')
    """
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}" + (f" {unit}" if unit else "")
    if isinstance(v, int):
        return f"{v:,}" + (f" {unit}" if unit else "")
    return str(v)


def card_markdown(card: dict) -> str:
    """``model_card.md``.

    Example:
        >>> card_markdown(build_card(load_run("runs/dc"))).splitlines()[0]  # doctest: +SKIP
        '# Model card: lenet-300-100'
    """
    en = card["energy"]
    lines = [f"# Model card: {card['model']}", "", f"Generated by {card['generated_by']}.", "",
             "## Intended use", "", card["intended_use"], "",
             f"## Baseline and compressed (measured on {card['cpu']})", "",
             "| metric | baseline | compressed |", "|---|---:|---:|"]
    lines += [f"| {r['metric']} | {fmt(r['baseline'], r['unit'])} | {fmt(r['compressed'], r['unit'])} |"
              for r in card["comparison"]]
    lines += ["", "## Energy per inference (estimate)", "", en["method"] + ".", "",
              f"- baseline: {fmt(en.get('baseline_mj'), 'mJ')} ({fmt(en.get('baseline_cpu_ms'), 'ms')} CPU)",
              f"- compressed: {fmt(en.get('compressed_mj'), 'mJ')} "
              f"({fmt(en.get('compressed_cpu_ms'), 'ms')} CPU)", "", "## Lineage (SHA-256)", ""]
    lin = card["lineage"]
    for key in ("baseline_weights", "artifact", "baseline_artifact"):
        e = lin.get(key) or {}
        lines.append(f"- {key}: `{e.get('sha256') or e.get('note', '–')}` ({e.get('path')})")
    for e in lin.get("data_files", []):
        lines.append(f"- data: `{e.get('sha256') or e.get('note')}` ({e.get('path')})")
    stages = (card.get("recipe") or {}).get("stages") or []
    lines += ["", "## Recipe", "", f"{(card.get('recipe') or {}).get('name', '–')}: "
              + (" → ".join(str(s.get("_type", "?")) for s in stages) or "no stages"), "",
              "## Known limitations", ""]
    lines += [f"- {t}" for t in card["limitations"]]
    return "\n".join(lines) + "\n"


def write_card(run_dir: str | os.PathLike, data_dir: str | None = None) -> dict[str, Path]:
    """Write ``model_card.json`` and ``model_card.md`` into a run folder (atomically).

    Example:
        >>> write_card("runs/dc")["card_markdown"].name  # doctest: +SKIP
        'model_card.md'
    """
    from .data import load_run

    root = Path(run_dir)
    return save_card(root, build_card(load_run(root), data_dir))


def save_card(root: Path, card: dict) -> dict[str, Path]:
    """Write ``card`` as ``model_card.json`` and ``model_card.md`` in ``root``."""
    import json

    from ..io import json_safe, write_bytes

    paths = {"card_json": root / "model_card.json", "card_markdown": root / "model_card.md"}
    write_bytes(paths["card_json"], (json.dumps(json_safe(card), indent=2, allow_nan=False)
                                     + "\n").encode())
    write_bytes(paths["card_markdown"], card_markdown(card).encode("utf-8"))
    return paths
