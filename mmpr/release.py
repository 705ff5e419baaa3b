"""The released MMPR layout: ``meta.json`` + annotation ``.jsonl`` files + image folders.

``meta.json`` maps each subset to ``{"root": image folder, "annotation": jsonl, "repeat_time": float,
"length": rows, ...}`` (``repeat_time`` as :func:`selected_lines` describes); each jsonl row holds ``image`` (a
path relative to ``root``, a list of them, or nothing), ``question``, ``chosen``, ``rejected`` and optionally
``answer_gt``, ``chosen_meta``, ``rejected_meta``, ``image_wh``. The published metas point at their authors'
cluster (absolute ``/mnt/petrelfs/...`` paths, ``vc-reader:s3://`` roots) or at ``MMPR-vX/...`` relative paths,
so paths that do not exist are remapped into the release folder. Bad rows are reported with file, line and
reason, and skipped. The pair kind comes from the subset name's suffix (:data:`SUFFIXES`).
"""

from __future__ import annotations

import json
import math
import random
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from mmpr.chat import IMAGE_PLACEHOLDER
from mmpr.errors import UserError
from mmpr.images import PROBLEMS, image_problem
from mmpr.problems import ProblemLog
from mmpr.schemas import Category, PairKind, PreferencePair


@dataclass(frozen=True)
class Suffix:
    """A subset-name ending the published releases use, the pair kind it declares, and where it was seen."""

    pattern: str
    kind: PairKind
    seen_in: str
    meaning: str
    category: Category | None = None  # overrides the source-name hints when the suffix itself says it


# Every suffix of the subset names in the real meta files (tests/mmpr/data/mmpr_meta/ holds them, with sources).
# v1.0: OpenGVLab/MMPR meta.json; v1.1: the InternVL authors' MPO meta of Dec 2024 (the MMPR-v1.1 era);
# v1.2: OpenGVLab/MMPR-v1.2 meta.json. Order matters: the first pattern that matches wins.
SUFFIXES: tuple[Suffix, ...] = (
    Suffix(r"_pairs_vqa_correctness_rules", "correctness", "v1.0, v1.1, v1.2",
           "chosen reaches the ground-truth answer, rejected a wrong one (rule-based check)"),
    Suffix(r"_pairs_vqa_format_rules", "format", "v1.0, v1.1, v1.2",
           "rejected has no parsable final answer"),
    Suffix(r"_pairs_vqa_direct_rules", "correctness", "v1.1, v1.2",
           "direct-answer questions, judged by rules against the ground truth"),
    Suffix(r"_ocr_correctness_rules", "correctness", "v1.1",
           "OCR transcriptions judged by rules against the ground truth", "ocr"),
    Suffix(r"_prefix_pair_sr[0-9.]+_wo_image", "dropout_ntp", "v1.0, v1.1, v1.2",
           "Dropout-NTP: rejected continues the first sr of chosen without the image"),
    Suffix(r"_prefix_pair_sr[0-9.]+_with_image", "dropout_ntp", "v1.1, v1.2",
           "continuation pair: rejected continues the first sr of chosen (sr0.0: from scratch) with the image"),
    Suffix(r"_sr[0-9.]+_wo_image", "dropout_ntp", "v1.1, v1.2",
           "Dropout-NTP on data without ground truth (e.g. inat_..._sr0.50_wo_image, RLAIF-V-Dataset_sr0.5_wo_image)"),
    Suffix(r"_sr[0-9.]+_with_image", "dropout_ntp", "v1.1, v1.2",
           "continuation pair with the image on data without ground truth (e.g. wildvision_..._sr0.5_with_image)"),
)
_SUFFIX_PATTERNS = [(re.compile(s.pattern + "$"), s) for s in SUFFIXES]

# Source name fragments (lowercase, alphanumerics only) -> the paper's categories; the first match wins.
_CATEGORY_HINTS: list[tuple[str, Category]] = [
    ("docvqa", "document"), ("docreason", "document"), ("funsd", "document"),
    ("chartqa", "chart"), ("dvqa", "chart"), ("mapqa", "chart"), ("plotqa", "chart"), ("figureqa", "chart"),
    ("ai2d", "science"), ("scienceqa", "science"), ("m3cot", "science"), ("tqa", "science"),
    ("gaokaophysics", "science"), ("gaokaochemistry", "science"),
    ("superclevr", "general_vqa"),
    ("geoqa", "mathematics"), ("clevrmath", "mathematics"), ("clevr", "mathematics"), ("geometry3k", "mathematics"),
    ("geos", "mathematics"), ("geomverse", "mathematics"), ("geo170k", "mathematics"), ("mathvista", "mathematics"),
    ("mathv", "mathematics"), ("unigeo", "mathematics"), ("tabmwp", "mathematics"), ("mavis", "mathematics"),
    ("gaokaomath", "mathematics"),
    ("ocrvqa", "ocr"), ("infovqa", "ocr"), ("infographic", "ocr"), ("textvqa", "ocr"), ("stvqa", "ocr"),
    ("sroie", "ocr"), ("poie", "ocr"), ("ocr", "ocr"),
    ("vqav2", "general_vqa"), ("gqa", "general_vqa"), ("okvqa", "general_vqa"), ("iconqa", "general_vqa"),
    ("nlvr2", "general_vqa"), ("tallyqa", "general_vqa"), ("vsr", "general_vqa"),
    ("coco", "general_vqa"), ("vqa", "general_vqa"),
]


def suffix_of(subset: str) -> Suffix | None:
    """The entry of :data:`SUFFIXES` that ``subset`` ends with, if any."""
    for pattern, suffix in _SUFFIX_PATTERNS:
        if pattern.search(subset):
            return suffix
    return None


def kind_and_source(subset: str) -> tuple[PairKind, str]:
    """The pair kind a subset's name suffix declares, and the source name without that suffix
    (``imported`` and the whole name when no suffix of :data:`SUFFIXES` matches)."""
    for pattern, suffix in _SUFFIX_PATTERNS:
        if pattern.search(subset):
            return suffix.kind, pattern.sub("", subset)
    return "imported", subset


def category_of(source: str) -> Category:
    key = re.sub(r"[^a-z0-9]", "", source.lower())
    for hint, category in _CATEGORY_HINTS:
        if hint in key:
            return category
    return "other"


def subset_category(subset: str) -> Category:
    """The category of a subset: the suffix's own where it has one, else from its source name."""
    suffix = suffix_of(subset)
    if suffix is not None and suffix.category is not None:
        return suffix.category
    return category_of(kind_and_source(subset)[1])


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
    """Parse ``meta.json``; raises :class:`UserError` naming the subset and field when an entry is unusable.

    ``root`` may be null (text-only subsets in the authors' meta): image names then resolve under the release."""
    release_dir = Path(release_dir)
    meta_path = release_dir / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: no meta.json; is {release_dir} an MMPR release folder?")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{meta_path}:{e.lineno}: not valid JSON ({e.msg})") from e
    if not isinstance(meta, dict):
        raise UserError(f"{meta_path}: expected an object mapping subset names to entries")
    unknown = sorted(set(subsets or []) - set(meta))
    if unknown:
        raise UserError(f"{meta_path}: no subset named {', '.join(unknown)}; it has: {', '.join(sorted(meta))}")
    specs = []
    for name, entry in meta.items():
        if subsets and name not in subsets:
            continue
        if not isinstance(entry, dict):
            raise UserError(f"{meta_path}: subset {name!r}: the entry must be an object")
        if not isinstance(entry.get("annotation"), str):
            raise UserError(f"{meta_path}: subset {name!r}: field 'annotation' is missing or not a string")
        if "root" not in entry or not isinstance(entry["root"], str | None):
            raise UserError(f"{meta_path}: subset {name!r}: field 'root' is missing or not a string or null")
        repeat = entry.get("repeat_time", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int | float) or not math.isfinite(repeat) or \
                repeat <= 0:
            raise UserError(f"{meta_path}: subset {name!r}: field 'repeat_time' must be a finite positive number "
                            f"(a share below 1, a count of copies above), got {repeat!r}; fix meta.json")
        annotation = remap(entry["annotation"], release_dir)
        if not annotation.is_file():
            raise FileNotFoundError(f"{meta_path}: subset {name!r}: annotation {entry['annotation']!r} not found "
                                    f"(looked for {annotation})")
        kind, source = kind_and_source(name)
        length = entry.get("length")
        specs.append(SubsetSpec(name=name, root=release_dir if entry["root"] is None else remap(entry["root"],
                                release_dir), annotation=annotation, repeat_time=float(repeat),
                                length=length if isinstance(length, int) else None, kind=kind, source=source,
                                category=subset_category(name)))
    return specs


REPEAT_WARNING = 100  # a repeat_time that copies rows more often than this is almost always a typo


def repeat_warning(specs: list[SubsetSpec], *, limit: int = REPEAT_WARNING,
                   fix: str = "add --no-repeat to keep every row once") -> str | None:
    """A warning, before anything is read, when ``repeat_time`` copies some subset's rows more than ``limit`` times
    (as :func:`selected_lines` applies it): those subsets and the total number of rows the release then makes."""
    big = [s for s in specs if int(s.repeat_time) > limit]
    if not big:
        return None
    lines = {s.name: s.length if s.length is not None else _line_count(s.annotation) for s in specs}
    rows = {s.name: lines[s.name] * int(s.repeat_time) if s.repeat_time >= 1 else int(lines[s.name] * s.repeat_time)
            for s in specs}
    each = "; ".join(f"subset {s.name!r}: repeat_time {s.repeat_time:g} x {lines[s.name]:,} lines = "
                     f"{rows[s.name]:,} rows" for s in big)
    return (f"repeat_time copies rows more than {limit} times ({each}); {sum(rows.values()):,} rows in all from "
            f"{sum(lines.values()):,} lines; check meta.json, or {fix}")


def _line_count(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def selected_lines(n: int, repeat_time: float, rng: random.Random) -> tuple[frozenset[int] | None, int]:
    """Which of ``n`` annotation lines (1-based) ``repeat_time`` keeps (None: all) and how many copies of each.

    The semantics are those of InternVL's MPO trainer, the reference reader of these files
    (OpenGVLab/InternVL, ``internvl_chat/internvl/train/internvl_chat_mpo.py``,
    ``LazySupervisedDataset.__init__``; the same code is in ``internvl_chat_gpt_oss/``): the annotation is read
    with ``readlines()``, so ``n`` counts every line, bad ones included;

    - ``repeat_time < 1``: ``random.sample(lines, k=int(len(lines) * repeat_time))``, i.e. ``int(n * repeat_time)``
      distinct lines drawn without replacement. ``int`` truncates: 0.005 of 100 lines is 0 lines, an empty subset;
    - ``repeat_time > 1``: ``lines * int(repeat_time)``, every line ``int(repeat_time)`` times. The fraction of a
      non-integer value above 1 is dropped (1.5 keeps every line once, 2.7 twice);
    - ``repeat_time == 1``: every line once.

    The reference draws from Python's global random state; here ``rng`` (seeded per subset by the caller) makes
    the draw reproducible: the same seed keeps the same lines.
    """
    if repeat_time < 1:
        return frozenset(rng.sample(range(1, n + 1), k=int(n * repeat_time))), 1
    return None, int(repeat_time)


@dataclass
class SubsetStats:
    """What reading one subset did: its lines, those ``repeat_time`` selected, and how many of them were bad."""

    lines: int = 0
    rows: int = 0
    selected: int = 0
    skipped: int = 0
    pairs: int = 0


def empty_reason(spec: SubsetSpec, stats: SubsetStats) -> str:
    """Why a subset gave no pairs, in words."""
    if stats.rows == 0:
        return f"its annotation {spec.annotation} has no rows"
    if stats.selected == 0:
        return (f"repeat_time {spec.repeat_time:g} keeps int({stats.lines} x {spec.repeat_time:g}) = 0 of its "
                f"{stats.lines} lines")
    return f"all {stats.selected} rows repeat_time selected were skipped as bad ({stats.skipped} reported)"


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


def iter_subset(spec: SubsetSpec, problems: ProblemLog, *, seed: int = 0, apply_repeat: bool = True,
                stats: SubsetStats | None = None) -> Iterator[PreferencePair]:
    """Yield the valid pairs of one subset, honouring ``repeat_time`` as :func:`selected_lines` describes unless
    ``apply_repeat`` is False; report every bad row to ``problems``; fill ``stats`` if given."""
    stats = stats if stats is not None else SubsetStats()
    stats.lines = _line_count(spec.annotation)
    if apply_repeat:
        rng = random.Random(seed ^ zlib.crc32(spec.name.encode()))
        keep, copies = selected_lines(stats.lines, spec.repeat_time, rng)
    else:
        keep, copies = None, 1
    with open(spec.annotation, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            stats.rows += 1
            if keep is not None and line_no not in keep:
                continue
            stats.selected += 1
            pair = _parse_row(spec, line, line_no, problems)
            if pair is None:
                stats.skipped += 1
                continue
            stats.pairs += copies
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
            problems.add(problem, file, f"image {name!r} {PROBLEMS[problem]} (looked at {path})", line=line_no,
                         field="image")
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

