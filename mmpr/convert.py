"""``python -m mmpr.convert``: an MMPR release folder -> a versioned Hugging Face dataset folder.

Example::

    python -m mmpr.convert ~/data/MMPR-v1.1 --out ~/data/mmpr-v1.1-hf --version 1.1.0
    python -m mmpr.convert ~/data/MMPR-v1.1 --out ~/data/mmpr-v1.1-hf --push --repo-id my-org/MMPR --dry-run

``--out`` must be new, empty, or hold an earlier conversion of the same release; anything else needs
``--overwrite``. A release with no usable row is an error that lists why each was skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from mmpr import hub
from mmpr.cli import EXIT_CODES, ArgumentParser, add_output_arguments, front_door, quiet_logs
from mmpr.dataset_writer import STAGING_PREFIX, EmptyDatasetError, SubsetInput, read_manifest, write_dataset
from mmpr.errors import NothingMade, UserError, one_line
from mmpr.images import add_max_pixels_argument, set_max_pixels
from mmpr.locations import check_apart, check_out, claim, claimed_by, new_folder
from mmpr.problems import ProblemLog
from mmpr.release import SubsetStats, empty_reason, iter_subset, read_meta, repeat_warning
from mmpr.schemas import SourceInfo
from mmpr.settings import flag_keys, parse_args

SKIPPED_REPORT = "skipped.json"
MARKER = ".mmpr-convert.json"  # the release this folder converts (local, never pushed: hidden files stay home)


def convert(release_dir: str | Path, out_dir: str | Path, *, name: str | None = None, version: str = "1.0.0",
            subsets: list[str] | None = None, seed: int = 0, apply_repeat: bool = True,
            max_shard_bytes: int = 500 << 20, progress: bool = True):
    """Convert a release; returns ``(manifest, problems)``. Bad rows are skipped and listed in
    ``<out>/skipped.json`` with file (relative to ``release_dir``), line and reason; subsets left with no pairs are
    not published and are listed with the reason in the manifest (``extra["empty_subsets"]``). Raises
    :class:`mmpr.errors.NothingMade` naming every reason when no subset has a pair, and leaves no folder behind."""
    release_dir, out_dir = Path(release_dir), Path(out_dir)
    specs = read_meta(release_dir, subsets=subsets)
    with new_folder(out_dir):
        claim(out_dir, MARKER, {"release": str(release_dir.resolve())})
        return _convert(release_dir, out_dir, specs, name=name, version=version, seed=seed,
                        apply_repeat=apply_repeat, max_shard_bytes=max_shard_bytes, progress=progress)


def _convert(release_dir: Path, out_dir: Path, specs, *, name, version, seed, apply_repeat, max_shard_bytes,
             progress):
    problems = ProblemLog()
    total = sum(s.length or 0 for s in specs) or None
    bar = tqdm(total=total, unit="pair", desc="converting", disable=not progress, dynamic_ncols=True)

    def on_pair(_pair):
        bar.update()
        if bar.n % 1000 == 0:
            bar.set_postfix(skipped=problems.total, refresh=False)

    def subset_input(spec):
        stats = SubsetStats()
        return SubsetInput(spec.name, iter_subset(spec, problems, seed=seed, apply_repeat=apply_repeat, stats=stats),
                           image_root=spec.root, repeat_time=spec.repeat_time, repeat_applied=apply_repeat,
                           why_empty=lambda: empty_reason(spec, stats))

    sources = [SourceInfo(name=s.name, location=_in_release(s.annotation, release_dir), num_items=s.length or 0)
               for s in specs]
    try:
        manifest = write_dataset(out_dir, (subset_input(s) for s in specs), name=name or release_dir.name,
                                 version=version, max_shard_bytes=max_shard_bytes, on_pair=on_pair,
                                 manifest_fields=lambda: {"sources": sources, "extra": {
                                     "converted_from": release_dir.resolve().name, "seed": seed,
                                     "skipped": dict(problems.counts), "summary": problems.summary()}})
    except EmptyDatasetError as e:
        raise NothingMade(f"0 pairs from {release_dir}: {one_line(e)}; bad rows skipped: {problems.summary()}") from e
    finally:
        bar.set_postfix(skipped=problems.total, refresh=False)  # the final count, as the summary prints it
        bar.close()
    problems = problems.relative_to(release_dir)  # the report names the release's files as they are inside it
    problems.write(out_dir / SKIPPED_REPORT)
    return manifest, problems


def _in_release(path: Path, release_dir: Path) -> str:
    """A file of the release as the card names it: ``<release>/<path inside it>``, never this machine's folders."""
    try:
        return f"{release_dir.resolve().name}/{path.resolve().relative_to(release_dir.resolve()).as_posix()}"
    except ValueError:
        return path.name


def _same_conversion(release_dir: Path):
    """An --out folder that holds a conversion of this release (or only a killed run's staging) is this job's."""
    claimed = claimed_by(MARKER, {"release": str(release_dir.resolve())})

    def same(out: Path) -> bool:
        if all(p.name.startswith(STAGING_PREFIX) or p.name == MARKER for p in out.iterdir()) or claimed(out):
            return True
        try:  # a conversion written before the marker: its manifest named the release's folder in full
            converted_from = read_manifest(out).extra.get("converted_from")
        except (OSError, ValueError):
            return False
        return converted_from is not None and Path(converted_from).is_absolute() and \
            Path(converted_from).resolve() == release_dir.resolve()
    return same


def parse_size(text: str) -> int:
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    text = text.strip().upper()
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m mmpr.convert", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="YAML file whose keys are the flag names; flags override it")
    parser.add_argument("release_dir", help="folder with meta.json, the annotation .jsonl files and the images")
    parser.add_argument("--out", required=True, help="output dataset folder (same layout as the Hub repo)")
    parser.add_argument("--name", help="dataset name for the card (default: the release folder's name)")
    parser.add_argument("--version", default=None, help="semantic version X.Y.Z (default 1.0.0, or the next "
                        "minor version of the Hub repo with --push)")
    parser.add_argument("--subsets", help="comma-separated subset names to convert (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the repeat_time < 1 subsampling")
    parser.add_argument("--no-repeat", action="store_true", help="ignore repeat_time: keep every row exactly once")
    parser.add_argument("--max-shard-size", default="500MB", help="bound on a parquet shard's size, e.g. 200MB")
    add_max_pixels_argument(parser)
    add_output_arguments(parser)
    hub.add_push_arguments(parser)
    parser.epilog = f"YAML keys: {', '.join(flag_keys(parser))}\n\n{EXIT_CODES}"
    return parser


@front_door
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    hub.check_push_arguments(args)
    quiet_logs(args.verbose)
    set_max_pixels(args.max_image_pixels)
    release_dir = Path(args.release_dir).expanduser()
    if not release_dir.is_dir():
        raise UserError(f"{args.release_dir}: no such folder; give an MMPR release folder (with meta.json)")
    subsets = args.subsets.split(",") if args.subsets else None
    specs = read_meta(release_dir, subsets=subsets)
    check_apart(release_dir, args.out, what_src="the release")
    check_out(args.out, marker="a conversion of this release", same_job=_same_conversion(release_dir),
              overwrite=args.overwrite)
    warning = None if args.no_repeat else repeat_warning(specs)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    manifest, problems = convert(release_dir, args.out, name=args.name, version=args.version or "1.0.0",
                                 subsets=subsets, seed=args.seed,
                                 apply_repeat=not args.no_repeat, max_shard_bytes=parse_size(args.max_shard_size))
    print(f"wrote {manifest.num_pairs} pairs in {len(manifest.subsets)} subset(s) to {args.out} "
          f"(version {manifest.dataset_version}, hash {manifest.content_hash[:12]})")
    for config, info in manifest.subsets.items():
        if info.release_name:
            print(f"  subset {info.release_name!r} is published as config {config!r}")
    empty = manifest.extra.get("empty_subsets", {})
    if empty:
        print(f"{len(empty)} empty subset(s), not published:")
        for subset, reason in empty.items():
            print(f"  {subset}: {reason}")
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
