import pytest

from mmpr.build import BuildConfig, run
from mmpr.build.executor import EXECUTORS, ChunkDone, ClusterOptions, ReplicaStats, executor_for
from mmpr.build.ray_llm import ProcessorWaves
from mmpr.build.ray_runner import ActorPool, RayBuildSummary
from mmpr.build.runner import LocalExecutor
from mmpr.build.step import process_chunk
from mmpr.dataset_writer import read_manifest
from mmpr.registry import UnknownName
from tests.mmpr.test_build import ScriptedEngine


def test_the_engine_or_the_runner_names_the_executor():
    assert isinstance(executor_for("vllm"), LocalExecutor)
    pool = executor_for("openai", "ray", ClusterOptions(replicas=3))
    assert isinstance(pool, ActorPool) and pool.options.replicas == 3 and "3 replica" in pool.label
    # ray-llm brings its own executor, whatever the runner
    assert isinstance(executor_for("ray-llm"), ProcessorWaves) and isinstance(executor_for("ray-llm", "ray"),
                                                                             ProcessorWaves)
    assert EXECUTORS.names() == ["local", "ray", "ray-llm"]
    with pytest.raises(UnknownName, match=r"unknown runner 'rya' \(did you mean 'ray'\?\); available: local, ray"):
        executor_for("vllm", "rya")


def test_replica_stats_add_up_the_chunks():
    stats = ReplicaStats()
    stats.add(ChunkDone(0, [], seconds=1.5))
    assert (stats.chunks, stats.questions, stats.samples, stats.seconds) == (1, 0, 0, 1.5)


class DropsOneChunk:
    """An executor that makes every pending chunk with a scripted engine but never gives chunk 1 back, as a Ray
    executor does with a chunk that keeps failing; reports each chunk as the work of one replica."""

    label = "dropping"

    def __init__(self, drop=(1,)):
        self.drop, self.given = drop, []

    def check(self, cfg):
        pass

    def run(self, build, pending):
        engine = ScriptedEngine()
        for index, chunk in pending:
            self.given.append(index)
            if index not in self.drop:
                yield ChunkDone(index, process_chunk(chunk, engine, build.cfg), worker="w", seconds=1.0)

    summary = staticmethod(lambda base, replicas, failed, wall: RayBuildSummary(
        **base.model_dump(), replicas=replicas, failed_chunks=failed, wall_seconds=wall))


def test_the_skeleton_saves_what_comes_back_and_reports_what_does_not(tmp_path):
    (tmp_path / "model").mkdir()  # the scripted engine loads no model
    (tmp_path / "model" / "config.json").write_text("{}")
    cfg = BuildConfig.model_validate({"model": str(tmp_path / "model"), "out": tmp_path / "out",
                                      "engine": "transformers", "sources": [{"name": "sample"}],
                                      "sampling": {"n": 4, "max_tokens": 32}, "batch_size": 10})
    seen = []
    first = run(cfg, executor=DropsOneChunk(), progress=False, check=seen.append)
    assert first.failed_chunks == [1] and not seen, "no dataset (and no check) while a chunk is missing"
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert first.replicas["w"].chunks == 2 and first.replicas["w"].seconds == 2.0
    # the rerun hands over only the missing chunk; the dataset is the one a single run writes
    again = DropsOneChunk(drop=())
    second = run(cfg, executor=again, progress=False, check=seen.append)
    assert again.given == [1] and second.failed_chunks == [] and len(seen) == 1
    whole = run(cfg.model_copy(update={"out": tmp_path / "whole"}), executor=DropsOneChunk(drop=()), progress=False)
    assert read_manifest(tmp_path / "out").content_hash == read_manifest(tmp_path / "whole").content_hash
    assert second.pairs == whole.pairs and sum(whole.pairs.values()) > 0


def test_an_unknown_runner_is_one_line_before_anything_is_written(tmp_path, capsys):
    from mmpr.build.cli import main

    code = main(["--runner", "rya", "--model", "served", "--engine", "openai", "--sources", "sample", "--out",
                 str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown runner 'rya' (did you mean 'ray'?)" in err[0]
    assert not (tmp_path / "out").exists()
