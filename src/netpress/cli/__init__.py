"""The ``netpress`` command line: every command a thin wrapper over the API.

Errors a user can cause print one line (``error: …``) and exit 2; ``--debug``
anywhere on the command line shows the traceback instead.
"""

from __future__ import annotations

import sys
import traceback

import typer

from ..errors import NetpressError
from . import (
    artifact,
    compress,
    core,
    demo,
    export,
    gate,
    prune,
    quantize,
    registry,
    report,
    run,
    search,
    serve,
    shape,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compress trained PyTorch models and prove the result.")
core.register_commands(app)
demo.register_commands(app)
shape.register_commands(app)
prune.register_commands(app)
quantize.register_commands(app)
artifact.register_commands(app)
export.register_commands(app)
compress.register_commands(app)
gate.register_commands(app)
report.register_commands(app)
search.register_commands(app)
run.register_commands(app)
registry.register_commands(app)
serve.register_commands(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``netpress`` script."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    from .common import INVOKED_ARGS

    INVOKED_ARGS[:] = args
    try:
        app(args=args, prog_name="netpress")
        return 0
    except SystemExit as e:  # typer exits on success, usage errors and --help
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except (NetpressError, OSError) as e:
        if debug:
            traceback.print_exc()
        msg = " ".join(str(e).split())
        print(f"error: {msg}", file=sys.stderr)
        from ..distributed.launch import report_error

        report_error(msg)  # under `--nproc N`: rank 0's error reaches the parent
        return 2


if __name__ == "__main__":
    sys.exit(main())
