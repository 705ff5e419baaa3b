"""The ray runner's overhead: the same build with ``--runner local`` and ``--runner ray`` on one engine replica,
end to end (engine start, sampling, judging, pairing, chunk files, dataset), on a Ray instance started once
beforehand as a cluster would be. Prints both times and the ratio (goal <= 1.15) and checks that both datasets
have the same content hash.

    .venv/bin/python benchmarks/build_ray.py                      # tiny model, vLLM CPU engine, this machine
    python benchmarks/build_ray.py --model Qwen/Qwen2-VL-2B-Instruct --copies 20 --n 8 --replica-gpus 1   # a GPU
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from mmpr.build import BuildConfig, ray_runner
from mmpr.build import run as run_local
from mmpr.dataset_writer import read_manifest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny:qwen2_vl")
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--copies", type=int, default=2, help="the shipped 30-question sample, this many times over")
    p.add_argument("--repeats", type=int, default=2, help="runs of each runner (the fastest counts)")
    p.add_argument("--replica-gpus", type=float, default=0.0)
    args = p.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local instance on the loopback interface
    import ray

    ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False)
    sources = [{"name": "sample", "alias": f"sample{i}"} for i in range(args.copies)]
    timings: dict[str, list[float]] = {"local": [], "ray": []}
    hashes, samples = set(), 0
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for runner in ("local", "ray"):
                cfg = BuildConfig(model=args.model, out=f"{tmp}/{runner}{repeat}", sources=sources,
                                  batch_size=args.batch_size,
                                  sampling={"n": args.n, "max_tokens": args.max_tokens})
                start = time.perf_counter()
                if runner == "local":
                    summary = run_local(cfg, progress=False)
                else:
                    summary = ray_runner.run(cfg, replicas=1, gpus_per_replica=args.replica_gpus, progress=False)
                timings[runner].append(time.perf_counter() - start)
                hashes.add(read_manifest(cfg.out).content_hash)
                samples = summary.responses
    ray.shutdown()
    best = {k: min(v) for k, v in timings.items()}
    for name, seconds in best.items():
        print(f"{name:<6} runner  {samples:>6} samples  {seconds:7.2f} s  {samples / seconds:7.1f} samples/s  "
              f"(runs: {', '.join(f'{t:.1f}' for t in timings[name])})")
    print(f"ray / local time ratio, one replica: {best['ray'] / best['local']:.3f} (goal <= 1.15)")
    print(f"same dataset content hash: {len(hashes) == 1}")


if __name__ == "__main__":
    main()
