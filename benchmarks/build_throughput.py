"""Data-engine throughput: the build pipeline on the vLLM engine vs plain ``vllm.LLM.chat`` on the same prompts
and sampling (overhead ratio, goal <= 1.10), and judging throughput (responses/s on one core, goal >= 20k/s for
the non-LaTeX answer types).

    .venv/bin/python benchmarks/build_throughput.py                       # tiny model, CPU
    python benchmarks/build_throughput.py --model Qwen/Qwen2-VL-2B-Instruct --questions 512 --n 8   # a GPU
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

from mmpr.answers import answer_score, extract_final_answer
from mmpr.build import BuildConfig, process_chunk
from mmpr.engines import make_engine
from mmpr.engines.vllm_engine import VLLMEngine
from mmpr.images import ImageStore
from mmpr.model_ref import resolve_model
from mmpr.problems import ProblemLog
from mmpr.schemas import SamplingConfig
from mmpr.sources import make_source


def engine_overhead(model: str, questions: int, n: int, max_tokens: int, batch: int, engine_args: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sample = list(make_source("sample").open().items(ImageStore(tmp), ProblemLog()))
        items = [s.model_copy(update={"id": f"{s.id}#{i}"}) for i in range(questions // len(sample) + 1)
                 for s in sample if s.answer is not None][:questions]
        cfg = BuildConfig(model=model, out=tmp, sources=[{"name": "sample"}], batch_size=batch,
                          sampling=SamplingConfig(n=n, max_tokens=max_tokens, temperature=1.0))
        engine = make_engine("vllm", model, **engine_args)
        assert isinstance(engine, VLLMEngine)
        chunks = [items[i:i + batch] for i in range(0, len(items), batch)]
        process_chunk(chunks[0][:4], engine, cfg)  # warm-up

        # the same requests, sent straight to vLLM: what the pipeline adds is everything else
        from mmpr.build import prompt_for
        from mmpr.engines import Request, request_seed

        def plain() -> int:
            samples = 0
            for chunk in chunks:
                requests = [Request(i.id, prompt_for(i, cfg), tuple(i.images), n=n,
                                    seed=request_seed(0, i.id)) for i in chunk]
                outputs = engine.llm.chat([engine._messages(r) for r in requests],
                                          [engine._params(r, cfg.sampling) for r in requests], use_tqdm=False)
                samples += sum(len(o.outputs) for o in outputs)
            return samples

        def pipeline() -> int:
            return sum(len(r.responses) for chunk in chunks for r in process_chunk(chunk, engine, cfg))

        timings = {}
        for name, run in (("plain vllm.LLM.chat", plain), ("mmpr pipeline", pipeline),
                          ("plain vllm.LLM.chat ", plain), ("mmpr pipeline ", pipeline)):
            start = time.perf_counter()
            samples = run()
            timings.setdefault(name.strip(), []).append((time.perf_counter() - start, samples))
        engine.close()
    best = {k: min(v) for k, v in timings.items()}
    for name, (seconds, samples) in best.items():
        print(f"{name:<22} {samples:>6} samples  {seconds:7.2f} s  {samples / seconds:8.1f} samples/s")
    ratio = best["mmpr pipeline"][0] / best["plain vllm.LLM.chat"][0]
    print(f"pipeline / plain time ratio: {ratio:.3f} (goal <= 1.10; the pipeline also judges, pairs and runs "
          f"the DropoutNTP continuations for questions without ground truth: none here)")


_KINDS = [
    ("multiple_choice", lambda r: (f"({'ABCD'[r.randrange(4)]})", "B", ["3", "4", "5", "6"])),
    ("integer", lambda r: (f"{r.randrange(20)} apples", str(r.randrange(20)), None)),
    ("float", lambda r: (f"{r.random() * 10:.2f} cm", f"{r.random() * 10:.2f}", None)),
    ("yes_no", lambda r: (r.choice(["Yes, it is.", "No."]), r.choice(["yes", "no"]), None)),
    ("text", lambda r: (r.choice(["The red car", "a blue bus", "Dog"]), r.choice(["red car", "dog"]), None)),
    ("chart", lambda r: (str(r.randrange(100, 110)), "105", None)),
    ("document", lambda r: (r.choice(["Invoice 1234", "invoice 1243"]), "Invoice 1234", None)),
    ("list", lambda r: ("[1, 2, 3]", r.choice(["[1, 2, 3]", "[1, 3, 2]"]), None)),
]


def judging(count: int) -> None:
    rng = random.Random(0)
    cases = []
    for i in range(count):
        kind, make = _KINDS[i % len(_KINDS)]
        prediction, answer, choices = make(rng)
        text = f"Step {i}: we look at the figure and work it out carefully.\nFinal answer: {prediction}"
        cases.append((text, answer, kind, choices))
    start = time.perf_counter()
    correct = 0
    for text, answer, kind, choices in cases:
        extracted = extract_final_answer(text)
        correct += answer_score(extracted, answer, answer_type=kind, choices=choices) > 0.9
    seconds = time.perf_counter() - start
    print(f"judging: {count} responses (8 non-LaTeX types) in {seconds:.2f} s on one core: "
          f"{count / seconds:,.0f} responses/s (goal >= 20,000/s); {correct} judged correct")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny:qwen2_vl")
    parser.add_argument("--questions", type=int, default=104)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=52)
    parser.add_argument("--judge-count", type=int, default=200_000)
    parser.add_argument("--skip-engine", action="store_true")
    args = parser.parse_args()
    judging(args.judge_count)
    if not args.skip_engine:
        engine_overhead(resolve_model(args.model), args.questions, args.n, args.max_tokens, args.batch,
                        {"max_model_len": 2048, "seed": 0})


if __name__ == "__main__":
    main()
