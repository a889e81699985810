"""``--nproc N``: run the same netpress command under ``torchrun`` on this machine.

netpress does not launch processes of its own: it calls ``python -m torch.distributed.run
--standalone --nproc-per-node N -m netpress <the same arguments>`` and waits. The
children find ``WORLD_SIZE`` in their environment and join the group
(``ddp.init_from_env``); the environment (``PYTHONPATH`` included) is inherited. On
several machines, start ``torchrun`` yourself with the same arguments (no ``--nproc``).

A user error in rank 0 (a failed check, a bad file) is written to the file named by
``NETPRESS_DIST_ERROR`` and re-raised here as the same one-line error. Any other failure
— a rank killed, out of memory, a lost peer — stops every rank (torchrun's summary above
names the rank) and is reported as a ``DistributedError`` saying how to resume.

Example:
    >>> strip_nproc(["compress", "--nproc", "2", "--recipe", "r.yaml"])
    ['compress', '--recipe', 'r.yaml']
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import NetpressError
from .ddp import DistributedError

ERROR_ENV = "NETPRESS_DIST_ERROR"


def strip_nproc(args: list[str]) -> list[str]:
    """``args`` without ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


def with_option(args: list[str], name: str, value: str) -> list[str]:
    """``args`` with ``name value`` set (replacing an earlier value).

    Example:
        >>> with_option(["compress", "--run-dir", "a"], "--run-dir", "b")
        ['compress', '--run-dir', 'b']
    """
    out = list(args)
    if name in out:
        out[out.index(name) + 1] = value
    else:
        out += [name, value]
    return out


def run_torchrun(args: list[str], nproc: int, resume_hint: str = "") -> None:
    """Run ``netpress <args>`` as ``nproc`` processes under torchrun; raise on failure.

    Example:
        >>> run_torchrun(["compress", "--model", "lenet5", ...], nproc=2)  # doctest: +SKIP
    """
    if nproc < 1:
        raise NetpressError(f"--nproc must be 1 or more, got {nproc}")
    with tempfile.TemporaryDirectory(prefix="netpress-dist-") as tmp:
        err_file = Path(tmp) / "error.txt"
        env = {**os.environ, ERROR_ENV: str(err_file)}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
               "--nproc-per-node", str(nproc), "--max-restarts", "0", "-m", "netpress", *args]
        rc = subprocess.call(cmd, env=env)
        if rc == 0:
            return
        if err_file.is_file() and err_file.read_text().strip():
            raise NetpressError(err_file.read_text().strip())
        raise DistributedError(
            f"a training process died (torchrun exit code {rc}; its summary above names the "
            f"rank) and every rank was stopped. {resume_hint}".strip())


def report_error(message: str) -> None:
    """In a child of ``run_torchrun``: leave rank 0's one-line error for the parent."""
    path = os.environ.get(ERROR_ENV)
    if path:
        from .ddp import is_main

        if is_main():
            Path(path).write_text(message)
