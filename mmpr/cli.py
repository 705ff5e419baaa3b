"""The front door every command goes through: one line on stderr for every bad input, documented exit codes.

Each tool's ``main`` is wrapped by :func:`front_door`, which turns a :class:`mmpr.errors.UserError` (and a missing
file, a corrupt file, an invalid setting, an unreachable server, a full disk or a read-only folder, Ctrl-C and
SIGTERM) into one line that names the thing and says what to do, with the exit code listed in :data:`EXIT_CODES`.
Anything else is a bug: one line saying so, exit 1, and its traceback in the run's log file.
Besides it: the tools' argument parser (a usage error is one line), ``--verbose`` / ``--overwrite``, and
quiet-by-default logging (engine logs to a file or ``--verbose``). Settings (``KEY=VALUE``, YAML, flags) are
:mod:`mmpr.settings`; output folders are :mod:`mmpr.locations`.
"""

from __future__ import annotations

import argparse
import errno
import functools
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import ValidationError

from mmpr.errors import (
    EXIT_BAD_INPUT,
    EXIT_BUG,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_UNREACHABLE,
    EngineDied,
    UserError,
    one_line,
)
from mmpr.locations import writing_to, written_to
from mmpr.settings import settings_error

EXIT_CODES = ("exit codes: 0 done; 1 ran but made nothing, or left some of its work undone (the reasons are "
              "printed), or a bug (its traceback goes to the log file); 2 bad input (a missing or "
              "corrupt file, an invalid setting, an occupied output folder, a full disk or a read-only folder); "
              "3 a server did not answer; 130 interrupted, 143 terminated (rerun the same command to resume)")
INTERRUPTED = "interrupted; rerun the same command to resume"
TERMINATED = "terminated (SIGTERM); rerun the same command to resume"

# what the running tool writes to and logs into, for the lines of errors that do not name a path (torch, safetensors
# and pyarrow write errors) and for the traceback of a bug
_RUN: dict[str, Any] = {"log": None, "verbose": False}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, like Ctrl-C: the code that keeps work on an interrupt keeps it."""


def _server_failed(e: BaseException) -> bool:
    """A server answered with an HTTP error status (openai's and httpx's status errors)."""
    return bool({c.__name__ for c in type(e).__mro__} & {"APIStatusError", "HTTPStatusError"})


def _unreachable(e: BaseException) -> bool:
    names = {c.__name__ for c in type(e).__mro__}
    return isinstance(e, ConnectionError) or bool(names & {"APIConnectionError", "ConnectError", "ConnectTimeout",
                                                            "NewConnectionError", "MaxRetryError"})


def corrupt(e: BaseException) -> bool:
    """A file's content could not be parsed (JSON, YAML, text encoding, parquet/arrow, image)."""
    names = {c.__name__ for c in type(e).__mro__}
    return isinstance(e, json.JSONDecodeError | yaml.YAMLError | UnicodeDecodeError) or bool(
        names & {"ArrowInvalid", "ArrowException", "DatasetGenerationError", "UnidentifiedImageError"})


# a write error by its errno, or by the words of one that carries no errno (Rust's safetensors, torch's zip writer
# whose "unexpected pos" is a short write: the disk filled up or a file-size limit was hit)
_WRITE_ERRORS = {
    errno.ENOSPC: "no space left on {where}; free some space",
    errno.EDQUOT: "disk quota exceeded on {where}; free some space or raise the quota",
    errno.EFBIG: "a file in {where} grew past the file-size limit (ulimit -f, or the file system's largest file); "
                 "raise the limit or choose another --out",
    errno.EROFS: "{where} is on a read-only file system; choose a writable --out",
}
_WRITE_WORDS = {"No space left on device": errno.ENOSPC, "os error 28": errno.ENOSPC, "Disk quota exceeded":
                errno.EDQUOT, "File too large": errno.EFBIG, "os error 27": errno.EFBIG,
                "Read-only file system": errno.EROFS, "os error 30": errno.EROFS}


def _write_error(e: BaseException) -> str | None:
    """The cause of a failed write (full disk, file-size limit, read-only file system) and what to do, or None."""
    code = getattr(e, "errno", None) if isinstance(e, OSError) else None
    text = str(e)
    if code not in _WRITE_ERRORS:
        code = next((c for words, c in _WRITE_WORDS.items() if words in text), None)
    short_write = "unexpected pos" in text and type(e).__name__ == "RuntimeError"
    if code is None and not short_write:
        return None
    filename = getattr(e, "filename", None)
    where = Path(filename).parent if filename else written_to() or Path.cwd()
    cause = (_WRITE_ERRORS[code] if code is not None else
             "a write to {where} was cut short (no space left, or a file-size limit); free some space or raise the "
             "limit").format(where=where)
    return f"{cause}, then rerun the same command to resume"


def error_line(e: BaseException) -> tuple[str, int]:
    """The line to print for ``e`` and the exit code; ``("", 0)`` for an error that is a bug."""
    if isinstance(e, UserError | EngineDied):
        return f"error: {one_line(e)}", e.exit_code
    if isinstance(e, Terminated):
        return TERMINATED, EXIT_TERMINATED
    if isinstance(e, KeyboardInterrupt):
        return INTERRUPTED, EXIT_INTERRUPTED
    if isinstance(e, ValidationError):
        return f"error: {settings_error(e, 'settings')}", EXIT_BAD_INPUT
    if (cause := _write_error(e)) is not None:
        return f"error: {cause}", EXIT_BAD_INPUT
    if isinstance(e, PermissionError):
        where = e.filename or written_to() or "a file"
        return f"error: {where}: permission denied; make it readable and writable or choose another path, then " \
               f"rerun the same command", EXIT_BAD_INPUT
    if isinstance(e, FileNotFoundError | NotADirectoryError | IsADirectoryError):
        if e.filename:
            return f"error: {e.filename}: {e.strerror or 'cannot be opened'}; check the path", EXIT_BAD_INPUT
        return f"error: {one_line(e)}", EXIT_BAD_INPUT
    if _server_failed(e):
        return f"error: a server answered with an error ({one_line(e)[:300]}); check that server and its log, then " \
               f"rerun the same command", EXIT_UNREACHABLE
    if _unreachable(e):
        return f"error: a server did not answer ({one_line(e) or type(e).__name__}); start it or check the " \
               f"address", EXIT_UNREACHABLE
    if corrupt(e):
        return f"error: corrupt input: {one_line(e)}; fix or remove that file", EXIT_BAD_INPUT
    return "", 0


def bug_report(e: BaseException) -> str:
    """The line for an error that is a bug, after writing its traceback to the run's log file (a temporary file
    when there is none or it cannot be written; stderr with ``--verbose``)."""
    text = "".join(traceback.format_exception(e))
    where = None
    if _RUN["verbose"]:
        print(text, file=sys.stderr, end="")  # --verbose: the traceback goes where the logs go
    else:
        where = _keep(text, _RUN["log"])
    detail = one_line(f"{type(e).__name__}: {e}")[:300]
    kept = f"its traceback is in {where}" if where is not None else "its traceback is above"
    return f"error: an unexpected error, a bug in the tool rather than in your input ({detail}); {kept}; please " \
           f"report it with that traceback"


def _keep(text: str, log: Path | None) -> Path | None:
    """Append ``text`` to ``log``, or to a new temporary file when there is no log or it cannot be written."""
    for path in (log, None):
        try:
            if path is None:
                fd, name = tempfile.mkstemp(prefix="mmpr-bug-", suffix=".log")
                os.close(fd)
                path = Path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
            return path
        except OSError:
            continue
    return None


def _on_sigterm(pid: int):
    def handler(signum, frame):
        if os.getpid() != pid:  # a forked worker: die of the signal as it would have
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated()
    return handler


def front_door(main: Callable[[list[str] | None], int | None]) -> Callable[[list[str] | None], int]:
    """Wrap a CLI ``main(argv)``: user errors, missing or corrupt files, settings errors, unreachable servers,
    write errors, Ctrl-C and SIGTERM become one line on stderr and an exit code from :data:`EXIT_CODES`; any other
    error is a bug: one line, exit 1, the traceback in the log file."""

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        _RUN.update(log=None, verbose=False)
        writing_to(None)
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if main_thread else None
        if main_thread and previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _on_sigterm(os.getpid()))
        try:
            return main(argv) or 0
        except SystemExit:
            raise
        except BaseException as e:  # noqa: BLE001 - sorted below; anything unknown is reported as a bug
            try:
                line, code = error_line(e)
                if not code:
                    line, code = bug_report(e), EXIT_BUG
            except Terminated:
                line, code = TERMINATED, EXIT_TERMINATED
            except KeyboardInterrupt:  # Ctrl-C while an error was being reported still means interrupted
                line, code = INTERRUPTED, EXIT_INTERRUPTED
            print(line, file=sys.stderr, flush=True)
            return code
        finally:
            if main_thread and previous in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, previous or signal.SIG_DFL)

    return wrapper


class ArgumentParser(argparse.ArgumentParser):
    """The tools' parser: a usage error (unknown flag, missing argument, bad choice) is one line that names it
    and points to ``--help``, exit 2, instead of argparse's whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {one_line(message)}; see {self.prog} --help\n")


# ------------------------------------------------------------------------------------------------ output

def add_output_arguments(parser: argparse.ArgumentParser, *, overwrite: bool = True) -> None:
    """``--verbose`` (engine and library logs on stderr) and, for tools that write a folder, ``--overwrite``."""
    parser.add_argument("--verbose", action="store_true", help="show engine and library logs on stderr")
    if overwrite:
        parser.add_argument("--overwrite", action="store_true",
                            help="replace what --out holds when it is not this job's own (a resume needs no flag)")


class _LogFile(logging.FileHandler):
    """A log file made (with its folder) on the first record, so a run refused at the door leaves nothing. A log
    that cannot be written (a read-only or full disk) is dropped silently: the run's own write reports the cause."""

    def __init__(self, path: str | Path):
        super().__init__(path, encoding="utf-8", delay=True)

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()

    def handleError(self, record):
        pass


def quiet_logs(verbose: bool, log_file: str | Path | None = None) -> None:
    """Quiet by default: results on stdout, status lines once; engine (vLLM, transformers) logs and warnings go to
    ``log_file`` (when given) instead of the terminal, or to stderr with ``verbose``."""
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")  # vLLM's own handler prints to stdout
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()  # a log file of an earlier call in this process
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    _RUN.update(verbose=verbose, log=Path(log_file) if log_file is not None and not verbose else None)
    if verbose:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    elif log_file is not None:
        handler = _LogFile(log_file)
    else:
        handler = logging.NullHandler()
    handler.setFormatter(fmt)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    vllm = logging.getLogger("vllm")  # vLLM imported before this call keeps its own stdout handler
    for own in list(vllm.handlers):
        vllm.removeHandler(own)
    vllm.propagate = True
    logging.captureWarnings(True)
    _quiet_loguru(verbose, log_file)
    if not verbose:
        warnings.simplefilter("default")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _quiet_loguru(verbose: bool, log_file: str | Path | None) -> None:
    """lmms-eval logs through loguru, to stdout at import: the same rule (stderr with ``verbose``, else the log
    file). Call after importing ``lmms_eval.models``, which adds its own stdout sink."""
    try:
        from loguru import logger
    except ImportError:
        return
    logger.remove()
    if verbose:
        logger.add(sys.stderr, level="INFO")
    elif log_file is not None:
        path = Path(log_file)
        logger.add(lambda message: _append(path, message), level="INFO")


def _append(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
    except OSError:  # as a log file that cannot be written: the run's own write reports the cause
        pass


@contextmanager
def reading(what: str, fix: str) -> Iterator[None]:
    """Within the block, a file that cannot be parsed (see :func:`corrupt`) becomes one :class:`UserError` naming
    ``what`` and saying ``fix``."""
    try:
        yield
    except Exception as e:
        if not corrupt(e):
            raise
        raise UserError(f"{what}: cannot be read ({one_line(e)[:300]}); {fix}") from e
