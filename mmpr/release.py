"""The released MMPR layout: ``meta.json`` + annotation ``.jsonl`` files + image folders.

``meta.json`` maps each subset to ``{"root": image folder, "annotation": jsonl, "repeat_time": float,
"length": rows, ...}``; each jsonl row holds ``image`` (a path relative to ``root``, a list of them, or
nothing), ``question``, ``chosen``, ``rejected`` and optionally ``answer_gt``, ``chosen_meta``,
``rejected_meta``, ``image_wh``. The v1.0 release points at its authors' cluster, so paths that do not
exist are remapped into the release folder. Bad rows are reported with file, line and reason, and skipped.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from mmpr.chat import IMAGE_PLACEHOLDER
from mmpr.images import image_problem
from mmpr.problems import ProblemLog
from mmpr.schemas import Category, PairKind, PreferencePair

_KIND_SUFFIXES: list[tuple[re.Pattern[str], PairKind]] = [
    (re.compile(r"_pairs_vqa_correctness_rules$"), "correctness"),
    (re.compile(r"_pairs_vqa_format_rules$"), "format"),
    (re.compile(r"_pairs_vqa_direct_rules$"), "correctness"),
    (re.compile(r"_prefix_pair_sr[0-9.]+(_wo_image)?$"), "dropout_ntp"),
]

# Source name fragments (lowercase, alphanumerics only) -> the paper's categories.
_CATEGORY_HINTS: list[tuple[str, Category]] = [
    ("docvqa", "document"),
    ("chartqa", "chart"), ("dvqa", "chart"), ("mapqa", "chart"), ("plotqa", "chart"), ("figureqa", "chart"),
    ("ai2d", "science"), ("scienceqa", "science"), ("m3cot", "science"), ("tqa", "science"),
    ("geoqa", "mathematics"), ("clevrmath", "mathematics"), ("clevr", "mathematics"), ("geometry3k", "mathematics"),
    ("geos", "mathematics"), ("geomverse", "mathematics"), ("geo170k", "mathematics"), ("mathvista", "mathematics"),
    ("mathv", "mathematics"), ("unigeo", "mathematics"), ("tabmwp", "mathematics"), ("mavis", "mathematics"),
    ("ocrvqa", "ocr"), ("infovqa", "ocr"), ("infographic", "ocr"), ("textvqa", "ocr"), ("stvqa", "ocr"),
    ("sroie", "ocr"),
    ("vqav2", "general_vqa"), ("gqa", "general_vqa"), ("okvqa", "general_vqa"), ("iconqa", "general_vqa"),
    ("coco", "general_vqa"), ("vqa", "general_vqa"),
]


def kind_and_source(subset: str) -> tuple[PairKind, str]:
    """The pair kind a subset's name suffix declares, and the source name without that suffix."""
    for pattern, kind in _KIND_SUFFIXES:
        if pattern.search(subset):
            return kind, pattern.sub("", subset)
    return "imported", subset


def category_of(source: str) -> Category:
    key = re.sub(r"[^a-z0-9]", "", source.lower())
    for hint, category in _CATEGORY_HINTS:
        if hint in key:
            return category
    return "other"


@dataclass(frozen=True)
class SubsetSpec:
    """One ``meta.json`` entry with its paths resolved on this machine."""

    name: str
    root: Path
    annotation: Path
    repeat_time: float
    length: int | None
    kind: PairKind
    source: str
    category: Category


def remap(path: str, base: Path) -> Path:
    """Resolve a ``meta.json`` path: as given if it exists, else relative to ``base``, else the longest
    trailing part of it that exists under ``base`` (absolute paths from another machine)."""
    p = Path(path)
    if p.is_absolute() and p.exists():
        return p
    if not p.is_absolute() and (base / p).exists():
        return base / p
    parts = PurePosixPath(path).parts
    for i in range(len(parts)):
        if parts[i] == "/":
            continue
        candidate = base.joinpath(*parts[i:])
        if candidate.exists():
            return candidate
    return p if p.is_absolute() else base / p


def read_meta(release_dir: str | Path, *, subsets: list[str] | None = None) -> list[SubsetSpec]:
    """Parse ``meta.json``; raises ValueError naming the subset and field when an entry is unusable."""
    release_dir = Path(release_dir)
    meta_path = release_dir / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: no meta.json; is {release_dir} an MMPR release folder?")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{meta_path}:{e.lineno}: not valid JSON ({e.msg})") from e
    unknown = sorted(set(subsets or []) - set(meta))
    if unknown:
        raise ValueError(f"{meta_path}: no subset named {', '.join(unknown)}; it has: {', '.join(sorted(meta))}")
    specs = []
    for name, entry in meta.items():
        if subsets and name not in subsets:
            continue
        for field in ("root", "annotation"):
            if not isinstance(entry.get(field), str):
                raise ValueError(f"{meta_path}: subset {name!r}: field {field!r} is missing or not a string")
        repeat = entry.get("repeat_time", 1)
        if not isinstance(repeat, int | float) or repeat <= 0:
            raise ValueError(f"{meta_path}: subset {name!r}: repeat_time must be a positive number, got {repeat!r}")
        annotation = remap(entry["annotation"], release_dir)
        if not annotation.is_file():
            raise FileNotFoundError(f"{meta_path}: subset {name!r}: annotation {entry['annotation']!r} not found "
                                    f"(looked for {annotation})")
        kind, source = kind_and_source(name)
        specs.append(SubsetSpec(name=name, root=remap(entry["root"], release_dir), annotation=annotation,
                                repeat_time=float(repeat), length=entry.get("length"), kind=kind, source=source,
                                category=category_of(source)))
    return specs


def _line_count(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def _selected_lines(spec: SubsetSpec, seed: int) -> tuple[set[int] | None, int]:
    """Which 1-based lines a fractional repeat_time keeps (None: all) and how many times each is repeated."""
    whole = int(spec.repeat_time)
    frac = spec.repeat_time - whole
    if frac < 1e-9:
        return None, whole
    n = _line_count(spec.annotation)
    rng = random.Random(seed ^ zlib.crc32(spec.name.encode()))
    extra = set(rng.sample(range(1, n + 1), k=int(n * frac)))
    if whole == 0:
        return extra, 1
    return extra, -whole  # negative: every line `whole` times, the sampled ones once more


_REQUIRED = ("question", "chosen", "rejected")
# Row fields with a place in PreferencePair; any other (chosen_meta, rejected_meta, image_wh...) goes to metadata.
_ROW_FIELDS = {"image", "question", "chosen", "rejected", "answer_gt"}


def _images_of(row: dict) -> list[str] | None:
    image = row.get("image")
    if image is None or image == "" or image == []:
        return []
    if isinstance(image, str):
        return [image]
    if isinstance(image, list) and all(isinstance(x, str) and x for x in image):
        return image
    return None


def iter_subset(spec: SubsetSpec, problems: ProblemLog, *, seed: int = 0,
                apply_repeat: bool = True) -> Iterator[PreferencePair]:
    """Yield the valid pairs of one subset, honouring ``repeat_time`` (fraction: seeded subsample;
    integer: repeat) unless ``apply_repeat`` is False; report every bad row to ``problems``."""
    keep, times = _selected_lines(spec, seed) if apply_repeat else (None, 1)
    with open(spec.annotation, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if times > 0:
                copies = times if keep is None or line_no in keep else 0
            else:
                copies = -times + (1 if line_no in keep else 0)
            if copies == 0:
                continue
            pair = _parse_row(spec, line, line_no, problems)
            if pair is None:
                continue
            yield pair
            for r in range(1, copies):
                yield pair.model_copy(update={"id": f"{pair.id}#r{r}"})


def _parse_row(spec: SubsetSpec, line: str, line_no: int, problems: ProblemLog) -> PreferencePair | None:
    file = str(spec.annotation)
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        problems.add("malformed_json", file, f"not valid JSON ({e.msg} at column {e.colno})", line=line_no)
        return None
    if not isinstance(row, dict):
        problems.add("malformed_json", file, "a row must be a JSON object", line=line_no)
        return None
    for field in _REQUIRED:
        if not isinstance(row.get(field), str) or not row[field].strip():
            problems.add("missing_field", file, f"{field!r} is missing, empty or not a string", line=line_no,
                         field=field)
            return None
    names = _images_of(row)
    if names is None:
        problems.add("invalid_value", file, "'image' must be a path, a list of paths or absent", line=line_no,
                     field="image")
        return None
    placeholders = row["question"].count(IMAGE_PLACEHOLDER)
    if placeholders and placeholders != len(names):
        problems.add("placeholder_mismatch", file, f"question has {placeholders} {IMAGE_PLACEHOLDER} placeholder(s) "
                     f"but the row has {len(names)} image(s)", line=line_no, field="question")
        return None
    paths = [str(spec.root / name) for name in names]
    for name, path in zip(names, paths, strict=True):
        problem = image_problem(path)
        if problem:
            what = "not found" if problem == "image_missing" else "cannot be decoded"
            problems.add(problem, file, f"image {name!r} {what} (looked at {path})", line=line_no, field="image")
            return None
    metadata = {k: v for k, v in row.items() if k not in _ROW_FIELDS}
    answer_gt = row.get("answer_gt")
    try:
        return PreferencePair(
            id=f"{spec.name}/{line_no}", subset=spec.name, question=row["question"], images=paths,
            chosen=row["chosen"], rejected=row["rejected"], kind=spec.kind, source=spec.source,
            category=spec.category, answer_gt=None if answer_gt is None else str(answer_gt), metadata=metadata)
    except ValidationError as e:
        err = e.errors()[0]
        problems.add("invalid_value", file, err["msg"], line=line_no,
                     field=".".join(str(x) for x in err["loc"]) or None)
        return None

