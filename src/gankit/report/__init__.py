"""See a run at a glance: ``gankit report RUN`` (one self-contained HTML page per run) and ``gankit compare RUN1
RUN2 ...`` (runs overlaid on one page). Reads run folders only; never imports the trainer."""
from __future__ import annotations

from .._lazy import lazy_getattr

_EXPORTS = {"write_report": "page", "render": "page", "write_compare": "compare", "compare_text": "compare",
            "ReportSink": "sink", "read_run": "_folder", "RunFolder": "_folder"}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)
