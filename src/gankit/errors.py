"""The one error type gankit raises for problems a user can fix.

The CLI turns a `GankitError` into one line on stderr and a non-zero exit;
anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import contextlib
import difflib


class GankitError(Exception):
    """A problem with the user's input, files or environment, with a fix in the message."""


def did_you_mean(word: str, choices) -> str:
    """' (did you mean "x"?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


@contextlib.contextmanager
def memory_guard(what: str, fix: str):
    """Turn running out of memory inside the block into one line: ``what`` needs more memory ...; ``fix``."""
    try:
        yield
    except MemoryError:
        raise GankitError(f"{what} need more memory than this machine has; {fix}") from None
    except RuntimeError as exc:
        if "allocate" not in str(exc) and "out of memory" not in str(exc):
            raise
        first = str(exc).splitlines()[0][:160]
        raise GankitError(f"{what} need more memory than this machine has ({first}); {fix}") from None
