"""Preference pairs -> model inputs, through the model's own processor and chat template.

A pair becomes the prompt tokens (chat template with the generation prompt, image placeholders expanded by the
processor), the chosen and rejected response tokens (the template's rendering of the assistant turn, end-of-turn
included; split token-exact by :mod:`mpo_train.chat_split`) and every other processor output (``pixel_values``,
``image_grid_thw``, ...) once per pair.
A preparation pass encodes every pair once, skips (and counts) those whose prompt does not fit ``max_length`` or
whose images are missing, do not decode or have more pixels than the limit (``max_image_pixels``), and caches the
result, so training never meets a pair it cannot use and every rank sees full batches.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from mmpr.chat import add_special_tokens, conversation
from mmpr.dataset_writer import TRAINING_COLUMNS
from mmpr.errors import UserError
from mmpr.images import PROBLEMS as IMAGE_PROBLEMS
from mmpr.images import UNREADABLE, max_pixels, pixels_problem
from mmpr.io import atomic_write_text
from mmpr.problems import Problem, ProblemLog
from mpo_train.chat_split import split_pair

TEXT_KEYS = {"input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids"}
MIN_RESPONSE_TOKENS = 8
REQUIRED = tuple(c for c in TRAINING_COLUMNS if c != "id")
SFT_REQUIRED = ("question", "images", "response")
_ROW_FILES = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


@dataclass
class EncodedPair:
    index: int
    prompt: list[int]
    chosen: list[int]
    rejected: list[int]
    mm: dict[str, torch.Tensor] = field(default_factory=dict)
    truncated: bool = False
    ref: tuple[float, float] | None = None

    @property
    def length(self) -> int:
        """Tokens of the packed sequence: prompt + chosen + rejected."""
        return len(self.prompt) + len(self.chosen) + len(self.rejected)


def _skip(code: str, index: int, row: dict[str, Any], message: str) -> Problem:
    """The pair at ``index`` cannot train (the project's one skip record, :class:`~mmpr.problems.Problem`)."""
    return Problem(code=code, file=f"pair {row.get('id', index)}", message=message)


# ------------------------------------------------------------------------------------------------------ reading

def _release_rows(folder: Path, subsets: tuple[str, ...] | None, stamp: str, report: str) -> Iterator[dict]:
    """Rows of a release; the rows it skips are written to ``report`` once all are read. ``stamp`` (a digest of
    the release files' sizes and times) is only there to key datasets' cache. No argument is a list: datasets
    would split a list among shards and run the generator once per item."""
    from mmpr.release import iter_subset, read_meta

    problems = ProblemLog()
    for spec in read_meta(folder, subsets=list(subsets) if subsets else None):
        for pair in iter_subset(spec, problems):
            yield {"id": pair.id, "question": pair.question, "images": pair.images, "chosen": pair.chosen,
                   "rejected": pair.rejected}
    problems.write(report)


def _release_stamp(folder: Path, subsets: list[str] | None) -> str:
    """A digest of a release folder's state: its path, the subsets read, its files' sizes and times."""
    files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*.json*"))]
    return hashlib.sha256(json.dumps([str(folder.resolve()), subsets, files]).encode()).hexdigest()[:20]


def _release_report(stamp: str) -> Path:
    """Where the skip report of one state of a release folder is kept, next to datasets' cache of its rows."""
    from datasets import config

    return Path(config.HF_DATASETS_CACHE) / "mmpr-release-problems" / f"{stamp}.json"


def _row_file(location: str, *, allow_sft: bool):
    """A .jsonl / .json / .parquet file of pairs, or of supervised rows (question, images, response) that become
    pairs with the response as chosen and an empty rejected: only the SFT term (``loss_weights=[0, 0, w]``) may
    train on those."""
    from datasets import load_dataset

    from mmpr.errors import UserError

    path = Path(location).expanduser()
    ds = load_dataset(_ROW_FILES[path.suffix.lower()], data_files=str(path), split="train")
    if all(c in ds.column_names for c in REQUIRED):
        return ds
    missing = [c for c in SFT_REQUIRED if c not in ds.column_names]
    if missing:
        raise UserError(f"{location}: the rows have no column {', '.join(missing)} (they have "
                        f"{', '.join(ds.column_names)}); expected pairs (question, images, chosen, rejected) or "
                        f"supervised rows (question, images, response)")
    if not allow_sft:
        raise UserError(f"{location}: supervised rows (question, images, response) have no rejected answer for the "
                        f"DPO and BCO terms; train them with the SFT term alone (loss_weights=[0,0,1])")
    return ds.rename_column("response", "chosen").add_column("rejected", [""] * len(ds))


def open_pairs(locations: list[str], *, subsets: list[str] | None = None, limit: int | None = None,
               problems=None, allow_sft: bool = False):
    """The pairs of mmpr dataset folders, Hub ids, MMPR release folders or row files, as one map-style dataset
    with the columns id, question, images (decoded on access), chosen, rejected. ``allow_sft`` admits files of
    supervised rows (see :func:`_row_file`).

    The rows of a release folder that cannot be read (:mod:`mmpr.release` says which and why) are skipped and
    added to ``problems`` (a :class:`mmpr.problems.ProblemLog`), also when the rows come from datasets' cache."""
    from datasets import Dataset, concatenate_datasets

    from mmpr.dataset_writer import features as row_features
    from mmpr.dataset_writer import open_dataset
    from mmpr.errors import NothingMade

    features = row_features(TRAINING_COLUMNS)
    parts = []
    for location in locations:
        path = Path(location).expanduser()
        if (path / "meta.json").is_file():
            stamp = _release_stamp(path, subsets)
            report = _release_report(stamp)
            report.parent.mkdir(parents=True, exist_ok=True)
            kwargs = {"folder": path, "subsets": tuple(subsets) if subsets else None, "stamp": stamp,
                      "report": str(report)}
            try:
                parts.append(Dataset.from_generator(_release_rows, features=features, gen_kwargs=kwargs))
            except ValueError as e:  # datasets refuses a generator that yields nothing
                if "corresponds to no data" not in str(e):
                    raise
                raise NothingMade(f"data {location}: 0 usable pairs in the release; `python -m mmpr.convert "
                                  f"{location} --out DIR` lists why each row was skipped, with file and line") from e
            if not report.is_file():  # rows from a cache whose report is gone: read the release again for it
                for _ in _release_rows(**kwargs):
                    pass
            if problems is not None:
                problems.update(ProblemLog.read(report))
            continue
        files = path.is_file() and path.suffix.lower() in _ROW_FILES
        for subset in [None] if files else subsets or [None]:
            ds = _row_file(location, allow_sft=allow_sft) if files else open_dataset(location, subset=subset,
                                                                                      streaming=False)
            missing = [c for c in REQUIRED if c not in ds.column_names]
            if missing:
                raise UserError(f"{location}: the data has no column {', '.join(missing)} (it has "
                                 f"{', '.join(ds.column_names)}); expected an mmpr preference dataset")
            if "id" not in ds.column_names:
                ds = ds.add_column("id", [f"{location}/{i}" for i in range(len(ds))])
            parts.append(ds.select_columns(["id", *REQUIRED]).cast(features))
    data = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    return data.select(range(min(limit, len(data)))) if limit else data


# ----------------------------------------------------------------------------------------------------- encoding

SKIP_RULES = "4"  # which pairs encode() skips, and how the prepared cache records them; a change re-prepares


def read_row(dataset, index: int) -> dict[str, Any] | Problem:
    """Row ``index`` of ``dataset`` with its images decoded, or why one of them cannot be used (missing, not
    decodable, more pixels than :func:`mmpr.images.max_pixels`: a decompression bomb is caught by PIL before
    it is decoded, a smaller oversized image just after)."""
    try:
        with warnings.catch_warnings():  # an image over the limit is reported as a skipped pair below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            row = dataset[index]
    except FileNotFoundError as e:
        return _image_skip("image_missing", index, dataset, e)
    except Image.DecompressionBombError:  # PIL's message names twice the limit, at which it refuses to decode
        return _image_skip("image_too_large", index, dataset, f"the limit is {max_pixels():,} pixels")
    except UNREADABLE as e:
        return _image_skip("image_unreadable", index, dataset, e)
    for img in row["images"]:
        if pixels_problem(img):
            return _skip("image_too_large", index, row, f"an image {IMAGE_PROBLEMS['image_too_large']}: "
                         f"{img.width} x {img.height} px, the limit is {max_pixels():,} pixels")
    return row


def _image_skip(code: str, index: int, dataset, error: Exception | str) -> Problem:
    row_id = dataset.select_columns(["id"])[index]["id"] if "id" in dataset.column_names else index
    return _skip(code, index, {"id": row_id}, f"an image {IMAGE_PROBLEMS[code]}: {error}")


class PairEncoder:
    """Encodes rows with a processor's chat template; the same object serves training and reference passes."""

    def __init__(self, processor, *, max_length: int, truncate_responses: bool = True,
                 template_options: dict | None = None):
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.max_length = max_length
        self.truncate_responses = truncate_responses
        self.template_options = dict(template_options or {})

    def fingerprint(self) -> str:
        template = getattr(self.processor, "chat_template", None) or self.tokenizer.chat_template or ""
        parts = [SKIP_RULES, template, str(self.max_length), str(self.truncate_responses), str(len(self.tokenizer)),
                 type(self.processor).__name__, json.dumps(_image_settings(self.processor), sort_keys=True),
                 json.dumps(self.template_options, sort_keys=True, default=str), "split-by-offsets",
                 str(max_pixels())]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]

    def encode_row(self, dataset, index: int) -> EncodedPair | Problem:
        """Row ``index`` of ``dataset`` encoded, or why it is skipped (its images included: :func:`read_row`)."""
        row = read_row(dataset, index)
        return row if isinstance(row, Problem) else self.encode(index, row)

    def encode(self, index: int, row: dict[str, Any]) -> EncodedPair | Problem:
        if row["chosen"] == row["rejected"]:  # no preference to learn: the DPO term would sit at ln 2
            return _skip("identical_responses", index, row, "rejected is identical to chosen")
        images = [img.convert("RGB") for img in row["images"]]
        messages = conversation(row["question"], len(images))
        split = split_pair(self.processor, messages, row["chosen"], row["rejected"], self.template_options)
        # one list of images per text: a flat list reads as one image per sample to some processors (LLaVA-OneVision
        # then tiles each image of a multi-image pair as if it were alone)
        inputs = self.processor(text=[split.prompt_text], images=[images] if images else None, return_tensors="pt",
                                add_special_tokens=add_special_tokens(self.tokenizer, split.prompt_text))
        prompt_ids = inputs["input_ids"][0].tolist()
        chosen, rejected = split.chosen, split.rejected
        room = self.max_length - len(prompt_ids)
        if room < MIN_RESPONSE_TOKENS:
            return _skip("prompt_too_long", index, row, f"the prompt takes {len(prompt_ids)} tokens "
                         f"(images included) of max_length {self.max_length}; raise max_length or use smaller images")
        truncated = max(len(chosen), len(rejected)) > room
        if truncated and not self.truncate_responses:
            return _skip("response_too_long", index, row, f"prompt {len(prompt_ids)} + response "
                         f"{max(len(chosen), len(rejected))} tokens exceed max_length {self.max_length}")
        if chosen[:room] == rejected[:room]:
            return _skip("identical_responses", index, row, f"chosen and rejected are the same in the {room} tokens "
                         f"max_length leaves them; raise max_length")
        mm = {k: v for k, v in inputs.items() if k not in TEXT_KEYS and isinstance(v, torch.Tensor)}
        return EncodedPair(index, prompt_ids, chosen[:room], rejected[:room], mm, truncated)


def _image_settings(processor) -> dict:
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None:
        return {}
    return {k: v for k, v in image_processor.to_dict().items() if isinstance(v, int | float | str | bool | list)}


# ------------------------------------------------------------------------------------------------- preparation

@dataclass
class Prepared:
    """Which rows train, their packed lengths, and what was skipped (:attr:`problems`) or truncated."""

    kept: list[int]
    lengths: list[int]
    truncated: int
    problems: ProblemLog

    @property
    def skipped(self) -> dict[str, int]:
        return dict(self.problems.counts)

    @property
    def examples(self) -> list[str]:
        """The first 20 skipped rows, for the log (all of them are in :attr:`problems`)."""
        return [str(p) for p in self.problems.items[:20]]

    def describe(self) -> str:
        text = f"{len(self.kept)} pairs ready, {self.problems.total} skipped"
        if self.problems.total:
            text += f" ({self.problems.by_code()})"
        if self.truncated:
            text += f", {self.truncated} with responses cut to fit max_length"
        return text


def prepare(dataset, encoder: PairEncoder, cache_dir: Path, *, rank: int = 0, world: int = 1,
            gather=None, progress: bool = True, problems: ProblemLog | None = None) -> Prepared:
    """Encode every row once (each rank a share; ``gather`` concatenates the shares), keep those that fit.

    ``problems`` holds the rows skipped before they reached ``dataset`` (bad rows of a release folder, see
    :func:`open_pairs`); they are counted with the rest and listed first.
    The result is cached under ``cache_dir`` by the dataset's fingerprint and the encoder's, so a resumed
    run does not redo it.
    """
    from tqdm import tqdm

    earlier = dict(problems.counts) if problems is not None else {}
    key = hashlib.sha256(f"{dataset._fingerprint}:{len(dataset)}:{encoder.fingerprint()}:{sorted(earlier.items())}"
                         .encode()).hexdigest()[:20]
    path = cache_dir / f"prepared-{key}.json"
    if path.exists():
        data = json.loads(path.read_text())
        return Prepared(**{**data, "problems": ProblemLog.model_validate(data["problems"])})
    mine = []
    for index in tqdm(range(rank, len(dataset), world), desc="preparing pairs", disable=not progress or rank != 0,
                      unit="pair"):
        result = encoder.encode_row(dataset, index)
        if isinstance(result, Problem):
            mine.append((index, None, "skipped", result.model_dump()))
        else:
            mine.append((index, result.length, "truncated" if result.truncated else "ok", None))
    rows = sorted(gather(mine) if gather else mine, key=lambda row: row[0])
    log = ProblemLog()
    if problems is not None:
        log.update(problems)
    for _, length, _, problem in rows:
        if length is None:
            log.record(Problem(**problem))
    prepared = Prepared(kept=[i for i, length, _, _ in rows if length is not None],
                        lengths=[length for _, length, _, _ in rows if length is not None],
                        truncated=sum(code == "truncated" for _, _, code, _ in rows), problems=log)
    if rank == 0:
        atomic_write_text(path, json.dumps({**prepared.__dict__, "problems": log.model_dump(mode="json")}))
    return prepared


class PairDataset(torch.utils.data.Dataset):
    """The kept rows, encoded on access (in DataLoader workers), with their reference log-probs (by dataset
    row) when they were precomputed."""

    def __init__(self, dataset, encoder: PairEncoder, indices: list[int],
                 ref: dict[int, tuple[float, float]] | None = None):
        self.dataset, self.encoder, self.indices, self.ref = dataset, encoder, indices, ref

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> EncodedPair:
        index = self.indices[i]
        pair = self.encoder.encode_row(self.dataset, index)
        if isinstance(pair, Problem):
            raise RuntimeError(f"row {index} was prepared as usable but now fails: {pair.message}")
        if self.ref is not None:
            pair.ref = self.ref.get(index)
        return pair


def collate(pairs: list[EncodedPair]) -> list[EncodedPair]:
    """Batches stay lists of pairs: the forward packs them on the device."""
    return pairs
