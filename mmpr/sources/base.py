"""A source turns rows of a dataset (Hub, local folder or file) into validated :class:`SourceItem` records.

Images are handed to an :class:`~mmpr.images.ImageStore`, so items carry small file paths whatever the source
holds (PIL images, bytes, paths). Rows that cannot become an item are reported to a
:class:`~mmpr.problems.ProblemLog` with the row number and field, and skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mmpr.errors import UserError, write_failure
from mmpr.images import ImageProblem, ImageStore, image_problem
from mmpr.locations import hub_out_of_reach, hub_unreachable
from mmpr.problems import ProblemLog
from mmpr.schemas import AnswerType, Category, SourceInfo, SourceItem

_LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv", ".arrow": "arrow"}


@dataclass
class Columns:
    """Which column holds what. ``answer_type`` may name a column, else the source's fixed type applies."""

    question: str = "question"
    answer: str | None = "answer"
    image: str | None = "image"
    choices: str | None = None
    id: str | None = None
    answer_type: str | None = None
    extra: tuple[str, ...] = ()


RowFix = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class DatasetSource:
    """Any Hub dataset, local dataset folder, or .jsonl/.json/.parquet/.csv file as a source of items.

    ``fix`` adapts a row to the mapped columns before it is read (e.g. an answer index to its letter);
    it may return ``{"_skip": reason}`` to skip a row on purpose (counted, not an error).
    """

    name: str
    path: str
    split: str = "train"
    config: str | None = None
    revision: str | None = None
    columns: Columns = field(default_factory=Columns)
    answer_type: AnswerType | None = None
    category: Category = "other"
    limit: int | None = None
    require_image: bool = False
    fix: RowFix | None = None
    _dataset: Any = field(default=None, init=False, repr=False)
    _bad_lines: list[tuple[int, str]] = field(default_factory=list, init=False, repr=False)

    def _load(self):
        from datasets import load_dataset, load_from_disk

        p = Path(self.path).expanduser()
        if p.is_file():
            fmt = _LOCAL_FORMATS.get(p.suffix.lower())
            if fmt is None:
                raise UserError(f"source {self.name!r}: {p} has an unsupported format; use one of "
                                 f"{', '.join(_LOCAL_FORMATS)}")
            if p.suffix.lower() == ".jsonl":
                return self._jsonl(p)
            return load_dataset(fmt, data_files=str(p), split="train")
        if p.is_dir() and (p / "dataset_info.json").exists() and (p / "state.json").exists():
            return load_from_disk(str(p))
        if p.is_dir() and (p / "dataset_dict.json").exists():
            return load_from_disk(str(p))[self.split]
        if not p.exists() and (self.path.startswith((".", "/", "~")) or self.path.count("/") > 1):
            raise FileNotFoundError(f"source {self.name!r}: {self.path} does not exist")
        if not p.is_dir() and (reason := hub_unreachable()) is not None:  # streamed from the Hub: needs it now
            raise hub_out_of_reach(f"source {self.name}:", self.path, reason, repo_type="dataset",
                                   use=f"give it as --sources {self.name}=DIR")
        return load_dataset(str(p) if p.is_dir() else self.path, self.config, split=self.split,
                            revision=self.revision, streaming=not p.is_dir())

    def _jsonl(self, path: Path):
        """A .jsonl file read line by line: a line that is not a JSON object is skipped and reported with its
        file and line (in :meth:`items`), not a reason to lose the file."""
        import json

        from datasets import Dataset

        rows: list[dict] = []
        numbers: list[int] = []
        self._bad_lines = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    self._bad_lines.append((number, f"not valid JSON ({e.msg})"))
                    continue
                if not isinstance(row, dict):
                    self._bad_lines.append((number, "not a JSON object"))
                    continue
                rows.append(row)
                numbers.append(number)
        _check_one_type_per_field(path, rows, numbers)
        keys = list(dict.fromkeys(k for row in rows for k in row))
        return Dataset.from_dict({k: [row.get(k) for row in rows] for k in keys})

    def open(self):
        """Open the underlying dataset now, so a wrong path fails before any work."""
        self._dataset = _undecoded_images(self._load(), self.columns.image)
        return self

    def info(self, num_items: int) -> SourceInfo:
        return SourceInfo(name=self.name, location=self.path, revision=self.revision, split=self.split,
                          num_items=num_items)

    def __len__(self) -> int:
        dataset = self.open()._dataset if self._dataset is None else self._dataset
        try:
            n = len(dataset)
        except TypeError:
            return self.limit or 0
        return min(n, self.limit) if self.limit else n

    def items(self, store: ImageStore, problems: ProblemLog) -> Iterator[SourceItem]:
        dataset = self.open()._dataset if self._dataset is None else self._dataset
        base = Path(self.path).expanduser()
        base = base.parent if base.is_file() else base
        for number, reason in self._bad_lines:
            problems.add("malformed_json", self.path, reason, line=number)
        for index, row in enumerate(dataset):
            if self.limit is not None and index >= self.limit:
                break
            item = self._item(index, dict(row), store, problems, base)
            if item is not None:
                yield item

    def _item(self, index: int, row: dict, store: ImageStore, problems: ProblemLog, base: Path) -> SourceItem | None:
        where = f"{self.name} ({self.path})"
        line = index + 1
        if self.fix is not None:
            try:
                row = self.fix(row)
            except (KeyError, ValueError, TypeError, IndexError) as e:
                problems.add("invalid_value", where, f"cannot adapt row: {e!r}", line=line)
                return None
            if "_skip" in row:
                problems.add("skipped_by_source", where, row["_skip"], line=line)
                return None
        c = self.columns
        for col in (c.question, c.answer, c.image, c.choices, c.id, c.answer_type):
            if col is not None and col not in row:
                problems.add("missing_field", where, f"column {col!r} is missing; the row has "
                             f"{', '.join(sorted(row))}", line=line, field=col)
                return None
        question = row[c.question]
        if question is None or not str(question).strip():
            problems.add("missing_field", where, f"column {c.question!r} is empty", line=line, field=c.question)
            return None
        try:
            images = self._images(row.get(c.image) if c.image else None, store, base)
        except ImageProblem as e:
            problems.add(e.code, where, str(e), line=line, field=c.image)
            return None
        except (OSError, ValueError) as e:
            if write_failure(e):  # the image store under --out could not be written: not this row's fault
                raise
            problems.add("image_unreadable", where, f"image cannot be read: {e}", line=line, field=c.image)
            return None
        if self.require_image and not images:
            problems.add("image_missing", where, "the row has no image", line=line, field=c.image)
            return None
        answer = row.get(c.answer) if c.answer else None
        answer_type = row.get(c.answer_type) if c.answer_type else self.answer_type
        choices = row.get(c.choices) if c.choices else None
        if isinstance(choices, str):
            choices = json.loads(choices) if choices.strip().startswith("[") else None
        try:
            return SourceItem(
                id=f"{self.name}/{row[c.id] if c.id else index}", source=self.name, category=self.category,
                question=str(question), images=images,
                answer=None if answer is None or answer_type is None else str(answer),
                answer_type=answer_type if answer is not None else None,
                choices=[str(x) for x in choices] if choices else None,
                metadata={k: row[k] for k in c.extra if k in row and row[k] is not None})
        except ValidationError as e:
            err = e.errors()[0]
            problems.add("invalid_value", where, err["msg"], line=line,
                         field=".".join(str(x) for x in err["loc"]) or None)
            return None

    @staticmethod
    def _images(value: Any, store: ImageStore, base: Path) -> list[str]:
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        out = []
        for v in values:
            if v is None:
                continue
            if isinstance(v, dict):
                v = v.get("bytes") or v.get("path")
            if isinstance(v, str):
                p = Path(v)
                v = p if p.is_absolute() else base / p
                if not v.is_file():
                    raise ValueError(f"{v} not found")
            path = store.put(v)
            problem = image_problem(path)
            if problem:
                raise ImageProblem(problem, str(v) if isinstance(v, Path) else "the row's image")
            out.append(path)
        return out


def _undecoded_images(dataset, column: str | None):
    """Read image columns as raw bytes: a corrupt image then becomes one reported row, not a crash of the
    dataset iterator (which decodes eagerly)."""
    from datasets import Image, List

    features = getattr(dataset, "features", None)
    if column is None or not features or column not in features:
        return dataset
    feature = features[column]
    if isinstance(feature, Image):
        return dataset.cast_column(column, Image(decode=False))
    if isinstance(feature, List) and isinstance(feature.feature, Image):
        return dataset.cast_column(column, List(Image(decode=False)))
    return dataset


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "an object"


def _check_one_type_per_field(path: Path, rows: list[dict], numbers: list[int]) -> None:
    """A column holds one type (a table's rule): the first row that breaks it is one :class:`UserError` naming the
    file, the line and the field, instead of pyarrow's conversion error naming none of them."""
    first: dict[str, tuple[str, int]] = {}
    for row, number in zip(rows, numbers, strict=True):
        for key, value in row.items():
            if value is None:
                continue
            kind = _json_kind(value)
            seen, line = first.setdefault(key, (kind, number))
            if kind != seen:
                raise UserError(f"{path}:{number}: field {key!r} is {kind} ({json.dumps(value)[:40]}) but {seen} on "
                                f"line {line}; give it one type on every line (e.g. every answer as a string: "
                                f"\"3\")")
