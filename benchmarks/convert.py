"""Conversion throughput and memory: a synthetic MMPR release of N pairs -> the parquet dataset.

Each size runs in a fresh process so its peak RSS is its own; flat memory means the 100k run peaks where the
10k run does (the converter streams, it never holds the dataset).

    .venv/bin/python benchmarks/convert.py              # 10k and 100k pairs
    .venv/bin/python benchmarks/convert.py --sizes 2000 # quick look
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_release(root: Path, n_pairs: int, n_images: int = 2000) -> None:
    from mmpr.testing import tiny_images

    images = root / "images"
    images.mkdir(parents=True)
    for i, img in enumerate(tiny_images(n_images, size=(96, 72))):
        img.save(images / f"{i}.png")
    (root / "annotations").mkdir()
    meta = {}
    per_subset = n_pairs // 2
    for subset in ("synth_pairs_vqa_correctness_rules", "synth_prefix_pair_sr0.5_wo_image"):
        with open(root / "annotations" / f"{subset}.jsonl", "w") as f:
            for i in range(per_subset):
                f.write(json.dumps({"image": f"{i % n_images}.png",
                                    "question": f"<image>\nQuestion {i}: how many shapes are in the figure?",
                                    "chosen": f"Counting each shape in turn gives {i % 7}. " * 8
                                    + f"Final answer: {i % 7}",
                                    "rejected": f"There seem to be {i % 5} shapes. " * 8 + f"Final answer: {i % 5}",
                                    "answer_gt": str(i % 7)}) + "\n")
        meta[subset] = {"root": "images", "annotation": f"annotations/{subset}.jsonl", "data_augment": False,
                        "repeat_time": 1, "length": per_subset}
    (root / "meta.json").write_text(json.dumps(meta))


def measure(release: str, out: str) -> None:
    from mmpr.convert import convert

    start = time.perf_counter()
    manifest, problems = convert(release, out, progress=False)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"pairs": manifest.num_pairs, "seconds": seconds, "peak_rss_mb": peak_mb,
                      "skipped": problems.total}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--measure", nargs=2, metavar=("RELEASE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            release = Path(tmp) / f"release-{n}"
            make_release(release, n)
            run = subprocess.run([sys.executable, __file__, "--measure", str(release), str(Path(tmp) / f"out-{n}")],
                                 capture_output=True, text=True, check=True)
            results.append(json.loads(run.stdout.strip().splitlines()[-1]))
    print(f"{'pairs':>8} {'seconds':>8} {'pairs/s':>9} {'peak RSS MB':>12}")
    for r in results:
        print(f"{r['pairs']:>8} {r['seconds']:>8.1f} {r['pairs'] / r['seconds']:>9.0f} {r['peak_rss_mb']:>12.0f}")
    if len(results) > 1:
        print(f"peak memory ratio {results[-1]['pairs']} vs {results[0]['pairs']} pairs: "
              f"{results[-1]['peak_rss_mb'] / results[0]['peak_rss_mb']:.2f}x "
              f"(input {results[-1]['pairs'] / results[0]['pairs']:.0f}x larger)")


if __name__ == "__main__":
    main()
