"""``python -m mmpr.export``: a dataset written by mmpr -> the preference format another trainer reads.

Formats:
  trl           parquet dataset for TRL's DPOTrainer: conversational ``prompt`` / ``chosen`` / ``rejected`` and
                ``images`` (``load_dataset(OUT)``)
  swift         ms-swift RLHF jsonl: ``messages`` (user + chosen), ``rejected_response``, ``images`` (absolute
                paths, as ms-swift opens them from the working directory)
  llamafactory  LLaMA-Factory sharegpt ranking jsonl + ``dataset_info.json`` (dataset name ``mmpr``; image
                paths relative to OUT, LLaMA-Factory's ``dataset_dir``)
  mmpr          the MMPR release layout (meta.json + annotations/*.jsonl + images/), byte-identical to a
                converted release

Example::

    python -m mmpr.export runs/demo --format trl --out runs/demo-trl
    python -m mmpr.export my-org/MMPR --revision v1.1.0 --format mmpr --out ~/data/MMPR-v1.1

``--out`` must be a new or empty folder (``--overwrite`` replaces what it holds); a failed export leaves none.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

from datasets import Features, Image, List, Value
from tqdm import tqdm

from mmpr.chat import user_parts, with_placeholders
from mmpr.cli import EXIT_CODES, ArgumentParser, add_output_arguments, front_door, quiet_logs, reading
from mmpr.dataset_writer import ShardWriter, open_dataset, read_manifest, subsets_of
from mmpr.errors import NothingMade
from mmpr.images import bytes_digest
from mmpr.io import atomic_path, atomic_write_text
from mmpr.locations import check_apart, check_location, check_out, new_folder
from mmpr.registry import Registry
from mmpr.settings import flag_keys, parse_args

JSONL_NAME = "mmpr.jsonl"  # the swift and llamafactory exports' one file

_MESSAGE = List({"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})})
TRL_FEATURES = Features({"prompt": _MESSAGE, "chosen": _MESSAGE, "rejected": _MESSAGE, "images": List(Image())})


def user_content(question: str, n_images: int) -> list[dict]:
    """User-turn parts in TRL's shape: every part has a ``text`` field (None for images)."""
    return [{"type": part["type"], "text": part.get("text")} for part in user_parts(question, n_images)]


class _ImageFiles:
    """Writes exported images under ``out/images/<subfolder>/<name>``; equal bytes are written once and
    hard-linked (or copied) for later names."""

    def __init__(self, out: Path):
        self.out = out
        self.by_digest: dict[str, Path] = {}

    def put(self, subfolder: str, image: dict) -> str:
        name = Path(image["path"] or "")
        if not name.parts or name.is_absolute() or ".." in name.parts:
            name = Path(bytes_digest(image["bytes"]) + (name.suffix or ".png"))
        rel = Path("images") / subfolder / name
        target = self.out / rel
        if not target.exists():
            digest = bytes_digest(image["bytes"])
            target.parent.mkdir(parents=True, exist_ok=True)
            first = self.by_digest.get(digest)
            try:
                if first is None:
                    raise FileNotFoundError
                os.link(first, target)
            except OSError:
                with atomic_path(target) as tmp:
                    tmp.write_bytes(image["bytes"])
                self.by_digest.setdefault(digest, target)
        elif target.read_bytes() != image["bytes"]:
            raise ValueError(f"two different images are both named {image['path']!r} in {subfolder}")
        return rel.as_posix()


def _rows(location: str, subset: str | None, revision: str | None) -> Iterator[dict]:
    yield from open_dataset(location, subset=subset, revision=revision, decode_images=False)


def _total(location: str) -> int | None:
    try:
        return read_manifest(location).num_pairs
    except (FileNotFoundError, OSError):
        return None


def export_trl(location: str, out: Path, *, revision: str | None = None, bar=None) -> int:
    writer = ShardWriter(out / "data", max_shard_bytes=500 << 20, rows_per_group=128, schema=TRL_FEATURES)
    n = 0
    for row in _rows(location, None, revision):
        writer.add({
            "prompt": [{"role": "user", "content": user_content(row["question"], len(row["images"]))}],
            "chosen": [{"role": "assistant", "content": [{"type": "text", "text": row["chosen"]}]}],
            "rejected": [{"role": "assistant", "content": [{"type": "text", "text": row["rejected"]}]}],
            "images": row["images"],
        }, sum(len(i["bytes"]) for i in row["images"]))
        n += 1
        bar and bar.update()
    writer.close()
    return n


def _swift_record(row: dict, question: str, images: list[str], out: Path) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": row["chosen"]}],
            "rejected_response": row["rejected"], "images": [str((out / p).resolve()) for p in images]}


def _llamafactory_record(row: dict, question: str, images: list[str], out: Path) -> dict:
    return {"conversations": [{"from": "human", "value": question}], "chosen": {"from": "gpt", "value": row["chosen"]},
            "rejected": {"from": "gpt", "value": row["rejected"]}, "images": images}


def _export_jsonl(location: str, out: Path, record: Callable[[dict, str, list[str], Path], dict], *,
                  revision: str | None, bar) -> int:
    """One ``mmpr.jsonl`` of ``record(row, question with image placeholders, image paths, out)`` per row."""
    files = _ImageFiles(out)
    n = 0
    with atomic_path(out / JSONL_NAME) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in _rows(location, None, revision):
            images = [files.put(row["source"], image) for image in row["images"]]
            question = with_placeholders(row["question"], len(images))
            f.write(json.dumps(record(row, question, images, out), ensure_ascii=False) + "\n")
            n += 1
            bar and bar.update()
    return n


def export_swift(location: str, out: Path, *, revision: str | None = None, bar=None) -> int:
    return _export_jsonl(location, out, _swift_record, revision=revision, bar=bar)


def export_llamafactory(location: str, out: Path, *, revision: str | None = None, bar=None) -> int:
    n = _export_jsonl(location, out, _llamafactory_record, revision=revision, bar=bar)
    info = {"mmpr": {"file_name": JSONL_NAME, "formatting": "sharegpt", "ranking": True,
                     "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected",
                                 "images": "images"}}}
    atomic_write_text(out / "dataset_info.json", json.dumps(info, indent=2) + "\n")
    return n


def export_mmpr(location: str, out: Path, *, revision: str | None = None, bar=None) -> int:
    """Back to the release layout: one annotation file per subset, images under ``images/<subset>/``.

    The rows are written as the dataset holds them; ``repeat_time`` is the release's own where the dataset
    kept each row once (``--no-repeat``), else 1 (the repeats and subsampling are already in the rows)."""
    try:
        manifest = read_manifest(location)
        subsets = {name: info.repeat_time if not info.repeat_applied else 1.0
                   for name, info in manifest.subsets.items()}
        release_names = {name: info.release_name or name for name, info in manifest.subsets.items()}
    except (FileNotFoundError, OSError):
        subsets = dict.fromkeys(subsets_of(location, revision=revision), 1.0)
        release_names = {name: name for name in subsets}
    files = _ImageFiles(out)
    meta = {}
    n = 0
    for subset, repeat_time in subsets.items():
        length = 0
        with ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(out / "annotations" / f"{subset}.jsonl"))
            f = stack.enter_context(open(tmp, "w", encoding="utf-8"))
            for row in _rows(location, subset, revision):
                record: dict = {}
                names = [Path(files.put(subset, image)).relative_to(f"images/{subset}").as_posix()
                         for image in row["images"]]
                if names:
                    record["image"] = names[0] if len(names) == 1 else names
                record.update(question=row["question"], chosen=row["chosen"], rejected=row["rejected"])
                if row["answer_gt"] is not None:
                    record["answer_gt"] = row["answer_gt"]
                record.update(json.loads(row["metadata"]))
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                length += 1
                n += 1
                bar and bar.update()
        meta[release_names[subset]] = {"root": f"images/{subset}", "annotation": f"annotations/{subset}.jsonl",
                        "data_augment": False, "repeat_time": repeat_time, "length": length}
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=2) + "\n")
    return n


def export(location: str | Path, fmt: str, out: str | Path, *, revision: str | None = None,
           progress: bool = True) -> int:
    """Export the dataset at ``location`` (folder or Hub id) to ``out`` in ``fmt``; returns rows written."""
    write = FORMAT_REGISTRY.get(fmt)
    out = Path(out)
    location = str(location)
    with new_folder(out), tqdm(total=_total(location), unit="pair", desc=f"export {fmt}",
                               disable=not progress) as bar:
        out.mkdir(parents=True, exist_ok=True)
        n = write(location, out, revision=revision, bar=bar)
        if n == 0:
            raise NothingMade(f"{location}: the dataset holds 0 pairs; nothing to export")
    return n


Exporter = Callable[..., int]  # (location, out, *, revision, bar) -> rows written

FORMAT_REGISTRY: Registry[Exporter] = Registry("export format")
FORMAT_REGISTRY.register("trl", export_trl, description="parquet for TRL's DPOTrainer")
FORMAT_REGISTRY.register("swift", export_swift, description="ms-swift RLHF jsonl")
FORMAT_REGISTRY.register("llamafactory", export_llamafactory, description="LLaMA-Factory sharegpt ranking jsonl")
FORMAT_REGISTRY.register("mmpr", export_mmpr, description="the MMPR release layout")
FORMATS = tuple(FORMAT_REGISTRY.names())


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m mmpr.export", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="YAML file whose keys are the flag names; flags override it")
    parser.add_argument("dataset", help="dataset folder written by mmpr, or a Hub repo id")
    parser.add_argument("--format", required=True, help=", ".join(FORMATS))
    parser.add_argument("--out", required=True, help="output folder (new or empty)")
    parser.add_argument("--revision", help="Hub revision or version tag, e.g. v1.0.0")
    add_output_arguments(parser)
    parser.epilog = f"YAML keys: {', '.join(flag_keys(parser))}\n\n{EXIT_CODES}"
    return parser


@front_door
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    FORMAT_REGISTRY.canonical(args.format)  # an unknown format is refused before anything is read
    quiet_logs(args.verbose)
    location = check_location(args.dataset, "dataset")
    if Path(location).exists():  # a folder that is not an mmpr dataset fails here, before --out is made
        if read_manifest(location).num_pairs == 0:
            raise NothingMade(f"{args.dataset}: the dataset holds 0 pairs; nothing to export")
    out = Path(args.out).expanduser()
    if Path(location).exists():
        check_apart(location, out, what_src="the dataset")
    check_out(out, marker=f"a {args.format} export", same_job=lambda _: False, overwrite=args.overwrite)
    with reading(f"dataset {args.dataset}", "rebuild or re-download it"):
        n = export(location, args.format, out, revision=args.revision)
    print(f"exported {n} pairs to {args.out} ({args.format})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
