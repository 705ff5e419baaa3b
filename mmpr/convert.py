"""``python -m mmpr.convert``: an MMPR release folder -> a versioned Hugging Face dataset folder.

Example::

    python -m mmpr.convert ~/data/MMPR-v1.1 --out ~/data/mmpr-v1.1-hf --version 1.1.0
    python -m mmpr.convert ~/data/MMPR-v1.1 --out ~/data/mmpr-v1.1-hf --push --repo-id my-org/MMPR --dry-run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from mmpr import hub
from mmpr.dataset_writer import SubsetInput, write_dataset
from mmpr.problems import ProblemLog
from mmpr.release import iter_subset, read_meta
from mmpr.schemas import SourceInfo

SKIPPED_REPORT = "skipped.json"


def convert(release_dir: str | Path, out_dir: str | Path, *, name: str | None = None, version: str = "1.0.0",
            subsets: list[str] | None = None, seed: int = 0, apply_repeat: bool = True,
            max_shard_bytes: int = 500 << 20, progress: bool = True):
    """Convert a release; returns ``(manifest, problems)``. Bad rows are skipped and listed in
    ``<out>/skipped.json`` with file, line and reason."""
    release_dir, out_dir = Path(release_dir), Path(out_dir)
    specs = read_meta(release_dir, subsets=subsets)
    problems = ProblemLog()
    total = sum(s.length or 0 for s in specs) or None
    bar = tqdm(total=total, unit="pair", desc="converting", disable=not progress, dynamic_ncols=True)

    def on_pair(_pair):
        bar.update()
        if bar.n % 1000 == 0:
            bar.set_postfix(skipped=problems.total, refresh=False)

    inputs = (SubsetInput(s.name, iter_subset(s, problems, seed=seed, apply_repeat=apply_repeat), image_root=s.root,
                          repeat_time=s.repeat_time, repeat_applied=apply_repeat) for s in specs)
    sources = [SourceInfo(name=s.name, location=str(s.annotation), num_items=s.length or 0) for s in specs]
    try:
        manifest = write_dataset(out_dir, inputs, name=name or release_dir.name, version=version,
                                 max_shard_bytes=max_shard_bytes, on_pair=on_pair,
                                 manifest_fields={"sources": sources, "extra": {
                                     "converted_from": str(release_dir), "seed": seed,
                                     "skipped": dict(problems.counts), "summary": problems.summary()}})
    finally:
        bar.close()
    problems.write(out_dir / SKIPPED_REPORT)
    return manifest, problems


def parse_size(text: str) -> int:
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    text = text.strip().upper()
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mmpr.convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("release_dir", help="folder with meta.json, the annotation .jsonl files and the images")
    parser.add_argument("--out", required=True, help="output dataset folder (same layout as the Hub repo)")
    parser.add_argument("--name", help="dataset name for the card (default: the release folder's name)")
    parser.add_argument("--version", default=None, help="semantic version X.Y.Z (default 1.0.0, or the next "
                        "minor version of the Hub repo with --push)")
    parser.add_argument("--subsets", help="comma-separated subset names to convert (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the repeat_time < 1 subsampling")
    parser.add_argument("--no-repeat", action="store_true", help="ignore repeat_time: keep every row exactly once")
    parser.add_argument("--max-shard-size", default="500MB", help="bound on a parquet shard's size, e.g. 200MB")
    hub.add_push_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    hub.check_push_arguments(args)
    try:
        manifest, problems = convert(args.release_dir, args.out, name=args.name, version=args.version or "1.0.0",
                                     subsets=args.subsets.split(",") if args.subsets else None, seed=args.seed,
                                     apply_repeat=not args.no_repeat, max_shard_bytes=parse_size(args.max_shard_size))
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {manifest.num_pairs} pairs in {len(manifest.subsets)} subset(s) to {args.out} "
          f"(version {manifest.dataset_version}, hash {manifest.content_hash[:12]})")
    print(f"skipped: {problems.summary()}")
    for problem in problems.items[:20]:
        print(f"  {problem}")
    if problems.total > 20:
        print(f"  ... all {problems.total} listed in {Path(args.out) / SKIPPED_REPORT}")
    if args.push:
        return hub.push_from_args(args, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
