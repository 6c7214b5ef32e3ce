"""Writing the report while a run trains: a sink the training API adds for ``train.report``.

``end`` writes RUN/report.html when training ends (finished, stopped by a signal, or stopped by an error: the
report then shows where it went wrong); ``eval`` also rewrites it after every evaluation during training;
``none`` never writes it. A report that fails prints one line and never touches the run or its checkpoints.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPORT_WHEN = ("none", "end", "eval")


class ReportSink:
    def __init__(self, run_dir: Path, when: str = "end"):
        self.run_dir, self.when = Path(run_dir), when

    def scalars(self, step: int, images: int, values: dict) -> None:
        if self.when == "eval" and any(k.startswith("eval/") for k in values):
            self.write()

    def image(self, tag, grid, step) -> None:
        pass

    def close(self) -> None:
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):  # a second Ctrl-C: the user wants out, now
            print(f"gankit: the run report was not written (interrupted); write it with: gankit report "
                  f"{self.run_dir}", file=sys.stderr, flush=True)
            return
        if self.when in ("end", "eval"):
            self.write()

    def write(self):
        """Write the report; on any failure print one line and go on (the run matters more than its page)."""
        from .page import write_report

        try:
            return write_report(self.run_dir)
        except Exception as exc:  # noqa: BLE001  never let the report cost the run
            print(f"gankit: warning: the run report could not be written ({type(exc).__name__}: {exc}); the run "
                  f"is intact, write it later with: gankit report {self.run_dir}", file=sys.stderr, flush=True)
            return None
