"""The front door every command goes through: one line on stderr for every bad input, documented exit codes.

Each tool's ``main`` is wrapped by :func:`front_door`, which turns a :class:`mmpr.errors.UserError` (and a missing
file, a corrupt file, an invalid setting, an unreachable server, Ctrl-C) into one line that names the thing and
says what to do, with the exit code listed in :data:`EXIT_CODES`. Anything else is a bug and keeps its traceback.
The helpers here are the one ``KEY=VALUE`` parser, the one settings-error line (unknown keys list the valid
ones), the ``--help`` list of config keys, and quiet-by-default logging (engine logs to a file or ``--verbose``).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import BaseModel, ValidationError

from mmpr.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_UNREACHABLE, UserError

EXIT_CODES = ("exit codes: 0 done; 1 ran but made nothing, or left some of its work undone (the reasons are "
              "printed); 2 bad input (a missing or "
              "corrupt file, an invalid setting, an occupied output folder); 3 a server did not answer; "
              "130 interrupted (rerun the same command to resume)")
INTERRUPTED = "interrupted; rerun the same command to resume"


def one_line(text: str) -> str:
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _unreachable(e: BaseException) -> bool:
    names = {c.__name__ for c in type(e).__mro__}
    return isinstance(e, ConnectionError) or bool(names & {"APIConnectionError", "ConnectError", "ConnectTimeout",
                                                            "NewConnectionError", "MaxRetryError"})


def corrupt(e: BaseException) -> bool:
    """A file's content could not be parsed (JSON, YAML, text encoding, parquet/arrow, image)."""
    names = {c.__name__ for c in type(e).__mro__}
    return isinstance(e, json.JSONDecodeError | yaml.YAMLError | UnicodeDecodeError) or bool(
        names & {"ArrowInvalid", "ArrowException", "DatasetGenerationError", "UnidentifiedImageError"})


def error_line(e: BaseException) -> tuple[str, int]:
    """The line to print for ``e`` and the exit code; ``("", 0)`` for an error that is a bug."""
    if isinstance(e, UserError):
        return f"error: {one_line(e)}", e.exit_code
    if isinstance(e, KeyboardInterrupt):
        return INTERRUPTED, EXIT_INTERRUPTED
    if isinstance(e, ValidationError):
        return f"error: {settings_error(e, 'settings')}", EXIT_BAD_INPUT
    if isinstance(e, FileNotFoundError | NotADirectoryError | IsADirectoryError | PermissionError):
        if e.filename:
            return f"error: {e.filename}: {e.strerror or 'cannot be opened'}; check the path", EXIT_BAD_INPUT
        return f"error: {one_line(e)}", EXIT_BAD_INPUT
    if _unreachable(e):
        return f"error: a server did not answer ({one_line(e) or type(e).__name__}); start it or check the " \
               f"address", EXIT_UNREACHABLE
    if corrupt(e):
        return f"error: corrupt input: {one_line(e)}; fix or remove that file", EXIT_BAD_INPUT
    if isinstance(e, ValueError):  # the library's older bad-value errors, each already naming its thing
        return f"error: {one_line(e)}", EXIT_BAD_INPUT
    return "", 0


def front_door(main: Callable[[list[str] | None], int | None]) -> Callable[[list[str] | None], int]:
    """Wrap a CLI ``main(argv)``: user errors, missing or corrupt files, settings errors, unreachable servers
    and Ctrl-C become one line on stderr and an exit code from :data:`EXIT_CODES`."""

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        try:
            return main(argv) or 0
        except SystemExit:
            raise
        except BaseException as e:  # noqa: BLE001 - sorted below; bugs are re-raised with their traceback
            try:
                line, code = error_line(e)
                if not code:
                    raise
            except KeyboardInterrupt:  # Ctrl-C while an error was being reported still means interrupted
                line, code = INTERRUPTED, EXIT_INTERRUPTED
            print(line, file=sys.stderr, flush=True)
            return code

    return wrapper


class ArgumentParser(argparse.ArgumentParser):
    """The tools' parser: a usage error (unknown flag, missing argument, bad choice) is one line that names it
    and points to ``--help``, exit 2, instead of argparse's whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {one_line(message)}; see {self.prog} --help\n")


# ------------------------------------------------------------------------------------------------ settings

def parse_value(text: str) -> Any:
    """A value as YAML reads it (``8`` -> 8, ``[a,b]`` -> list, ``true`` -> True), else the text itself."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_pairs(items: Iterable[str], flag: str, *, typed: bool = True) -> dict[str, Any]:
    """``KEY=VALUE`` items -> a dict (values parsed as YAML unless ``typed=False``); a malformed item is a
    :class:`UserError` naming ``flag``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip()] = parse_value(value) if typed else value
    return out


def valid_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of ``model``, nested ones dotted (``sampling.n``)."""
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        for sub in getattr(field.annotation, "__args__", ()) or (field.annotation,):
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                keys += valid_keys(sub, prefix + name + ".")
    return keys


def settings_error(e: ValidationError, where: str, model: type[BaseModel] | None = None,
                   keys: Iterable[str] | None = None) -> str:
    """One line for a settings error: each bad key with its reason; unknown keys list the valid ones."""
    parts, unknown = [], False
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        unknown |= err["type"] == "extra_forbidden"
        parts.append(f"{loc}: {'unknown key' if err['type'] == 'extra_forbidden' else err['msg']}")
    line = f"{where}: invalid settings: " + "; ".join(parts)
    if unknown and (keys or model):
        line += " (valid keys: " + ", ".join(keys or valid_keys(model)) + ")"
    return line


def unknown_keys(given: Iterable[str], valid: Iterable[str], where: str) -> None:
    """A :class:`UserError` listing the valid keys if any key in ``given`` is not one of them."""
    valid = list(valid)
    bad = [k for k in given if k not in valid]
    if bad:
        raise UserError(f"{where}: unknown key {', '.join(bad)} (valid keys: {', '.join(valid)})")


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping; a missing, corrupt or non-mapping file is one :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path}: no such file; check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"{what} {path}: not valid YAML ({one_line(e)[:200]}); fix the file") from e
    if not isinstance(data, dict):
        raise UserError(f"{what} {path}: expected a mapping of settings (key: value lines)")
    return data


def config_keys_help(model: type[BaseModel], *, title: str = "config keys (YAML --config file)") -> str:
    """A ``--help`` section listing the keys of ``model`` with their defaults and descriptions."""
    lines = [f"{title}:"]
    for name, field in model.model_fields.items():
        default = "required" if field.is_required() else f"default {field.get_default(call_default_factory=True)!r}"
        lines.append(f"  {name:<28} {default}" + (f"; {field.description}" if field.description else ""))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ output

def add_output_arguments(parser: argparse.ArgumentParser, *, overwrite: bool = True) -> None:
    """``--verbose`` (engine and library logs on stderr) and, for tools that write a folder, ``--overwrite``."""
    parser.add_argument("--verbose", action="store_true", help="show engine and library logs on stderr")
    if overwrite:
        parser.add_argument("--overwrite", action="store_true",
                            help="replace what --out holds when it is not this job's own (a resume needs no flag)")


class _LogFile(logging.FileHandler):
    """A log file made (with its folder) on the first record, so a run refused at the door leaves nothing."""

    def __init__(self, path: str | Path):
        super().__init__(path, encoding="utf-8", delay=True)

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def quiet_logs(verbose: bool, log_file: str | Path | None = None) -> None:
    """Quiet by default: results on stdout, status lines once; engine (vLLM, transformers) logs and warnings go to
    ``log_file`` (when given) instead of the terminal, or to stderr with ``verbose``."""
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")  # vLLM's own handler prints to stdout
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()  # a log file of an earlier call in this process
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
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
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


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


@contextmanager
def new_folder(path: str | Path, *, only: type[BaseException] | tuple = BaseException,
               unless: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Remove ``path`` again if this block created it and then failed with ``only`` (any error by default), so a
    failed run leaves no half-made folder; a resumable job passes ``only=UserError`` so that the work of an
    interrupted or crashed run stays for the rerun, and ``unless(path)`` true keeps it too (it holds results)."""
    path = Path(path)
    existed = path.exists()
    try:
        yield path
    except BaseException as e:
        if not existed and path.exists() and isinstance(e, only) and not (unless is not None and unless(path)):
            shutil.rmtree(path, ignore_errors=True)
        raise


# ------------------------------------------------------------------------------------------------ flags = keys

def _settable(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions
            if a.dest not in ("help", "config", "version_info") and not isinstance(a, argparse._HelpAction)}


def flag_keys(parser: argparse.ArgumentParser) -> list[str]:
    """The YAML keys a ``--config`` file may hold: every flag's name with ``_`` for ``-``."""
    return sorted(_settable(parser))


def _from_yaml(action: argparse.Action, value: Any) -> Any:
    """A YAML value in the shape argparse would have produced for ``action``."""
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if not isinstance(value, bool):
            raise UserError(f"{action.dest}: expected true or false, got {value!r}")
        return value
    if isinstance(value, dict) and "=" in str(action.metavar or ""):
        value = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in value.items()]
    many = action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction | argparse._ExtendAction)
    if many and not isinstance(value, list):
        value = [value]
    convert = action.type if callable(action.type) else None
    if convert is not None:
        value = [convert(v) if isinstance(v, str) else v for v in value] if many else (
            convert(value) if isinstance(value, str) else value)
    if action.choices is not None:
        for v in value if many else [value]:
            if v not in action.choices:
                raise UserError(f"{action.dest}: {v!r} is not one of {', '.join(map(str, action.choices))}")
    return value


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None,
               config: str | Path | None = None) -> argparse.Namespace:
    """Parse ``argv``; with ``--config FILE`` (a parser flag) its YAML keys, which are the flag names, fill in
    what the command line leaves out. Unknown keys list the valid ones; a required flag may come from either."""
    relaxed = _relaxed(parser)
    args = relaxed.parse_args(argv)
    given = set(vars(_probe(parser).parse_args(argv)))
    path = getattr(args, "config", None) if config is None else config
    actions = _settable(parser)
    if path is not None:
        data = read_yaml_mapping(path, "--config")
        unknown_keys([k.replace("-", "_") for k in data], actions, str(path))
        for key, value in data.items():
            key = key.replace("-", "_")
            if key not in given:
                setattr(args, key, _from_yaml(actions[key], value))
    missing = [a for a in parser._actions if a.required and getattr(args, a.dest, None) in (None, [])]
    if missing:
        names = ", ".join(a.option_strings[0] if a.option_strings else a.dest for a in missing)
        raise UserError(f"missing {names}: give it on the command line or in the --config file")
    return args


def _relaxed(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    import copy

    relaxed = copy.deepcopy(parser)
    for action in relaxed._actions:
        if action.required:
            action.required = False
            if not action.option_strings and action.nargs is None:
                action.nargs = "?"
    return relaxed


def _probe(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    probe = _relaxed(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return probe
