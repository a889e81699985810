import re

import numpy as np
import pytest

from netpress.errors import NetpressError
from netpress.report import write_report
from netpress.report.browser import find_chromium, rendered_dom, screenshot

needs_chromium = pytest.mark.skipif(find_chromium() is None,
                                    reason="Chromium not installed (apt-get install -y chromium)")


@needs_chromium
def test_every_plot_renders_in_headless_chromium(run_copy, tmp_path):
    paths = write_report(run_copy)
    dom = rendered_dom(paths["html"])
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    total = re.search(r'data-images-total="(\d+)"', dom)
    assert loaded and total, dom[:300]
    assert int(loaded.group(1)) == int(total.group(1)) == 5

    from matplotlib.image import imread

    shot = screenshot(paths["html"], tmp_path / "shot.png", width=1000, height=1600)
    img = imread(shot)
    assert img.shape[:2] == (1600, 1000)
    gray = img[..., :3].mean(axis=2)
    assert gray.std() > 0.05  # not a blank page
    assert (gray < 0.5).mean() > 0.005  # dark pixels: text and plot lines
    assert len(np.unique((gray * 255).astype(int))) > 50  # antialiased plots, not flat fills


@needs_chromium
def test_broken_image_is_counted_as_not_loaded(tmp_path):
    page = tmp_path / "p.html"
    from netpress.report.html import SCRIPT

    page.write_text(f"<html><head><script>{SCRIPT}</script></head><body>"
                    '<img src="data:image/png;base64,AAAA"></body></html>')
    dom = rendered_dom(page)
    assert 'data-images-loaded="0"' in dom and 'data-images-total="1"' in dom


def test_missing_chromium_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("NETPRESS_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(NetpressError, match="apt-get install -y chromium"):
        rendered_dom(tmp_path / "x.html")


@needs_chromium
def test_model_card_is_shown_in_the_report(run_copy):
    import hashlib
    import json

    paths = write_report(run_copy)
    card = json.loads(paths["card_json"].read_text())
    dom = rendered_dom(paths["html"])
    assert "<h2>Model card</h2>" in dom
    assert "energy per inference (estimate)" in dom and "W per busy core" in dom
    sha = hashlib.sha256((run_copy / "model.netpress").read_bytes()).hexdigest()
    assert card["lineage"]["artifact"]["sha256"] == sha and sha in dom
    assert card["energy"]["compressed_mj"] > 0 and card["energy"]["estimate"] is True
    rows = {r["metric"]: r for r in card["comparison"]}
    assert rows["size on disk"]["compressed"] == (run_copy / "model.netpress").stat().st_size
    assert "calibration error (ECE)" in rows and any(k.startswith("noise") for k in rows)
    assert "Known limitations" in dom and card["limitations"]
    assert paths["card_markdown"].read_text().startswith("# Model card: lenet-300-100")
