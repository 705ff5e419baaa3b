"""Built-in sources: the generic adapter, the shipped sample, and a few of the paper's sources.

Each named source knows its Hub id, columns and answer type; ``path=`` points it at a local copy with the
same columns (e.g. a train split saved with ``save_to_disk`` or exported to parquet).
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from mmpr.answers import LETTERS
from mmpr.errors import UserError
from mmpr.sources import SOURCES, SourceSpec, register_source
from mmpr.sources.base import Columns, DatasetSource


@register_source("generic", "any Hub dataset, local dataset folder or .jsonl/.json/.parquet/.csv file; map its "
                            "columns with columns={question, answer, image, choices, id, answer_type}")
def generic(spec: SourceSpec) -> DatasetSource:
    if not spec.path:
        raise UserError("the generic source needs a path (a Hub id, a dataset folder or a file)")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(spec.path.rstrip("/")).stem) or "generic"
    return DatasetSource(name=name, path=spec.path, columns=Columns(**(spec.columns or {})),
                         answer_type=spec.answer_type or "text")


SAMPLE_PATH = files("mmpr") / "data" / "sample" / "sample.jsonl"


@register_source("sample", "the small sample shipped with mmpr: counting, colours, arithmetic and yes/no "
                           "questions about synthetic shape images (for demos and smoke tests)")
def sample(spec: SourceSpec) -> DatasetSource:
    return DatasetSource(name="sample", path=str(SAMPLE_PATH), columns=Columns(
        id="id", choices="choices", answer_type="answer_type"), category="mathematics", require_image=True)


def _index_to_letter(column: str):
    def fix(row: dict) -> dict:
        row[column] = LETTERS[int(row[column])]
        return row

    return fix


def _scienceqa_fix(row: dict) -> dict:
    row = _index_to_letter("answer")(row)
    if row.get("hint"):
        row["question"] = f"Context: {row['hint']}\n{row['question']}"
    return row


@register_source("scienceqa", "derek-thomas/ScienceQA (multiple choice, image questions; hint used as context)")
def scienceqa(spec: SourceSpec) -> DatasetSource:
    return DatasetSource(name="scienceqa", path="derek-thomas/ScienceQA", split="train", columns=Columns(
        choices="choices", extra=("subject", "topic", "grade")), answer_type="multiple_choice",
        category="science", require_image=True, fix=_scienceqa_fix)


@register_source("ai2d", "AI2D diagrams, lmms-lab/ai2d layout (question, options, answer index, image); the Hub "
                         "copy is the test split: point path= at a train copy for training data")
def ai2d(spec: SourceSpec) -> DatasetSource:
    return DatasetSource(name="ai2d", path="lmms-lab/ai2d", split="test", columns=Columns(choices="options"),
                         answer_type="multiple_choice", category="science", require_image=True,
                         fix=_index_to_letter("answer"))


def _first_label(row: dict) -> dict:
    label = row["label"]
    row["label"] = label[0] if isinstance(label, list) else label
    return row


@register_source("chartqa", "HuggingFaceM4/ChartQA (relaxed accuracy, 5 % on numbers)")
def chartqa(spec: SourceSpec) -> DatasetSource:
    return DatasetSource(name="chartqa", path="HuggingFaceM4/ChartQA", split="train", columns=Columns(
        question="query", answer="label", extra=("human_or_machine",)), answer_type="chart", category="chart",
        require_image=True, fix=_first_label)


@register_source("geometry3k", "hiyouga/geometry3k (LaTeX answers judged with math-verify)")
def geometry3k(spec: SourceSpec) -> DatasetSource:
    return DatasetSource(name="geometry3k", path="hiyouga/geometry3k", split="train", columns=Columns(
        question="problem", image="images"), answer_type="latex", category="mathematics", require_image=True)


@register_source("clevr_math", "dali-does/clevr-math (integer answers)")
def clevr_math(spec: SourceSpec) -> DatasetSource:
    return DatasetSource(name="clevr_math", path="dali-does/clevr-math", split="train", columns=Columns(
        answer="label", extra=("template",)), answer_type="integer", category="mathematics", require_image=True)


_MATHVISTA_TYPES = {"integer": "integer", "float": "float", "text": "text", "list": "list"}


def _mathvista_fix(row: dict) -> dict:
    if row["question_type"] == "multi_choice":
        row["answer_type"] = "multiple_choice"
    elif row["answer_type"] in _MATHVISTA_TYPES:
        row["answer_type"] = _MATHVISTA_TYPES[row["answer_type"]]
    else:
        return {"_skip": f"unknown MathVista answer_type {row['answer_type']!r}"}
    return row


@register_source("mathvista", "AI4Math/MathVista-style data (pid, question, decoded_image, question_type, "
                              "answer_type, choices, precision, unit, answer, metadata)")
def mathvista(spec: SourceSpec) -> DatasetSource:
    return DatasetSource(name="mathvista", path="AI4Math/MathVista", split="testmini", columns=Columns(
        id="pid", image="decoded_image", choices="choices", answer_type="answer_type",
        extra=("precision", "unit", "metadata")), category="mathematics", require_image=True, fix=_mathvista_fix)


# an experiment's source lives with the experiment (experiments/), outside the product: named here, imported on use
SOURCES.register("synthetic_grid", "experiments.tiny_grid.source:synthetic_grid",
                 description="the synthetic grid-counting task of experiments/tiny_grid (path= its train.jsonl, "
                             "written by `python -m experiments.tiny_grid.generate data OUT`)")
