"""The one settings system of the build and the trainer: ``KEY=VALUE`` pairs, YAML files and flags, all named by
the fields of a pydantic config; unknown keys list the valid ones, and ``--help`` lists the keys from the fields.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mmpr.errors import UserError, one_line


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (``0`` and ``-1`` are refused rather than read as "all")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value} (leave the flag out for the default)")
    return value


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
    if convert is positive_int:
        try:
            value = [positive_int(str(v)) for v in value] if many else positive_int(str(value))
        except argparse.ArgumentTypeError as e:
            raise UserError(f"{action.dest}: {e}") from e
    elif convert is not None:
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
