"""The command line this process runs, as run folders record it (log.txt): the ``gankit`` command sets it, so a
command called in-process (``gankit.cli.main([...])``) is recorded as itself rather than as its host's argv."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

COMMAND: Optional[list] = None


def command_line() -> str:
    if COMMAND is not None:
        return shlex.join(COMMAND)
    argv = list(sys.argv) or ["python"]
    if Path(argv[0]).name in ("gankit", "__main__.py"):
        argv[0] = "gankit"
    elif argv[0].endswith(".py"):
        argv.insert(0, "python")
    return shlex.join(argv)
