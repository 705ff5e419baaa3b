"""The one error type library code raises for a problem with what the user gave.

Its message is one line that names the thing (a path, a setting, a file and line) and says what to do; the
command-line front door (:mod:`mmpr.cli`) prints it without a traceback and exits with its ``exit_code``.
"""

from __future__ import annotations

import errno

EXIT_OK = 0
EXIT_NOTHING_MADE = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process ended by it
EXIT_BUG = 1


class UserError(ValueError):
    """Bad input: a missing or corrupt file, an invalid setting, an occupied output folder. (A ``ValueError``, so
    code that already handled bad values handles it too.)"""

    exit_code = EXIT_BAD_INPUT


class NothingMade(UserError):
    """The run worked through its input and produced no results (0 pairs, 0 samples); the message says why."""

    exit_code = EXIT_NOTHING_MADE


class EngineDied(RuntimeError):
    """An engine the run started (in this process or on a cluster) died; the message is its cause in one line. Not
    a :class:`UserError`: the work saved before it died stays for the rerun."""

    exit_code = EXIT_NOTHING_MADE


class Unreachable(UserError):
    """A server the run needs (an engine endpoint, a judge) did not answer."""

    exit_code = EXIT_UNREACHABLE


# the disk said no: full, over quota, past a file-size limit, read-only. Never a fault of the input being read, so
# code that skips bad input items must let these through
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def write_failure(e: BaseException) -> bool:
    """``e`` is the disk refusing a write (see :data:`WRITE_ERRNOS`)."""
    return isinstance(e, OSError) and e.errno in WRITE_ERRNOS


def one_line(text: str) -> str:
    """``text`` with its lines joined by ``; ``: every error the user sees is one line."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())
