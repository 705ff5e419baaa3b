"""A synthetic visual reasoning task small enough for a tiny VLM on a CPU: counting coloured squares in a grid.

Each image is a SIDE x SIDE grid of 28 px cells in four colours: exactly SIDE * SIDE Qwen2-VL image tokens
(patch 14, merge 2), one per cell (3x3 by default: 9 tokens). Questions: 60 % "How many {c} squares are in the
grid?" (integer 0 to SIDE * SIDE) and 40 % "Are there more {a} squares than {b} squares in the grid?" (yes/no).
Guessing uniformly scores 0.6 * 1/10 + 0.4 * 1/2 = 26 % on a 3x3 grid, 0.6 * 1/17 + 0.4 * 1/2 = 23.5 % on a 4x4
one.
The chain of thought transcribes the grid line by line with a running tally of the asked colours, then states the
answer::

    line 1: red blue red; red 2
    line 2: green red yellow; red 3
    line 3: blue blue green; red 3
    Final answer: 3

The tally repeats the asked colour as the question writes it (the same token, " red"), so that copying it is one
attention step for a tiny model.

``python -m experiments.tiny_grid.generate data OUT`` writes the training questions (a source for ``mmpr.build``),
the held-out questions (an evaluation set for ``evals.run``, plus a copy with shuffled images), supervised
rows for ``mpo_train`` and the baselines; ``python -m experiments.tiny_grid.generate model OUT`` writes a tiny Qwen2-VL
whose tokenizer knows the task's words. OUT must be new, empty, or hold an unfinished run of the same command with
the same settings; anything else (a trained model, other data) needs ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from mmpr.cli import EXIT_CODES, ArgumentParser, add_output_arguments, front_door
from mmpr.io import atomic_write_text
from mmpr.locations import check_out, claim, claimed_by, new_folder
from mmpr.prompts import get_template

COLOURS = {"red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220), "yellow": (230, 200, 40)}
CELL = 28
SIDE = 3
COUNT_SHARE = 0.6
MARKER = ".synthetic_grid.json"  # the command and settings that wrote OUT


def count_answers(side: int = SIDE) -> int:
    """How many answers a count question has on a side x side grid: 0 to side * side."""
    return side * side + 1


def chance(side: int = SIDE) -> float:
    """Expected accuracy of uniform guessing: 1 in count_answers(side) counts, 1 in 2 comparisons."""
    return COUNT_SHARE / count_answers(side) + (1 - COUNT_SHARE) / 2


@dataclass(frozen=True)
class GridQuestion:
    """One question about one grid; ``grid`` holds colour names row by row."""

    id: str
    grid: tuple[tuple[str, ...], ...]
    kind: str  # "count" or "compare"
    colours: tuple[str, ...]
    question: str
    answer: str
    answer_type: str

    def cot(self) -> str:
        """The reference chain of thought: transcribe each line and keep a running tally of the asked colours,
        so that every step is one line read plus a small addition; then compare if asked, then conclude."""
        lines = []
        totals = [0] * len(self.colours)
        for i, row in enumerate(self.grid):
            totals = [t + row.count(c) for t, c in zip(totals, self.colours, strict=True)]
            tally = ", ".join(f"{c} {t}" for c, t in zip(self.colours, totals, strict=True))
            lines.append(f"line {i + 1}: {' '.join(row)}; {tally}")
        if self.kind == "compare":
            a, b = totals
            lines.append(f"{a} is {'more' if a > b else 'not more'} than {b}")
        lines.append(f"Final answer: {self.answer}")
        return "\n".join(lines)


def make_question(rng: random.Random, qid: str, side: int = SIDE) -> GridQuestion:
    names = list(COLOURS)
    grid = tuple(tuple(rng.choice(names) for _ in range(side)) for _ in range(side))
    cells = [c for row in grid for c in row]
    if rng.random() < COUNT_SHARE:
        colour = rng.choice(names)
        return GridQuestion(qid, grid, "count", (colour,), f"How many {colour} squares are in the grid?",
                            str(cells.count(colour)), "integer")
    a, b = rng.sample(names, 2)
    return GridQuestion(qid, grid, "compare", (a, b), f"Are there more {a} squares than {b} squares in the grid?",
                        "yes" if cells.count(a) > cells.count(b) else "no", "yes_no")


def render(grid: tuple[tuple[str, ...], ...]) -> Image.Image:
    image = Image.new("RGB", (len(grid[0]) * CELL, len(grid) * CELL))
    for r, row in enumerate(grid):
        for c, colour in enumerate(row):
            image.paste(COLOURS[colour], (c * CELL, r * CELL, (c + 1) * CELL, (r + 1) * CELL))
    return image


def questions(n: int, *, seed: int, prefix: str, side: int = SIDE) -> list[GridQuestion]:
    rng = random.Random(seed)
    return [make_question(rng, f"{prefix}-{i:05d}", side) for i in range(n)]


def cot_prompt(q: GridQuestion) -> str:
    """The user turn the data engine and the CoT evaluation give (the ``mpo_cot`` template)."""
    return get_template("mpo_cot").render(q.question)


def direct_prompt(q: GridQuestion) -> str:
    """The user turn of the direct-answer evaluation (the ``direct`` template)."""
    return get_template("direct").render(q.question)


def corpus(side: int = SIDE) -> list[str]:
    """Text that teaches a tiny tokenizer the task's words: prompts, questions and reasoning."""
    rng = random.Random(12345)
    out = []
    for i in range(400):
        q = make_question(rng, str(i), side)
        out += [cot_prompt(q), direct_prompt(q), q.cot()]
    return out


def baselines(train: list[GridQuestion], test: list[GridQuestion]) -> dict[str, float]:
    """Chance (uniform guessing per question kind) and majority (the training set's most common answer per
    kind), as accuracies in [0, 1] on ``test``."""
    majority = {kind: Counter(q.answer for q in train if q.kind == kind).most_common(1)[0][0]
                for kind in {q.kind for q in train}}
    expected = sum(1 / count_answers(len(q.grid)) if q.kind == "count" else 0.5 for q in test) / len(test)
    hits = sum(majority.get(q.kind) == q.answer for q in test) / len(test)
    return {"chance": round(expected, 4), "majority": round(hits, 4)}


# --------------------------------------------------------------------------------------------------- writing

class Baselines(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chance: float = Field(ge=0, le=1, description="Expected accuracy of uniform guessing per question kind.")
    majority: float = Field(ge=0, le=1, description="Accuracy of the training set's most common answer per kind.")


class TaskSummary(BaseModel):
    """``OUT/task.json``: the sizes and draw of the task's files and the held-out questions' baselines."""

    model_config = ConfigDict(extra="forbid")

    side: int = Field(description="Cells per grid line.")
    train: int
    val: int
    test: int
    sft: int
    direct_share: float = Field(description="Share of direct answers in sft_shift.jsonl.")
    seed: int
    baselines: Baselines


def _save_images(qs: list[GridQuestion], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for q in qs:
        path = folder / f"{q.id}.png"
        if not path.exists():
            render(q.grid).save(path)
        paths[q.id] = path.resolve()
    return paths


def _jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _eval_parquet(path: Path, qs: list[GridQuestion], images: list[Path]) -> None:
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature

    features = Features({"id": Value("string"), "question": Value("string"), "answer": Value("string"),
                         "answer_type": Value("string"), "kind": Value("string"), "image": ImageFeature()})
    rows = {"id": [q.id for q in qs], "question": [q.question for q in qs], "answer": [q.answer for q in qs],
            "answer_type": [q.answer_type for q in qs], "kind": [q.kind for q in qs],
            "image": [str(p) for p in images]}
    tmp = path.with_suffix(".tmp.parquet")
    Dataset.from_dict(rows, features=features).to_parquet(str(tmp))
    tmp.replace(path)


def write_data(out: Path, *, train: int, test: int, sft: int, direct_share: float, seed: int = 0,
               side: int = SIDE, val: int = 0) -> TaskSummary:
    """Write the task's files under ``out`` and return the summary (also ``out/task.json``).

    - ``train.jsonl``: the training questions, the ``synthetic_grid`` source of ``mmpr.build``;
    - ``test.parquet`` / ``test_shuffled.parquet``: held-out questions for ``evals.run`` (the second with each
      image moved to another question, to check that the model reads the image);
    - ``val.parquet`` (when ``val`` > 0): validation questions, apart from the held-out ones, for choices made
      while training (such as where to stop the shift) so that the held-out questions stay untouched;
    - ``sft_cot.jsonl``: supervised rows (prompt, image, response) with the CoT prompt and reasoning;
    - ``sft_shift.jsonl``: the same questions answered mostly directly (``direct_share`` of the rows with the
      direct prompt and the bare answer, the rest CoT): the shift that makes CoT worse than direct answering;
    - ``task.json``: sizes and the chance and majority baselines on the held-out questions.
    """
    out.mkdir(parents=True, exist_ok=True)
    train_qs = questions(train, seed=seed, prefix="train", side=side)
    test_qs = questions(test, seed=seed + 1, prefix="test", side=side)
    sft_qs = questions(sft, seed=seed + 2, prefix="sft", side=side)
    val_qs = questions(val, seed=seed + 4, prefix="val", side=side)
    images = _save_images(train_qs + test_qs + sft_qs + val_qs, out / "images")
    _jsonl(out / "train.jsonl", [{"id": q.id, "question": q.question, "answer": q.answer,
                                  "answer_type": q.answer_type, "image": str(images[q.id])} for q in train_qs])
    test_images = [images[q.id] for q in test_qs]
    _eval_parquet(out / "test.parquet", test_qs, test_images)
    shuffled = test_images[1:] + test_images[:1]  # a derangement: no question keeps its image
    _eval_parquet(out / "test_shuffled.parquet", test_qs, shuffled)
    if val_qs:
        _eval_parquet(out / "val.parquet", val_qs, [images[q.id] for q in val_qs])
    rng = random.Random(seed + 3)
    _jsonl(out / "sft_cot.jsonl", [{"id": q.id, "question": cot_prompt(q), "images": [str(images[q.id])],
                                    "response": q.cot()} for q in sft_qs])
    shift = []
    for q in sft_qs:
        direct = rng.random() < direct_share
        shift.append({"id": q.id, "question": direct_prompt(q) if direct else cot_prompt(q),
                      "images": [str(images[q.id])], "response": q.answer if direct else q.cot()})
    _jsonl(out / "sft_shift.jsonl", shift)
    summary = TaskSummary(side=side, train=train, val=val, test=test, sft=sft, direct_share=direct_share, seed=seed,
                          baselines=Baselines(**baselines(train_qs + sft_qs, test_qs)))
    atomic_write_text(out / "task.json", summary.model_dump_json(indent=2) + "\n")
    return summary


def write_model(out: Path, *, hidden: int, layers: int, seed: int = 0, side: int = SIDE) -> Path:
    """A tiny Qwen2-VL whose tokenizer also learned the task's text (see :func:`corpus`) and whose image budget
    holds a side x side grid (one token per cell)."""
    from mmpr.testing import tiny_vlm

    return tiny_vlm(out, "qwen2_vl", seed=seed, layers=layers, hidden=hidden,
                    max_image_tokens=max(16, side * side), extra_corpus=tuple(corpus(side)))


@front_door
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m experiments.tiny_grid.generate", description=__doc__, epilog=EXIT_CODES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="write the task's questions, evaluation sets and supervised rows")
    data.add_argument("out", type=Path)
    data.add_argument("--train", type=int, default=600, help="training questions (the build's source)")
    data.add_argument("--test", type=int, default=400, help="held-out questions")
    data.add_argument("--val", type=int, default=0, help="validation questions (none by default)")
    data.add_argument("--sft", type=int, default=4000, help="questions of the supervised stages")
    data.add_argument("--direct-share", type=float, default=0.9, help="share of direct answers in the shift")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--side", type=int, default=SIDE, help="cells per grid line (one image token per cell)")
    model = sub.add_parser("model", help="write a tiny Qwen2-VL with the task's vocabulary")
    model.add_argument("out", type=Path)
    model.add_argument("--hidden", type=int, default=128)
    model.add_argument("--layers", type=int, default=2)
    model.add_argument("--seed", type=int, default=0)
    model.add_argument("--side", type=int, default=SIDE, help="the grid's side the model will read")
    for command in (data, model):
        add_output_arguments(command)
    args = parser.parse_args(argv)
    if not 2 <= args.side <= 8:
        parser.error("--side must be between 2 and 8")
    if args.command == "data" and not 0 <= args.direct_share <= 1:
        parser.error("--direct-share must be in [0, 1]")
    job = {k: v for k, v in vars(args).items() if k not in ("out", "overwrite", "verbose")}
    check_out(args.out, marker={"data": "the grid task's data", "model": "a grid-task model"}[args.command],
              same_job=claimed_by(MARKER, job), overwrite=args.overwrite, what="OUT")
    with new_folder(args.out):
        claim(args.out, MARKER, job)
        if args.command == "data":
            summary = write_data(args.out, train=args.train, test=args.test, sft=args.sft,
                                 direct_share=args.direct_share, seed=args.seed, side=args.side, val=args.val)
            print(summary.model_dump_json())
        else:
            print(write_model(args.out, hidden=args.hidden, layers=args.layers, seed=args.seed, side=args.side))
    return 0


if __name__ == "__main__":
    sys.exit(main())
