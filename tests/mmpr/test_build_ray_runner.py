import os
import subprocess
import sys
import threading
import time

import psutil
import pytest

from mmpr.build import BuildConfig, run
from mmpr.build.executor import ClusterOptions, ReplicaStats
from mmpr.build.ray_runner import ActorPool, RayBuildSummary
from mmpr.build.runner import open_build, pending
from mmpr.dataset_writer import read_manifest
from mmpr.errors import NothingMade
from mmpr.store import ItemRecord
from tests.mmpr.conftest import RAY_ENV

ray = pytest.importorskip("ray")

# the shipped sample (questions with and without ground truth: both routes), cut into three chunks
CFG = {"model": "tiny:qwen2_vl", "sources": [{"name": "sample"}], "sampling": {"n": 2, "max_tokens": 48},
       "batch_size": 10}
CLI = ["--model", "tiny:qwen2_vl", "--sources", "sample", "--n", "2", "--max-tokens", "48", "--batch-size", "10"]


def _cfg(out, **kw):
    return BuildConfig.model_validate({**CFG, "out": out, **kw})


def test_pending_chunks_are_the_local_chunks_not_yet_on_disk(tmp_path):
    cfg = BuildConfig.model_validate({"model": "m", "out": tmp_path, "sources": [{"name": "sample"}],
                                      "batch_size": 7, "engine": "openai"})
    build = open_build(cfg, "m")
    chunks = list(build.chunks())
    build.store.write_chunk(build.shard_name, 1, [ItemRecord(item=chunks[1][1][0], route="correctness",
                                                              prompt="p", outcome="pending")])
    saved = []
    rows = ActorPool.rows(pending(open_build(cfg, "m"), saved.append))
    assert [len(records) for records in saved] == [1]
    assert [r["index"] for r in rows] == [i for i, _ in chunks if i != 1]
    first = rows[0]["items"].splitlines()
    assert first == [item.model_dump_json() for item in chunks[0][1]]


def test_summary_adds_replica_throughput_and_failed_chunks():
    summary = RayBuildSummary(questions=4, replicas={"node/a": ReplicaStats(chunks=2, questions=4, samples=16,
                                                                            seconds=4.0)}, failed_chunks=[3])
    text = summary.render()
    assert "node/a" in text and "4.0" in text.splitlines()[-2]
    assert "failed chunks: 1 (3)" in text and "rerun" in text


@pytest.mark.slow
def test_a_failing_request_is_reported_like_an_engine_error(tmp_path, cluster):

    cfg = _cfg(tmp_path / "out", model="served-model", engine="openai", sources=[{"name": "sample", "limit": 4}],
               engine_args={"endpoints": "http://127.0.0.1:9/v1", "max_retries": 0, "timeout": 5})
    seen = []
    with pytest.raises(NothingMade, match="no pairs to write"):
        run(cfg, executor=ActorPool(), progress=False, check=seen.append)
    assert seen[0].skipped.counts == {"engine_unreachable": 4} and sum(seen[0].pairs.values()) == 0
    assert not (tmp_path / "out").exists(), "a build that made nothing leaves no folder"


def _kill_replica_after_first_chunk(out, timeout=300):
    """SIGKILL the engine replica (a descendant of this process, which owns the Ray instance) after it saved a
    chunk and before the build ends."""
    _kill_replica_after_first_chunk.killed = False
    chunks = out / ".mmpr-work" / "chunks"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not list(chunks.glob("*.jsonl")):
        time.sleep(0.05)
    for proc in psutil.Process().children(recursive=True):
        try:
            if "SamplingReplica" in " ".join(proc.cmdline()) and len(list(chunks.glob("*.jsonl"))) < 3:
                proc.kill()
                _kill_replica_after_first_chunk.killed = True
        except psutil.NoSuchProcess:
            continue


@pytest.mark.slow
def test_ray_runner_matches_the_local_runner_even_after_a_driver_kill(tmp_path, cluster):
    """The real vLLM engine on the tiny model: local build; ray build (in this process) whose replica is killed
    mid-run; ray build from the CLI whose driver is killed with SIGKILL after its first chunk is on disk, then
    rerun. All three datasets are the same."""

    run(_cfg(tmp_path / "local"), progress=False)
    local = read_manifest(tmp_path / "local")
    assert local.num_pairs > 0  # the tiny model's pairs come from the DropoutNTP route: the second engine call

    # the replica's process is killed with SIGKILL once the first chunk is saved: Ray restarts it, retries
    killed = threading.Thread(target=_kill_replica_after_first_chunk, args=(tmp_path / "ray",), daemon=True)
    killed.start()
    summary = run(_cfg(tmp_path / "ray"), executor=ActorPool(ClusterOptions(replicas=1)), progress=False)
    killed.join(timeout=5)
    assert _kill_replica_after_first_chunk.killed, "a replica was killed mid-run"
    assert read_manifest(tmp_path / "ray").content_hash == local.content_hash
    assert sum(r.chunks for r in summary.replicas.values()) == 3 and not summary.failed_chunks

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "mmpr.build", "--runner", "ray", "--ray-address", cluster, *CLI, "--out", str(out)]
    env = {**os.environ, **RAY_ENV}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = out / ".mmpr-work" / "chunks"
    deadline = time.monotonic() + 300
    while not list(chunks.glob("*.jsonl")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    assert 1 <= len(list(chunks.glob("*.jsonl"))) < 3, "killed after the first chunk and before the last"
    assert not (out / "manifest.json").exists()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "samples/s" in result.stdout and "replica" in result.stdout
    assert read_manifest(out).content_hash == local.content_hash


def test_cli_refuses_zero_replicas_before_starting_anything(tmp_path, capsys):
    from mmpr.build.cli import main

    code = main(["--runner", "ray", "--replicas", "0", "--model", "served", "--engine", "openai", "--sources",
                 "sample", "--out", str(tmp_path / "out")])
    assert code == 2 and "--replicas 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
