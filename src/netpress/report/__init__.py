"""Reports of a run folder: one self-contained HTML page, a JSON for the gate, Markdown for CI.

Example:
    >>> from netpress.report import write_report
    >>> write_report("runs/r1")["html"]  # doctest: +SKIP
    PosixPath('runs/r1/report.html')
"""

from .build import build_report
from .data import RunData, load_run
from .write import write_report

__all__ = ["RunData", "build_report", "load_run", "write_report"]
