import json

import pytest

from mmpr.build import BuildConfig, run
from mmpr.build.executor import ClusterOptions
from mmpr.build.ray_llm import (
    ERROR_COLUMN,
    explode,
    from_engine_row,
    regroup,
    to_engine_row,
)
from mmpr.build.step import process_chunks
from mmpr.dataset_writer import read_manifest
from mmpr.engines import Completion, EngineError, Request
from mmpr.errors import UserError
from mmpr.images import open_rgb
from mmpr.schemas import SamplingConfig
from mmpr.testing import tiny_images
from tests.mmpr.test_build import ScriptedEngine
from tests.mmpr.test_build_ray_runner import CFG, CLI

ray = pytest.importorskip("ray")

SAMPLING = SamplingConfig(n=3, max_tokens=8, temperature=0.7, top_k=-1, seed=5)


def _answer(request, sample, text="x", completion_tokens=3, error=""):
    return {"request": request, "sample": sample, "text": text, "prompt_tokens": 11,
            "completion_tokens": completion_tokens, ERROR_COLUMN: error}


def test_explode_gives_each_sample_the_seed_vllm_gives_the_child_of_a_seeded_request(tmp_path):
    image = tmp_path / "a b.png"
    tiny_images(1)[0].convert("P").save(image)
    requests = [Request("q1", "<image>\nHow many?", (str(image),), n=3, seed=100),
                Request("q2#ntp", "How many?", (), n=1, seed=7, prefix="I count")]
    rows = explode(requests, SAMPLING)
    assert [(r["request"], r["sample"]) for r in rows] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    engine_rows = [to_engine_row(r) for r in rows]
    # vLLM's ParentRequest gives child i of a request with seed s the seed s + i (and n=1)
    assert [e["sampling_params"]["seed"] for e in engine_rows] == [100, 101, 102, 7]
    assert engine_rows[0]["sampling_params"] == {"n": 1, "temperature": 0.7, "top_p": 1.0, "top_k": 0,
                                                 "max_tokens": 8, "seed": 100}
    assert engine_rows[0]["messages"] == [{"role": "user", "content": [{"type": "image"},
                                                                        {"type": "text", "text": "How many?"}]}]
    # the images go to the engine stage opened as the local vLLM engine opens them (RGB)
    (opened,) = engine_rows[0]["multimodal_data"]["image"]
    assert opened.mode == "RGB" and opened.tobytes() == open_rgb(image).tobytes()
    assert engine_rows[3]["multimodal_data"] is None
    # the continuation ends on the assistant's prefix: Ray's chat-template stage continues it
    assert engine_rows[3]["messages"][-1] == {"role": "assistant", "content": "I count"}
    assert all(isinstance(r["payload"], str) for r in rows), "flat Arrow columns"


def test_regroup_orders_samples_and_isolates_failed_requests():
    requests = [Request("a", "q", n=2, seed=1), Request("b", "q", n=2, seed=2), Request("c", "q", n=1, seed=3),
                Request("d", "q", n=2, seed=4)]
    rows = [_answer(0, 1, "second", completion_tokens=8), _answer(2, 0, error="ValueError: prompt is longer than "
                                                                               "the maximum model length"),
            _answer(0, 0, "first"), _answer(1, 0), _answer(3, 1), _answer(3, 0)]  # request 1 lost its sample 1
    a, b, c, d = regroup(requests, rows, SAMPLING)
    assert a == [Completion("first", 11, 3, "stop"), Completion("second", 11, 8, "length")]
    assert isinstance(b, EngineError) and b.code == "engine_error" and "1 of 2 samples" in b.message
    assert isinstance(c, EngineError) and c.code == "prompt_too_long"
    assert [x.text for x in d] == ["x", "x"]


def test_postprocess_keeps_the_keys_and_the_answer():
    row = {"request": 3, "sample": 1, "payload": "{}", "generated_text": "ok", "num_input_tokens": 9,
           "num_generated_tokens": 2, "generated_tokens": [1, 2]}
    assert from_engine_row(row) == _answer(3, 1, "ok", completion_tokens=2) | {"prompt_tokens": 9}


class _SampleByRow:
    """An engine that answers each request row by row, as the processor does: n requests of one sample each,
    seeds seed + i."""

    name = "rows"

    def __init__(self):
        self.inner = ScriptedEngine()

    def generate(self, requests, sampling):
        rows = explode(requests, sampling)
        singles = [Request(str(i), "", n=1, seed=json.loads(r["payload"])["sampling_params"]["seed"],
                           prefix=requests[r["request"]].prefix) for i, r in enumerate(rows)]
        answers = [_answer(r["request"], r["sample"], out[0].text, out[0].completion_tokens) | {
                   "prompt_tokens": out[0].prompt_tokens} for r, out in
                   zip(rows, self.inner.generate(singles, sampling), strict=True)]
        return regroup(requests, answers[::-1], sampling)

    def close(self):
        pass


def test_process_chunks_on_exploded_rows_is_process_chunk_with_seed_plus_i(tmp_path):
    """Many chunks through two calls of a row-by-row engine give the records of one chunk at a time with an engine
    that draws sample i of a request from seed + i."""
    from mmpr.build import process_chunk
    from mmpr.schemas import SourceItem

    cfg = BuildConfig.model_validate({"model": "m", "out": tmp_path, "sources": [{"name": "sample"}],
                                      "sampling": {"n": 4}})
    items = [SourceItem(id=f"q{i}", source="toy", category="mathematics", question=f"How many? {i}", answer=str(i % 4),
                        answer_type="integer") for i in range(6)]
    items.append(SourceItem(id="open", source="toy", category="general_vqa", question="Describe it.", answer=None,
                            answer_type=None))

    class SeedPlusI(ScriptedEngine):
        def generate(self, requests, sampling):
            return [[out[0] for out in super(SeedPlusI, self).generate(
                [Request(r.key, r.question, n=1, seed=r.seed + i, prefix=r.prefix) for i in range(r.n)], sampling)]
                for r in requests]

    by_rows = process_chunks([items[:4], items[4:]], _SampleByRow(), cfg)
    one_by_one = [process_chunk(items[:4], SeedPlusI(), cfg), process_chunk(items[4:], SeedPlusI(), cfg)]
    assert [[r.model_dump() for r in c] for c in by_rows] == [[r.model_dump() for r in c] for c in one_by_one]
    assert sum(len(r.pairs) for c in by_rows for r in c) > 0


def test_ray_llm_runner_refuses_other_engines(tmp_path):
    from mmpr.build.ray_llm import ProcessorWaves

    cfg = BuildConfig.model_validate({**CFG, "out": tmp_path / "out", "engine": "openai", "model": "served"})
    with pytest.raises(UserError, match="--runner ray"):
        run(cfg, executor=ProcessorWaves(), progress=False)
    assert not (tmp_path / "out").exists()


class VLLMRows:
    """A stand-in for ``ray.data.llm``'s vLLM processor with its row contract and its chain: ``preprocess`` ->
    the chat template rendered by the model's processor (continuing a final assistant turn) -> the vLLM engine
    on the prompt text and ``multimodal_data``, one seeded ``n=1`` request per row -> ``postprocess``; the engine
    is the project's (vLLM's CPU build, in this process)."""

    def __init__(self, model: str):
        from transformers import AutoProcessor

        from mmpr.engines.vllm_engine import VLLMEngine

        self.engine = VLLMEngine(model)
        self.processor = AutoProcessor.from_pretrained(model)

    def __call__(self, batch):
        from vllm import SamplingParams

        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        data = [{**row, **to_engine_row(row)} for row in rows]
        prompts = []
        for d in data:
            cont = d["messages"][-1]["role"] == "assistant"
            text = self.processor.apply_chat_template(d["messages"], tokenize=False, add_generation_prompt=not cont,
                                                      continue_final_message=cont)
            prompts.append({"prompt": text, **({"multi_modal_data": d["multimodal_data"]}
                                               if d["multimodal_data"] else {})})
        outs = self.engine.llm.generate(prompts, [SamplingParams(**d["sampling_params"]) for d in data],
                                        use_tqdm=False)
        for d, o in zip(data, outs, strict=True):
            d.update(generated_text=o.outputs[0].text, num_input_tokens=len(o.prompt_token_ids),
                     num_generated_tokens=len(o.outputs[0].token_ids))
        out = [from_engine_row(d) for d in data]
        return {k: [r[k] for r in out] for k in out[0]}


@pytest.mark.slow
def test_ray_llm_runner_with_the_processor_row_contract_matches_the_local_runner(tmp_path, cluster):
    """The whole ray-llm pipeline (explode, processor, regroup, judge, continuation round, chunk files) with the
    processor replaced by :class:`VLLMRows` on the tiny model: the dataset is the local vLLM runner's, byte for
    byte, so one seeded request of n equals n requests seeded seed + i. A rerun over the saved chunks is a
    no-op that gives the same dataset."""
    from mmpr.build.ray_llm import ProcessorWaves

    cfg = BuildConfig.model_validate({**CFG, "out": tmp_path / "local"})
    run(cfg, progress=False)
    local = read_manifest(tmp_path / "local")
    assert local.num_pairs > 0

    def stand_in(build):
        return lambda ds: ds.map_batches(VLLMRows, batch_size=64, compute=ray.data.ActorPoolStrategy(size=1),
                                         fn_constructor_kwargs={"model": build.model})

    out = tmp_path / "ray-llm"
    summary = run(cfg.model_copy(update={"out": out, "engine": "ray-llm"}), progress=False,
                        executor=ProcessorWaves(ClusterOptions(chunks_per_wave=2), processor=stand_in))
    assert read_manifest(out).content_hash == local.content_hash
    stats = summary.replicas["ray.data.llm"]
    assert stats.chunks == 3 and stats.samples > 0
    rerun = run(cfg.model_copy(update={"out": out, "engine": "ray-llm"}), progress=False,
                      executor=ProcessorWaves(processor=stand_in))
    assert rerun.replicas == {} and read_manifest(out).content_hash == local.content_hash


@pytest.mark.slow
def test_ray_llm_runner_on_the_real_vllm_processor_matches_the_local_runner(tmp_path, cluster, capsys):
    """``ray.data.llm``'s own vLLM processor (chat-template stage, vLLM engine stage) on vLLM's CPU build, one
    replica on a CPU, started through the CLI on a fresh --out: the same dataset as the local vLLM runner (77 s on
    an idle 2-core machine). Its multimodal stage is bypassed and its engine metrics are off; vLLM's chunked
    prefill is off on CPU as in the local engine (a seeded request's chunked prefill rewinds its generator, and the
    content hash then differs)."""
    from mmpr.build.cli import main

    cfg = BuildConfig.model_validate({**CFG, "out": tmp_path / "local", "engine_args": {"max_model_len": 4096}})
    run(cfg, progress=False)
    local = read_manifest(tmp_path / "local")
    assert local.num_pairs > 0
    out = tmp_path / "ray-llm"
    assert main([*CLI, "--engine-args", "max_model_len=4096", "--engine", "ray-llm", "--ray-address", cluster,
                 "--out", str(out)]) == 0, capsys.readouterr().err
    assert read_manifest(out).content_hash == local.content_hash
    assert "Deprecat" not in (out / ".mmpr-work" / "build.log").read_text(), "Ray's notices stay out of it"


class Dies:
    """A processor stage whose engine fails on its first batch with vLLM's error for a KV cache that does not fit.
    (Failing in the constructor instead, Ray Data restarts the actor for about 13 minutes before it gives up.)"""

    def __call__(self, batch):
        raise ValueError("VLLM_CPU_KVCACHE_SPACE (1000 GiB) is larger than the available memory (15.2 GiB); "
                         "lower it")


@pytest.mark.slow
def test_an_engine_death_on_the_cluster_is_one_line_with_its_cause(tmp_path, cluster, capsys, monkeypatch):
    from mmpr.build import ray_llm
    from mmpr.build.cli import main

    monkeypatch.setattr(ray_llm, "vllm_processor", lambda *a, **k: lambda ds: ds.map_batches(
        Dies, batch_size=8, compute=ray.data.ActorPoolStrategy(size=1)))
    out = tmp_path / "out"
    (tmp_path / "model").mkdir()  # the stand-in engine loads no model
    (tmp_path / "model" / "config.json").write_text("{}")
    code = main(["--model", str(tmp_path / "model"), "--sources", "sample", "--n", "2", "--max-tokens", "8",
                 "--engine", "ray-llm", "--ray-address", cluster, "--out", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert "the ray.data.llm engine failed: ValueError: VLLM_CPU_KVCACHE_SPACE (1000 GiB)" in lines[0], lines[0]
    assert "rerun the same command" in lines[0]
    assert (out / ".mmpr-work" / "config.json").is_file(), "the build's folder stays for the rerun"


def test_the_cause_of_an_engine_death_is_found_inside_rays_wrappers():
    from mmpr.build.ray_llm import death_cause

    text = ("ray::MapBatches(vLLMEngineStageUDF)() (pid=4242, ip=127.0.0.1)\n"
            "ray.exceptions.ActorDiedError: The actor died because of an error raised in its creation task, "
            "ray::_MapWorker.__init__()\n  File \"vllm/v1/worker/cpu_worker.py\", line 88, in init_device\n"
            "    raise ValueError(msg)\n"
            "ValueError: VLLM_CPU_KVCACHE_SPACE (1000 GiB) is larger than the available memory\n")
    wrapped = RuntimeError("ray.exceptions.RayTaskError(UserCodeException): task failed")
    wrapped.__cause__ = RuntimeError(text)
    assert death_cause(wrapped) == "ValueError: VLLM_CPU_KVCACHE_SPACE (1000 GiB) is larger than the available memory"
    assert death_cause(RuntimeError("Task was killed due to the node running low on memory.\nMemory on the node "
                                    "was 15 GB")) == "Task was killed due to the node running low on memory."


def test_the_cpu_engine_settings_reach_the_replicas_without_being_exported(monkeypatch):
    """The job's runtime_env gives the replicas vLLM's CPU settings, even when the driver's shell exports none."""
    from mmpr.build import ray_runner

    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    seen = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: seen.update(kw))
    ray_runner.connect(None)
    assert seen["runtime_env"]["env_vars"]["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert ray_runner.engine_env({"VLLM_CPU_KVCACHE_SPACE": "4", "HF_HOME": "/h", "PATH": "/bin"}) == {
        "VLLM_CPU_KVCACHE_SPACE": "4", "HF_HOME": "/h"}


def test_cli_offers_the_ray_llm_runner_and_checks_its_flags_before_starting_anything(tmp_path, capsys):
    from mmpr.build.cli import build_parser, main

    assert "ray-llm" in build_parser().format_help() and "--chunks-per-wave" in build_parser().format_help()
    code = main(["--engine", "ray-llm", "--chunks-per-wave", "0", "--model", "tiny:qwen2_vl", "--sources", "sample",
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "--chunks-per-wave 0" in capsys.readouterr().err
    # the old spelling: one line says so, then the same run
    code = main(["--runner", "ray-llm", "--chunks-per-wave", "0", "--model", "tiny:qwen2_vl", "--sources", "sample",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and err[0] == "warning: --runner ray-llm is deprecated; use --engine ray-llm"
    assert len(err) == 2 and "--chunks-per-wave 0" in err[1]
    code = main(["--runner", "ray-llm", "--engine", "transformers", "--model", "tiny:qwen2_vl", "--sources",
                 "sample", "--out", str(tmp_path / "out")])
    assert code == 2 and "--runner ray" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
