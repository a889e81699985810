import base64
import json
import os
import re

import pytest

from netpress.cli import main
from netpress.report import build_report, load_run
from netpress.report.points import budget_limits, pareto_indices

PLOTS = ["accuracy_vs_size", "accuracy_vs_latency", "sensitivity", "histograms", "size_breakdown"]


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def images(html):
    return re.findall(r"<img\b[^>]*>", html)


def test_report_json_keeps_gate_keys(capsys, built, run_copy):
    code, out, err = run(capsys, "report", run_copy)
    assert code == 0, err
    assert str(run_copy / "report.html") in out and str(run_copy / "report.json") in out
    rep = json.loads((run_copy / "report.json").read_text())
    rec = built["record"]
    size = os.path.getsize(run_copy / "model.netpress")
    assert rep["size_bytes"] == size == rec["size_bytes"]
    assert rep["baseline_size_bytes"] == 4 * built["params"] == 4 * 266_610
    assert rep["compression_ratio"] == pytest.approx(4 * 266_610 / size)
    assert rep["compression_ratio"] > 10  # 80 % pruned + 4-bit codebooks
    drop = round((rec["baseline_accuracy"] - rec["accuracy"]) * 100, 4)
    assert rep["accuracy_drop_pp"] == pytest.approx(drop) and drop > 0
    assert rep["latency_ms"] == rec["latency_ms"] and rep["latency_ms"]["batch_n"] == 64
    assert rep["nonzero_params"] < 0.25 * rep["params"]
    beh = rep["behaviour"]
    assert rep["max_class_drop_pp"] == beh["max_class_drop_pp"] == max(beh["per_class"]["drop_pp"])
    assert rep["worst_class"] == beh["worst_class"]
    assert [s["technique"] for s in rep["stages"]] == ["MagnitudePrune", "WeightShare"]
    assert rep["run"]["kind"] == "compress" and "stages" not in rep["run"]
    assert rep["plots"] == PLOTS
    assert [r["technique"] for r in rep["compare"]] == ["MagnitudePrune", "WeightShare"]
    assert rep["missing"] == {"trials.json": "trials.json is missing; it is written by "
                                             "`netpress search --run-dir DIR`."}


def test_html_is_self_contained_with_one_image_per_plot(capsys, built, run_copy):
    assert run(capsys, "report", run_copy)[0] == 0
    html = (run_copy / "report.html").read_text()
    imgs = images(html)
    assert len(imgs) == len(PLOTS)
    for key in PLOTS:
        assert html.count(f'id="plot-{key}"') == 1
    for tag in imgs:
        src = re.search(r'src="([^"]+)"', tag).group(1)
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", html, re.I)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert 'data-images-total="5"' in html
    rec = built["record"]
    assert f"{rec['compression_ratio']:,.2f}×" in html
    assert f"{rec['size_bytes']:,} B" in html
    beh = json.loads((run_copy / "behaviour.json").read_text())
    assert f"(class {beh['worst_class']})" in html
    for row in built["compare_rows"]:
        assert f"{row['size_bytes']:,} B" in html


def test_markdown_summary(capsys, built, run_copy, tmp_path):
    md_path, html_path = tmp_path / "ci" / "comment.md", tmp_path / "ci" / "r.html"
    code, _, err = run(capsys, "report", run_copy, "--markdown", md_path, "--html", html_path,
                       "--json", tmp_path / "ci" / "r.json")
    assert code == 0, err
    assert not (run_copy / "report.md").exists() and (tmp_path / "ci" / "r.json").is_file()
    md = md_path.read_text()
    beh = json.loads((run_copy / "behaviour.json").read_text())
    assert f"worst class: {beh['worst_class']} ({beh['max_class_drop_pp']:,.2f} pp drop)" in md
    assert f"ECE {beh['ece']:.4f} (baseline {beh['baseline_ece']:.4f})" in md
    assert "FGSM ε=0.2" in md and "Gaussian noise σ=0.5" in md
    assert f"| compression ratio | {built['record']['compression_ratio']:,.2f}× |" in md
    assert "stage 1 MagnitudePrune: drop ≤ 5.0 pp" in md
    assert f"Full report: `{html_path}`" in md


def test_missing_or_broken_optional_files_give_notes(capsys, run_copy):
    (run_copy / "sensitivity.json").unlink()
    (run_copy / "compare.json").unlink()
    (run_copy / "histograms.json").write_text("{not json")
    (run_copy / "behaviour.json").unlink()
    code, _, err = run(capsys, "report", run_copy)
    assert code == 0, err
    html = (run_copy / "report.html").read_text()
    assert "sensitivity.json is missing; it is written by `netpress compress --run-dir DIR`." in html
    assert "compare.json is missing; it is written by `netpress compare" in html
    assert "histograms.json is unreadable (" in html and "not valid JSON (line 1" in html
    assert "behaviour.json is missing" in html
    rep = json.loads((run_copy / "report.json").read_text())
    assert rep["plots"] == ["accuracy_vs_size", "accuracy_vs_latency", "size_breakdown"]
    assert len(images(html)) == 3 and rep["behaviour"] is None
    assert "behaviour.json is missing" in (run_copy / "report.md").read_text()


def test_size_breakdown_from_the_artifact_without_record(capsys, run_copy):
    (run_copy / "record.json").unlink()
    (run_copy / "compare.json").unlink()  # else its rows alone still make the trade-off plots
    data = load_run(run_copy)
    assert data.record is None and data.artifact["file_bytes"] == os.path.getsize(run_copy / "model.netpress")
    code, _, err = run(capsys, "report", run_copy)
    assert code == 0, err
    rep = json.loads((run_copy / "report.json").read_text())
    assert rep["plots"] == ["sensitivity", "histograms", "size_breakdown"]
    assert "record.json is missing" in (run_copy / "report.html").read_text()


def test_missing_or_bad_run_json_is_a_clear_error(capsys, run_copy, tmp_path):
    code, _, err = run(capsys, "report", tmp_path / "nowhere")
    assert code == 2 and "run.json not found (the folder does not exist)" in err
    (run_copy / "run.json").unlink()
    code, _, err = run(capsys, "report", run_copy)
    assert code == 2 and err.startswith("error:") and "run.json not found" in err
    assert "Traceback" not in err and not (run_copy / "report.html").exists()
    (run_copy / "run.json").write_text("[1, 2]")
    code, _, err = run(capsys, "report", run_copy)
    assert code == 2 and "holds a JSON list, not an object" in err


def test_search_run_pareto_and_best(capsys, built):
    s = built["search"]
    code, _, err = run(capsys, "report", s)
    assert code == 0, err
    rep = json.loads((s / "report.json").read_text())
    trials = built["trials"]
    assert [t["number"] for t in rep["pareto"]] == [t["number"] for t in trials if t["pareto"]]
    assert rep["trials"] == {"total": 4, "feasible": sum(t["feasible"] for t in trials)}
    assert rep["plots"] == ["accuracy_vs_size", "accuracy_vs_latency"]
    html = (s / "report.html").read_text()
    assert len(images(html)) == 2 and "Pareto front and best candidate" in html
    assert built["best"] is not None  # the fixture's budgets admit the 3-bit shared model
    best = trials[built["best"]]
    assert rep["best"]["number"] == best["number"] and best["feasible"]
    assert rep["accuracy_drop_pp"] == best["accuracy_drop_pp"]
    assert rep["size_bytes"] == best["size_bytes"]
    assert rep["latency_ms"] == {"batch1_p50": best["latency_ms"]}
    assert rep["gate_source"] == f"best trial {best['number']} (validation data)"
    assert f"{best['number']} (best)" in html and "Best candidate: trial" in html
    md = (s / "report.md").read_text()
    assert f"Best trial {best['number']}: validation accuracy {best['val_accuracy'] * 100:.2f}%" in md


def test_pareto_and_budgets(built):
    assert pareto_indices([3, 1, 2, 2, None], [0.9, 0.5, 0.95, 0.7, 1.0]) == [1, 2]
    data = load_run(built["search"])
    lim = budget_limits(data)
    b = built["budgets"]
    assert lim == {"min_accuracy": pytest.approx(built["base_val"] - b["max_acc_drop"] / 100),
                   "max_size_bytes": b["max_size_kb"] * 1024.0}
    rep = build_report(data)
    assert rep["kind"] == "search" and rep["budgets"] == b
