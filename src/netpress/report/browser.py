"""Open a report in headless Chromium: a screenshot, or the DOM after scripts ran.

Used by tests and benchmarks to prove the HTML renders. Chromium runs with a
throwaway HOME and profile in a temp folder (nothing is written to the user's
home), no sandbox (it may run as root in CI) and a time limit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import NetpressError
from ..io import write_bytes

NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    """Path of a Chromium binary ($NETPRESS_CHROMIUM first), or None.

    Example:
        >>> find_chromium()  # doctest: +SKIP
        '/usr/bin/chromium'
    """
    env = os.environ.get("NETPRESS_CHROMIUM")
    if env:
        return env if os.path.isfile(env) else shutil.which(env)
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(html_path: str | os.PathLike, args: list[str], timeout: float) -> tuple[bytes, Path]:
    exe = find_chromium()
    if exe is None:
        raise NetpressError("Chromium not found: install it with `apt-get install -y chromium` "
                            "(or `make setup`), or set NETPRESS_CHROMIUM to its path")
    page = Path(html_path).resolve()
    if not page.is_file():
        raise NetpressError(f"{page} not found: write it first with `netpress report RUN_DIR`")
    tmp = Path(tempfile.mkdtemp(prefix="netpress-chromium-"))
    env = {**os.environ, "HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config"),
           "XDG_CACHE_HOME": str(tmp / "cache")}
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--no-default-browser-check", "--disable-extensions",
           "--disable-dev-shm-usage", "--mute-audio", f"--user-data-dir={tmp / 'profile'}",
           "--virtual-time-budget=5000", "--run-all-compositor-stages-before-draw",
           *[a.replace("{tmp}", str(tmp)) for a in args], page.as_uri()]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise NetpressError(f"Chromium did not finish within {timeout:g} s on {page}") from e
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise NetpressError(f"Chromium failed on {page} (exit {proc.returncode}): {' '.join(tail)}")
    return proc.stdout, tmp


def rendered_dom(html_path: str | os.PathLike, timeout: float = 60.0) -> str:
    """The page's DOM after it loaded and its scripts ran (``--dump-dom``).

    Example:
        >>> 'data-images-loaded="5"' in rendered_dom("runs/r1/report.html")  # doctest: +SKIP
        True
    """
    out, tmp = _run(html_path, ["--dump-dom"], timeout)
    shutil.rmtree(tmp, ignore_errors=True)
    return out.decode("utf-8", errors="replace")


def screenshot(html_path: str | os.PathLike, png_path: str | os.PathLike, width: int = 1280,
               height: int = 2400, timeout: float = 60.0) -> Path:
    """A PNG of the page's first ``width`` × ``height`` pixels, written atomically.

    Example:
        >>> screenshot("runs/r1/report.html", "shot.png")  # doctest: +SKIP
        PosixPath('shot.png')
    """
    _, tmp = _run(html_path, [f"--window-size={width},{height}",
                              "--screenshot={tmp}/shot.png"], timeout)
    try:
        shot = tmp / "shot.png"
        if not shot.is_file():
            raise NetpressError(f"Chromium wrote no screenshot of {html_path}")
        return write_bytes(png_path, shot.read_bytes())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
