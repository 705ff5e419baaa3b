import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from datasets import load_dataset

from mmpr.build import BuildConfig, cli, process_chunk, run, runner
from mmpr.build.cli import config_from_args
from mmpr.dataset_writer import read_manifest
from mmpr.engines import Completion, EngineError
from mmpr.errors import UserError
from mmpr.schemas import SourceItem
from mmpr.testing import tiny_images


class ScriptedEngine:
    """Answers like a model would, from the request's seed only: 'reasoning ... Final answer: <0-3>'."""

    name = "scripted"

    def __init__(self, fail_on=(), crash_after_calls=None):
        self.requests, self.calls = [], 0
        self.fail_on, self.crash_after_calls = fail_on, crash_after_calls

    def generate(self, requests, sampling):
        self.calls += 1
        if self.crash_after_calls is not None and self.calls > self.crash_after_calls:
            raise KeyboardInterrupt("killed")
        self.requests += requests
        out = []
        for r in requests:
            if any(f in r.key for f in self.fail_on):
                out.append(EngineError("engine_error", "boom"))
                continue
            rng = random.Random(r.seed)
            if r.prefix is not None:
                out.append([Completion(" and then something else entirely.", 5, 6, "stop")])
                continue
            out.append([Completion(f"I look at the picture and count the shapes. Final answer: {rng.randrange(4)}"
                                   if rng.random() < 0.8 else "no idea", 20, 12, "stop") for _ in range(r.n)])
        return out

    def close(self):
        pass


@pytest.fixture
def source_file(tmp_path):
    imgs = tiny_images(3)
    rows = []
    for i in range(12):
        name = f"img{i % 3}.png"
        imgs[i % 3].save(tmp_path / name)
        row = {"id": f"q{i}", "image": name, "question": f"How many shapes? ({i})\nAnswer the question using a "
               "single word or phrase.", "answer": str(i % 4), "answer_type": "integer"}
        if i >= 10:
            row.update(answer=None, answer_type=None, question=f"Describe image {i}.")
        rows.append(row)
    rows.append({"id": "bad", "image": "missing.png", "question": "q", "answer": "1", "answer_type": "integer"})
    path = tmp_path / "src.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cfg(tmp_path, source_file, **kw):
    return BuildConfig.model_validate({
        "model": str(tmp_path / "model"), "out": tmp_path / "out", "engine": "transformers",
        "sources": [{"name": "generic", "path": str(source_file), "alias": "toy",
                     "columns": {"id": "id", "answer_type": "answer_type"}}],
        "sampling": {"n": 6, "max_tokens": 32}, "batch_size": 4, **kw})


@pytest.fixture
def fake_model(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")


@pytest.fixture
def scripted(monkeypatch):
    engines = []

    def make(name, model, **args):
        engine = ScriptedEngine(**scripted.options)
        engines.append(engine)
        return engine

    scripted.options = {}
    scripted.engines = engines
    monkeypatch.setattr(runner, "make_engine", make)
    return scripted


def test_process_chunk_routes_prompts_and_continues_without_images(tmp_path):
    cfg = BuildConfig(model="m", out=tmp_path, sources=[{"name": "sample"}], sampling={"n": 3})
    with_answer = SourceItem(id="a/1", source="a", category="mathematics", question="How many?\nAnswer the "
                             "question using a single word or phrase.", images=["/i.png"], answer="2",
                             answer_type="integer")
    open_ended = SourceItem(id="a/2", source="a", category="general_vqa", question="<image>\nDescribe it.",
                            images=["/i.png"], answer=None, answer_type=None)
    vqa = with_answer.model_copy(update={"id": "a/3", "category": "general_vqa"})
    engine = ScriptedEngine()
    records = process_chunk([with_answer, open_ended, vqa], engine, cfg)
    first, second, third = engine.requests[:3]
    assert "Final answer:" in first.question and "single word" not in first.question and first.n == 3
    assert second.question == "<image>\nDescribe it." and second.n == 1 and second.images == ("/i.png",)
    assert [r.route for r in records] == ["correctness", "dropout_ntp", "dropout_ntp"]
    continuation = engine.requests[3]
    assert continuation.images == () and continuation.question == "Describe it."
    assert continuation.prefix and records[1].responses[0].text.startswith(continuation.prefix)
    assert records[1].pairs[0].rejected == continuation.prefix + " and then something else entirely."
    assert len(records[0].judgements) == 3


def test_engine_error_on_one_request_skips_only_it(tmp_path):
    cfg = BuildConfig(model="m", out=tmp_path, sources=[{"name": "sample"}], sampling={"n": 2})
    items = [SourceItem(id=f"a/{i}", source="a", category="science", question="q", answer="1",
                        answer_type="integer") for i in range(3)]
    records = process_chunk(items, ScriptedEngine(fail_on=("a/1",)), cfg)
    assert [r.outcome == "skipped" for r in records] == [False, True, False]
    assert records[1].problem.code == "engine_error" and "a/1" in records[1].problem.message


def test_an_unscorable_item_is_skipped_and_reported_not_a_crash(tmp_path):
    cfg = BuildConfig(model="m", out=tmp_path, sources=[{"name": "sample"}], sampling={"n": 2})
    good = SourceItem(id="a/0", source="a", category="science", question="q", answer="B", answer_type="multiple_choice",
                      choices=["1", "2", "3"])
    bad = good.model_copy(update={"id": "a/1", "answer": "7"})  # names none of the options
    records = process_chunk([good, bad], ScriptedEngine(), cfg)
    assert [r.outcome == "skipped" for r in records] == [False, True]
    assert records[1].problem.code == "unscorable" and "names none of the choices" in records[1].problem.message


def test_build_writes_a_dataset_with_summary_and_skips_bad_items(tmp_path, source_file, fake_model, scripted):
    summary = run(_cfg(tmp_path, source_file), progress=False)
    assert summary.questions == 12 and summary.responses == 10 * 6 + 2
    assert summary.skipped.counts == {"image_unreadable": 1}
    assert "missing.png" in str(summary.skipped.items[0])
    manifest = read_manifest(tmp_path / "out")
    assert manifest.num_pairs == sum(summary.pairs.values()) > 0
    assert manifest.generator.sampling.n == 6 and manifest.prompt.name == "mpo_cot"
    ds = load_dataset(str(tmp_path / "out"), split="train")
    assert len(ds) == manifest.num_pairs
    assert set(ds["kind"]) <= {"correctness", "format", "dropout_ntp"}
    assert all(len(images) == 1 for images in ds["images"])


def test_a_killed_build_resumes_to_the_same_dataset(tmp_path, source_file, fake_model, scripted):
    whole = run(_cfg(tmp_path, source_file, out=tmp_path / "whole"), progress=False)
    scripted.options = {"crash_after_calls": 2}
    with pytest.raises(KeyboardInterrupt):
        run(_cfg(tmp_path, source_file), progress=False)
    chunks = sorted((tmp_path / "out" / ".mmpr-work" / "chunks").glob("*.jsonl"))
    assert 0 < len(chunks) < 3
    scripted.options = {}
    resumed = run(_cfg(tmp_path, source_file), progress=False)
    assert sum(len(e.requests) for e in scripted.engines[-1:]) < sum(len(e.requests) for e in scripted.engines[:1])
    assert read_manifest(tmp_path / "out").content_hash == read_manifest(tmp_path / "whole").content_hash
    assert resumed.pairs == whole.pairs


def test_shards_merge_into_the_whole(tmp_path, source_file, fake_model, scripted):
    run(_cfg(tmp_path, source_file, out=tmp_path / "whole", batch_size=100), progress=False)
    for i in range(2):
        run(_cfg(tmp_path, source_file, out=tmp_path / f"s{i}", shard=f"{i}/2", batch_size=100), progress=False)
    assert not (tmp_path / "s0" / "manifest.json").exists()
    runner.merge([tmp_path / "s0", tmp_path / "s1"], tmp_path / "merged")
    assert read_manifest(tmp_path / "merged").content_hash == read_manifest(tmp_path / "whole").content_hash
    with pytest.raises(ValueError, match="a full set is 0/2, 1/2"):
        runner.merge([tmp_path / "s0"], tmp_path / "m2")


def test_rerun_with_other_settings_is_refused(tmp_path, source_file, fake_model, scripted):
    run(_cfg(tmp_path, source_file), progress=False)
    with pytest.raises(ValueError, match=r"other settings \(sampling\)"):
        run(_cfg(tmp_path, source_file, sampling={"n": 7}), progress=False)


def test_fails_fast_on_unknown_source_and_wrong_model(tmp_path, source_file, fake_model, scripted):
    with pytest.raises(ValueError, match="unknown source 'nope'; available: ai2d"):
        run(_cfg(tmp_path, source_file, sources=[{"name": "nope"}]), progress=False)
    with pytest.raises(UserError, match="is not a model folder"):
        run(_cfg(tmp_path, source_file, model=str(tmp_path)), progress=False)
    assert scripted.engines == []


def test_cli_flags_override_the_yaml_config(tmp_path):
    config = tmp_path / "b.yaml"
    config.write_text("model: m\nout: o\nsources: [{name: sample}]\nn: 4\ntemperature: 0.7\n"
                      "engine_args: {max_model_len: 4096}\nmax_pairs: 3\n")
    args = cli.parse_build_args(["--config", str(config), "--n", "2", "--engine-arg",
                                           "tensor_parallel_size=2", "--engine-args", "endpoints=http://a,http://b",
                                           "--sources", "sample", "chartqa=/data/chartqa", "--limit", "5"])
    cfg = config_from_args(args)
    assert cfg.sampling.n == 2 and cfg.sampling.temperature == 0.7
    assert cfg.engine_args == {"tensor_parallel_size": 2, "endpoints": "http://a,http://b"}  # flags win
    assert cfg.max_pairs_per_question == 3
    assert [(s.name, s.path, s.limit) for s in cfg.sources] == [("sample", None, 5), ("chartqa", "/data/chartqa", 5)]


def test_cli_key_value_settings_are_the_flags_by_name(tmp_path):
    config = tmp_path / "b.yaml"
    config.write_text("model: m\nout: o\nsources: [{name: sample}]\nn: 4\nmax_tokens: 64\n")
    args = cli.parse_build_args(["--config", str(config), "max_tokens=128", "sampling.temperature=0.5",
                                 "engine_args={max_model_len: 8192}", "--n", "2", "max_pairs=3", "sources=[sample]"])
    cfg = config_from_args(args)
    assert (cfg.sampling.max_tokens, cfg.sampling.temperature, cfg.sampling.n) == (128, 0.5, 2)
    assert cfg.engine_args == {"max_model_len": 8192} and cfg.max_pairs_per_question == 3
    assert [s.name for s in cfg.sources] == ["sample"]
    flags = ["--model", "m", "--out", "o", "--sources", "sample", "--max-tokens", "128", "--temperature", "0.5",
             "--engine-args", "max_model_len=8192", "--n", "2", "--max-pairs-per-question", "3"]
    assert config_from_args(cli.parse_build_args(flags)) == cfg


def test_cli_reports_bad_settings_by_field(tmp_path, capsys):
    config = tmp_path / "b.yaml"
    config.write_text("model: m\nout: o\nsources: [{name: sample}]\nn: 0\n")
    assert cli.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "n: must be 1 or more, got 0" in err
    config.write_text("model: m\nbogus: 1\n")
    assert cli.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown key bogus (valid keys: " in err and "max_tokens" in err


@pytest.mark.slow
def test_vllm_build_killed_midway_resumes_to_the_uninterrupted_result(tmp_path):
    """The real engine in a real process, killed with SIGKILL after its first chunk is on disk."""
    common = [sys.executable, "-m", "mmpr.build", "--model", "tiny:qwen2_vl", "--sources", "sample", "--n", "4",
              "--max-tokens", "48", "--batch-size", "6"]
    env = dict(os.environ)
    assert subprocess.run(common + ["--out", str(tmp_path / "whole")], env=env, capture_output=True).returncode == 0
    proc = subprocess.Popen(common + ["--out", str(tmp_path / "out")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    chunks = tmp_path / "out" / ".mmpr-work" / "chunks"
    deadline = time.monotonic() + 300
    while not list(chunks.glob("*.jsonl")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    done = len(list(chunks.glob("*.jsonl")))
    assert 1 <= done < 5, "killed after the first chunk and before the last"
    result = subprocess.run(common + ["--out", str(tmp_path / "out")], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_manifest(tmp_path / "out").content_hash == read_manifest(tmp_path / "whole").content_hash
    assert read_manifest(tmp_path / "out").num_pairs > 0


def test_release_layout_is_written_on_request(tmp_path, source_file, fake_model, scripted):
    from mmpr.problems import ProblemLog
    from mmpr.release import iter_subset, read_meta

    run(_cfg(tmp_path, source_file, release_out=tmp_path / "release"), progress=False)
    log = ProblemLog()
    pairs = [p for spec in read_meta(tmp_path / "release") for p in iter_subset(spec, log)]
    assert len(pairs) == read_manifest(tmp_path / "out").num_pairs and log.total == 0
    assert {p.kind for p in pairs} <= {"correctness", "format", "dropout_ntp"}


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "build").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_build_configs_are_valid(path):
    extra = ["--shard", "0/4", "--out", "runs/shard0"] if path.name == "shard.yaml" else []
    cfg = config_from_args(cli.parse_build_args(["--config", str(path), *extra]))
    assert cfg.sources and cfg.out


def test_the_demo_config_is_the_readme_main_command():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "python -m mmpr.build --model tiny:qwen2_vl" in line)
    flags = command.split("python -m mmpr.build", 1)[1].split()
    from_flags = config_from_args(cli.parse_build_args(flags))
    from_yaml = config_from_args(cli.parse_build_args(["--config", str(CONFIGS[0].with_name("demo.yaml"))]))
    assert from_yaml == from_flags


def test_every_flag_is_a_yaml_key_and_help_lists_them(capsys):
    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = capsys.readouterr().out
    keys = text.split("YAML keys:")[1]
    for key in ("engine_args", "max_tokens", "max_pairs", "ntp_ratio", "release_out", "overwrite", "repo_id"):
        assert key in keys
