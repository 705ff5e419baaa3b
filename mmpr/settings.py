"""The one settings system of the build and the trainer: ``KEY=VALUE`` pairs, YAML files and flags, all named by
the fields of a pydantic config (a flag ``--max-tokens`` is the field ``max_tokens``; a field of a nested group such
as ``sampling.n`` is also set by its own name ``n`` in a flag or a build YAML). ``--help`` is generated from the
fields (descriptions and defaults); unknown keys list the valid ones; an old name of a key keeps working with a
one-line deprecation (:func:`renamed`, the one place that says so); errors name the file, the line and the field.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

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


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``X | None``."""
    if get_origin(annotation) in (Union, type(int | None)):
        kept = [a for a in get_args(annotation) if a is not type(None)]
        return kept[0] if len(kept) == 1 else annotation
    return annotation


def _group(annotation: Any) -> type[BaseModel] | None:
    """The settings group (a nested pydantic model, or None in its place) a field holds, or None: a list of
    models (the build's ``sources``) is one setting, not a group."""
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def valid_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of ``model``, nested ones dotted (``sampling.n``)."""
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        if (group := _group(field.annotation)) is not None:
            keys += valid_keys(group, prefix + name + ".")
    return keys


def leaf_paths(model: type[BaseModel]) -> dict[str, str]:
    """The name each field is set by on the command line -> its dotted path: a top-level field by its name, a field
    of a nested group by its own name (``n`` -> ``sampling.n``)."""
    paths: dict[str, str] = {}
    for name, field in model.model_fields.items():
        group = _group(field.annotation)
        inner = {name: name} if group is None else {leaf: f"{name}.{path}" for leaf, path in leaf_paths(group).items()}
        clash = set(inner) & set(paths)
        if clash:  # a flag must name one field
            raise TypeError(f"{model.__name__}: {', '.join(sorted(clash))} names two fields; rename one")
        paths.update(inner)
    return paths


def _origin_of(loc: tuple, origins: Mapping[str, str]) -> str | None:
    """Where the value at ``loc`` was given: its dotted key, a group above it, or its own name."""
    names = [str(x) for x in loc]
    for end in range(len(names), 0, -1):
        if (where := origins.get(".".join(names[:end]))) is not None:
            return where
    return origins.get(names[-1]) if names else None


def settings_error(e: ValidationError, where: str, model: type[BaseModel] | None = None,
                   keys: Iterable[str] | None = None, origins: Mapping[str, str] | None = None) -> str:
    """One line for a settings error: each bad key with its reason and, from ``origins`` (key -> ``line 4`` or
    ``--flag``), where it was given; unknown keys list the valid ones."""
    parts, unknown = [], False
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        unknown |= err["type"] == "extra_forbidden"
        given = _origin_of(err["loc"], origins or {})
        parts.append(f"{loc}: {'unknown key' if err['type'] == 'extra_forbidden' else err['msg']}"
                     + (f" ({given})" if given else ""))
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


def yaml_lines(path: str | Path) -> dict[str, str]:
    """``line N`` of every key of a YAML mapping file (read by :func:`read_yaml_mapping`), nested keys dotted."""
    lines: dict[str, str] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = prefix + str(key.value).replace("-", "_")
                lines[name] = f"line {key.start_mark.line + 1}"
                walk(value, name + ".")

    walk(yaml.compose(Path(path).read_text(encoding="utf-8")), "")
    return lines


def renamed(key: str, aliases: Mapping[str, str], where: str) -> str:
    """``key``, or the key an old name now stands for, said in one line on stderr: the one place where a renamed
    setting (a YAML key, a flag, a ``KEY=VALUE``) is reported."""
    new = aliases.get(key)
    if new is None:
        return key
    print(f"warning: {where}: {key} is deprecated; use {new}", file=sys.stderr, flush=True)
    return new


def _default(field: FieldInfo) -> str:
    return "required" if field.is_required() else f"default {field.get_default(call_default_factory=True)!r}"


def field_help(field: FieldInfo) -> str:
    """A field's description and its default, for a flag's ``--help``."""
    return f"{(field.description or '').rstrip('.')} ({_default(field)})".lstrip()


def config_keys_help(model: type[BaseModel], *, title: str = "config keys (YAML --config file)") -> str:
    """A ``--help`` section listing the keys of ``model`` with their defaults and descriptions."""
    lines = [f"{title}:"]
    for name, field in model.model_fields.items():
        lines.append(f"  {name:<28} {_default(field)}" + (f"; {field.description}" if field.description else ""))
    return "\n".join(lines)


def add_field_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, model: type[BaseModel],
                    *names: str, **extra: Any) -> None:
    """A flag for each field ``names`` of ``model`` (a nested group: one per field of it), named by the field,
    with its type, choices and ``--help`` (description and default) from the field. Every flag defaults to None,
    so that what is not given comes from the YAML file or the field's default. ``extra`` goes to ``add_argument``
    (one field only)."""
    for name in names:
        field = model.model_fields[name]
        if (group := _group(field.annotation)) is not None:
            add_field_flags(parser, group, *group.model_fields)
            continue
        kind, kwargs = _unwrap(field.annotation), {}
        if get_origin(kind) is list:
            kind, kwargs["nargs"] = get_args(kind)[0], "+"
        elif get_origin(kind) is tuple and Ellipsis not in get_args(kind):
            kind, kwargs["nargs"] = get_args(kind)[0], len(get_args(kind))
        if get_origin(kind) is Literal:
            kwargs["choices"] = get_args(kind)
        elif kind is bool:  # --x and --no-x: a field that defaults to true can be turned off
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind is int:
            kwargs["type"] = positive_int if any(getattr(m, "ge", None) == 1 for m in field.metadata) else int
        elif kind in (float, Path):
            kwargs["type"] = kind
        parser.add_argument(flag_of(name), help=field_help(field), **{**kwargs, **extra})


def values_of(args: argparse.Namespace, model: type[BaseModel]) -> dict[str, Any]:
    """The settings of ``model`` that ``args`` holds (attributes named as :func:`leaf_paths` says, None left out),
    nested as ``model`` nests them."""
    data: dict[str, Any] = {}
    for leaf, path in leaf_paths(model).items():
        value = getattr(args, leaf, None)
        if value is None:
            continue
        *groups, last = path.split(".")
        target = data
        for name in groups:
            target = target.setdefault(name, {})
        target[last] = value
    return data


SETTINGS_DEST = "settings"


def _settable(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions
            if a.dest not in ("help", "config", "version_info", "origins", SETTINGS_DEST)
            and not isinstance(a, argparse._HelpAction)}


def flag_keys(parser: argparse.ArgumentParser) -> list[str]:
    """The YAML keys a ``--config`` file may hold: every flag's name with ``_`` for ``-``."""
    return sorted(_settable(parser))


def _from_yaml(action: argparse.Action, value: Any) -> Any:
    """A YAML value in the shape argparse would have produced for ``action``."""
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction | argparse.BooleanOptionalAction):
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


def _renamed_flags(argv: list[str], aliases: Mapping[str, str]) -> list[str]:
    """``argv`` with old flag names (``--max-pairs``) replaced by the flags of their keys, each said once."""
    out = []
    for token in argv:
        flag, sep, value = token.partition("=")
        key = flag[2:].replace("-", "_") if flag.startswith("--") else None
        if key in aliases:
            token = flag_of(renamed(key, aliases, "command line")) + sep + value
        out.append(token)
    return out


def flag_of(key: str) -> str:
    """The command-line flag of a setting: ``max_tokens`` -> ``--max-tokens``."""
    return "--" + key.replace("_", "-")


def given_twice(key: str) -> str:
    """The one line refusing a setting given both as its flag and as ``key=value``."""
    return f"{key}: given as {flag_of(key)} and as {key}=...; give it once"


def _by_flag_name(data: Mapping[Any, Any], model: type[BaseModel] | None, aliases: Mapping[str, str],
                  origin: Callable[[str], str], where: str) -> dict[str, tuple]:
    """Settings keyed as given (a YAML mapping, ``KEY=VALUE`` items) -> ``{flag name: (value, origin)}``: old
    names renamed, and the fields of a nested group of ``model`` (``sampling: {n: 8}`` or ``sampling.n: 8``) by
    their own names, as their flags are named. ``origin(key)`` says where a key was given."""
    groups = {} if model is None else {n: g for n, f in model.model_fields.items()
                                       if (g := _group(f.annotation)) is not None}
    out: dict[str, tuple] = {}
    for raw, value in data.items():
        key = str(raw).replace("-", "_")
        given = origin(key)
        key = renamed(key, aliases, f"{where} {given}".strip())
        group, dot, leaf = key.partition(".")
        if group in groups and dot:
            out[leaf] = (value, given)
        elif key in groups and isinstance(value, dict):
            out.update({str(k): (v, origin(f"{key}.{k}") or given) for k, v in value.items()})
        else:
            out[key] = (value, given)
    return out


def _yaml_settings(path: str | Path, model: type[BaseModel] | None, aliases: Mapping[str, str]) -> dict[str, tuple]:
    """The keys of a ``--config`` file -> ``(value, line)`` (:func:`_by_flag_name`)."""
    data = read_yaml_mapping(path, "--config")  # first: it says what is wrong with a file that is not YAML
    lines = yaml_lines(path)
    return _by_flag_name(data, model, aliases, lambda k: lines.get(k, ""), str(path))


def add_settings_argument(parser: argparse.ArgumentParser) -> None:
    """Positional ``KEY=VALUE`` settings, each named as its flag is (``max_tokens=512``, ``sampling.n=8``), which
    :func:`parse_args` applies as if the flag had been given."""
    parser.add_argument(SETTINGS_DEST, nargs="*", default=[], metavar="KEY=VALUE",
                        help="settings named as the flags are, e.g. max_tokens=512 sampling.n=8 (values read as YAML)")


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None, config: str | Path | None = None, *,
               model: type[BaseModel] | None = None, aliases: Mapping[str, str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; ``KEY=VALUE`` items (:func:`add_settings_argument`) set the flags they name, and with
    ``--config FILE`` (a parser flag) its YAML keys, which are the flag names (for ``model``, its field names; a
    nested group as a mapping too), fill in what the command line leaves out. Old names in ``aliases`` (old ->
    new) work, said once. Unknown keys list the valid ones; a key given both as a flag and as ``KEY=VALUE`` is
    refused; a required flag may come from any of them. ``args.origins`` says where each key was given (``line
    N``, ``--flag``, ``key=``), for :func:`settings_error`."""
    aliases = aliases or {}
    argv = _renamed_flags(sys.argv[1:] if argv is None else list(argv), aliases)
    args = _relaxed(parser).parse_intermixed_args(argv)
    given = set(vars(_probe(parser).parse_intermixed_args(argv))) - {SETTINGS_DEST}
    path = getattr(args, "config", None) if config is None else config
    actions = _settable(parser)
    args.origins = {key: flag_of(key) for key in given}
    pairs = _by_flag_name(parse_pairs(getattr(args, SETTINGS_DEST, None) or [], "KEY=VALUE"), model, aliases,
                          lambda k: f"{k}=", "command line")
    unknown_keys(pairs, actions, "command line")
    for key, (value, origin) in pairs.items():
        if key in given:
            raise UserError(given_twice(key))
        try:
            setattr(args, key, _from_yaml(actions[key], value))
        except UserError as e:
            raise UserError(f"command line: {e}") from e
        args.origins[key] = origin
        given.add(key)
    if path is not None:
        data = _yaml_settings(path, model, aliases)
        unknown_keys(data, actions, str(path))
        for key, (value, line) in data.items():
            if key not in given:
                try:
                    setattr(args, key, _from_yaml(actions[key], value))
                except UserError as e:
                    raise UserError(f"{path} {line}: {e}") from e
                args.origins[key] = line
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
