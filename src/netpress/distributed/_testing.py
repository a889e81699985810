"""Test-only hooks of the distributed code. Not part of the API; inert in normal runs.

``fault_point(stage)`` lets the failure-handling tests kill one rank of a ``torchrun`` job
at a chosen recipe stage, as a crashed process would. It acts only when BOTH variables are
set in the environment:

- ``NETPRESS_TESTING=1`` — the explicit switch that testing hooks may act at all;
- ``NETPRESS_FAULT=RANK:STAGE`` — that rank exits with code 17 when stage STAGE (1-based)
  starts.

``NETPRESS_FAULT`` alone does nothing, so a stray variable in a user's shell cannot end a
training run. ``tests/distributed/test_ddp.py`` and ``test_testing_hooks.py`` cover it.

Example:
    >>> fault_point(1)  # neither variable set: returns, nothing happens
"""

from __future__ import annotations

import os

FAULT_EXIT_CODE = 17


def fault_point(stage: int, rank: int | None = None) -> None:
    """Exit the process (code 17) if ``NETPRESS_TESTING=1`` and ``NETPRESS_FAULT`` names
    this ``rank`` (default: the process-group rank, 0 outside one) and ``stage``."""
    if os.environ.get("NETPRESS_TESTING") != "1":
        return
    spec = os.environ.get("NETPRESS_FAULT")
    if not spec:
        return
    if rank is None:
        from .ddp import rank as _rank

        rank = _rank()
    if spec == f"{rank}:{stage}":
        os._exit(FAULT_EXIT_CODE)
