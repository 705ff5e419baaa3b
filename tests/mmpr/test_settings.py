import argparse
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mmpr.errors import UserError
from mmpr.settings import (
    add_field_flags,
    add_settings_argument,
    field_help,
    leaf_paths,
    parse_args,
    parse_pairs,
    settings_error,
    valid_keys,
    values_of,
    yaml_lines,
)


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(default=1, ge=1)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    inner: Inner = Field(default_factory=Inner)


def test_one_key_value_parser_types_values_and_names_the_flag():
    assert parse_pairs(["a=1", "b=[x,y]", "c=http://h:1/v1,http://h:2/v1", "d="], "--x") == {
        "a": 1, "b": ["x", "y"], "c": "http://h:1/v1,http://h:2/v1", "d": None}
    assert parse_pairs(["p=~/data/x.parquet"], "--data", typed=False) == {"p": "~/data/x.parquet"}
    with pytest.raises(UserError, match="--engine-args 'oops': expected KEY=VALUE"):
        parse_pairs(["oops"], "--engine-args")


def test_settings_error_is_one_line_and_lists_valid_keys_for_unknown_ones():
    with pytest.raises(ValidationError) as e:
        Settings.model_validate({"name": "x", "inner": {"n": 0}, "nmae": 1})
    line = settings_error(e.value, "run.yaml", Settings)
    assert "\n" not in line and line.startswith("run.yaml: invalid settings: ")
    assert "inner.n: Input should be greater than or equal to 1" in line
    assert "nmae: unknown key" in line and "(valid keys: name, inner, inner.n)" in line
    assert valid_keys(Settings) == ["name", "inner", "inner.n"]


def test_config_file_keys_are_flag_names_and_flags_win(tmp_path):
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-tokens", type=int, default=5)
    parser.add_argument("--engine-args", action="extend", nargs="+", default=[], metavar="KEY=VALUE")
    parser.add_argument("--verbose", action="store_true")
    config = tmp_path / "c.yaml"
    config.write_text("out: o\nmax_tokens: 64\nengine_args: {a: 1, b: x}\nverbose: true\n")
    args = parse_args(parser, ["--config", str(config), "--max-tokens", "8"])
    assert (args.out, args.max_tokens, args.engine_args, args.verbose) == ("o", 8, ["a=1", "b=x"], True)
    config.write_text("max_tokns: 64\n")
    with pytest.raises(UserError, match=r"unknown key max_tokns \(valid keys: out, max_tokens, engine_args, verbose"):
        parse_args(parser, ["--config", str(config)])
    config.write_text("max_tokens: 64\n")
    with pytest.raises(UserError, match="missing --out"):
        parse_args(parser, ["--config", str(config)])


class Job(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out: Path = Field(description="Where it goes.")
    inner: Inner = Field(default_factory=Inner)
    max_pairs_per_question: int = Field(default=15, ge=1, description="Pairs per question.")
    kind: Literal["a", "b"] = "a"
    tags: list[str] | None = None


def _job_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--config")
    add_field_flags(parser, Job, *Job.model_fields)
    return parser


def test_flags_are_the_fields_with_their_types_choices_and_help():
    parser = _job_parser()
    args = parser.parse_args(["--out", "o", "--n", "3", "--max-pairs-per-question", "2", "--kind", "b",
                              "--tags", "x", "y"])
    assert values_of(args, Job) == {"out": Path("o"), "inner": {"n": 3}, "max_pairs_per_question": 2, "kind": "b",
                                    "tags": ["x", "y"]}
    assert values_of(parser.parse_args([]), Job) == {}, "what is not given stays out (the YAML or the default)"
    assert leaf_paths(Job) == {"out": "out", "n": "inner.n", "max_pairs_per_question": "max_pairs_per_question",
                               "kind": "kind", "tags": "tags"}
    text = parser.format_help()
    assert "Pairs per question (default 15)" in text and "Where it goes (required)" in text
    assert field_help(Job.model_fields["kind"]) == "(default 'a')"
    for bad in (["--n", "0"], ["--kind", "c"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_yaml_keys_are_the_fields_a_group_as_a_mapping_dotted_or_by_its_fields_names(tmp_path):
    config = tmp_path / "job.yaml"
    for text in ("out: o\ninner: {n: 4}\n", "out: o\ninner.n: 4\n", "out: o\nn: 4\n"):
        config.write_text(text)
        args = parse_args(_job_parser(), ["--config", str(config)], model=Job)
        assert Job.model_validate(values_of(args, Job)).inner.n == 4, text


def test_an_old_key_name_works_with_one_deprecation_line(tmp_path, capsys):
    aliases = {"max_pairs": "max_pairs_per_question"}
    args = parse_args(_job_parser(), ["--out", "o", "--max-pairs", "3"], aliases=aliases)
    assert args.max_pairs_per_question == 3
    assert capsys.readouterr().err == "warning: command line: max_pairs is deprecated; use max_pairs_per_question\n"
    config = tmp_path / "job.yaml"
    config.write_text("out: o\nmax_pairs: 5\n")
    args = parse_args(_job_parser(), ["--config", str(config), "--max-pairs=4"], aliases=aliases)
    assert args.max_pairs_per_question == 4, "the command line wins over the file, under either name"
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and f"{config} line 2: max_pairs is deprecated" in err[1]


def test_errors_name_the_file_line_and_field(tmp_path):
    config = tmp_path / "job.yaml"
    config.write_text("out: o\n\ninner:\n  n: 0\n")
    with pytest.raises(UserError, match=r"job.yaml line 4: n: must be 1 or more, got 0"):
        parse_args(_job_parser(), ["--config", str(config)], model=Job)
    config.write_text("out: o\ntags: [a]\nkind: a\n")
    args = parse_args(_job_parser(), ["--config", str(config), "--max-pairs-per-question", "2"], model=Job)
    with pytest.raises(ValidationError) as e:
        Job.model_validate({**values_of(args, Job), "kind": "z", "max_pairs_per_question": 0})
    line = settings_error(e.value, str(config), origins=args.origins)
    assert "kind: Input should be 'a' or 'b' (line 3)" in line
    assert "max_pairs_per_question: Input should be greater than or equal to 1 (--max-pairs-per-question)" in line
    assert yaml_lines(config) == {"out": "line 1", "tags": "line 2", "kind": "line 3"}


def test_a_name_shared_by_two_fields_is_refused():
    class Clash(BaseModel):
        n: int = 1
        inner: Inner = Field(default_factory=Inner)

    with pytest.raises(TypeError, match="n names two fields"):
        leaf_paths(Clash)


def test_key_value_settings_are_named_as_the_flags_and_win_over_the_file(tmp_path, capsys):
    parser = _job_parser()
    add_settings_argument(parser)
    config = tmp_path / "job.yaml"
    config.write_text("out: o\nkind: a\ninner: {n: 2}\n")
    for items in (["inner.n=5"], ["n=5"]):
        args = parse_args(parser, ["--config", str(config), *items, "--kind", "b", "tags=[x, y]"], model=Job)
        job = Job.model_validate(values_of(args, Job))
        assert (job.inner.n, job.kind, job.tags) == (5, "b", ["x", "y"]), items
    assert args.origins["n"] == "n=" and args.origins["kind"] == "--kind"
    args = parse_args(parser, ["--config", str(config), "max_pairs=3"], model=Job, aliases={"max_pairs":
                                                                                          "max_pairs_per_question"})
    assert args.max_pairs_per_question == 3 and "max_pairs is deprecated" in capsys.readouterr().err
    with pytest.raises(UserError, match=r"^kind: given as --kind and as kind=...; give it once$"):
        parse_args(parser, ["--config", str(config), "kind=b", "--kind", "a"], model=Job)
    with pytest.raises(UserError, match=r"^command line: unknown key knd \(valid keys: .*kind"):
        parse_args(parser, ["--config", str(config), "knd=b"], model=Job)
    with pytest.raises(UserError, match=r"n: must be 1 or more, got 0"):
        parse_args(parser, ["--config", str(config), "n=0"], model=Job)
