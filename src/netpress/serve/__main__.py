"""``python -m netpress.serve SOURCE [NAME=SOURCE ...]``: serve without importing torch.

The ``netpress`` command imports torch for its other commands; this entry point loads
only numpy, ONNX Runtime, FastAPI/uvicorn and prometheus-client (MLflow for registry
sources). Options: ``--host``, ``--port``, ``--config FILE``, ``--baseline FILE``,
``--reference FILE``.

Example:
    python -m netpress.serve runs/dc int8=runs/int8/model.netpress --port 8000
"""

from __future__ import annotations

import argparse
import sys

from ..errors import NetpressError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until interrupted."""
    p = argparse.ArgumentParser(prog="python -m netpress.serve")
    p.add_argument("source")
    p.add_argument("variants", nargs="*", help="NAME=SOURCE, after SOURCE (named main)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--config")
    p.add_argument("--baseline")
    p.add_argument("--reference")
    p.add_argument("--tracking-uri")
    a = p.parse_args(argv)
    from .app import build_app
    from .config import ServeConfig
    from .server import run
    from .sources import parse_variants

    try:
        cfg = ServeConfig.from_file(a.config) if a.config else ServeConfig()
        app = build_app(parse_variants(a.source, a.variants), cfg, baseline=a.baseline,
                        reference=a.reference, tracking_uri=a.tracking_uri)
    except NetpressError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    run(app, a.host, a.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
