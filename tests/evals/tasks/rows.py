"""Hand-made rows in each benchmark's published schema (field names and types of its Hub dataset card), for the
scoring tests and the end-to-end run on local files."""

from __future__ import annotations

import io
import json
from pathlib import Path

from datasets import Dataset, Features, Image, List, Value

from mmpr.testing import tiny_images


def _png(i: int) -> dict:
    buf = io.BytesIO()
    tiny_images(i + 1, size=(96, 72))[i].save(buf, format="PNG")
    return {"bytes": buf.getvalue()}


S = Value("string")

FEATURES = {
    # LightChen2333/M3CoT
    "m3cot": Features({"id": S, "category": S, "image_id": S, "question": S, "choices": List(S), "context": S,
                       "answer": S, "rationale": S, "split": S, "image": Image(), "domain": S, "topic": S}),
    # lmms-lab/MMMU (MMMU/MMMU per subject): options and img_type are Python lists written as strings
    "mmmu": Features({"id": S, "question": S, "options": S, "explanation": S,
                      **{f"image_{i}": Image() for i in range(1, 8)}, "img_type": S, "answer": S,
                      "topic_difficulty": S, "question_type": S, "subfield": S}),
    # CaraJ/MathVerse-lmmseval, testmini_version_split
    "mathverse": Features({"sample_index": S, "problem_index": S, "problem_version": S, "question": S,
                           "image": Image(), "answer": S, "question_type": S,
                           "metadata": {"split": S, "source": S, "subject": S, "subfield": S},
                           "query_wo": S, "query_cot": S, "question_for_eval": S}),
    # DynaMath/DynaMath_Sample
    "dynamath": Features({"id": S, "question": S, "image": S, "decoded_image": Image(), "ground_truth": S,
                          "answer_type": S, "subject": S, "knowledge_level": S}),
    # We-Math/We-Math
    "wemath": Features({"ID": S, "split": S, "knowledge concept": S, "question": S, "option": S, "answer": S,
                        "image_path": Image(), "key": S, "question number": Value("int64"),
                        "knowledge concept description": S}),
    # lscpku/LogicVista with the fields of the benchmark's data/dataset.json
    "logicvista": Features({"imagename": S, "question": S, "answer": S, "reasoning": S, "skill": List(S),
                            "capability": List(S), "image": Image()}),
    # MathLLMs/MathVision
    "mathvision": Features({"id": S, "question": S, "options": List(S), "image": S, "decoded_image": Image(),
                            "answer": S, "solution": S, "level": Value("int64"), "subject": S}),
}


def m3cot(n: int = 4) -> list[dict]:
    return [{"id": f"physics-{i}", "category": "physical-commonsense" if i % 2 else "science",
             "image_id": f"img{i}", "question": f"Which object is heavier? ({i})",
             "choices": ["the feather", "the brick", "they weigh the same"], "context": "" if i % 2 else "Look.",
             "answer": "B", "rationale": "A brick is heavier.", "split": "test", "image": _png(i),
             "domain": "science" if i % 2 == 0 else "commonsense", "topic": "physics"} for i in range(n)]


def mmmu(n: int = 4) -> list[dict]:
    rows = []
    for i in range(n):
        mc = i % 2 == 0
        rows.append({"id": f"validation_Art_Theory_{i + 1}" if mc else f"validation_Physics_{i + 1}",
                     "question": f"<image 1> Which period is this? ({i})" if mc else f"<image 1> Speed in m/s? ({i})",
                     "options": "['Baroque', 'Rococo', 'Gothic']" if mc else "[]", "explanation": "",
                     **{f"image_{k}": (_png(i) if k == 1 else None) for k in range(1, 8)},
                     "img_type": "['Paintings']", "answer": "B" if mc else "3.14",
                     "topic_difficulty": "Medium", "question_type": "multiple-choice" if mc else "open",
                     "subfield": "Art History" if mc else "Mechanics"})
    return rows


def mathverse(n: int = 4) -> list[dict]:
    return [{"sample_index": str(i + 1), "problem_index": str(i + 1), "problem_version": "Vision Only",
             "question": "", "image": _png(i), "answer": "C" if i % 2 == 0 else "12",
             "question_type": "multi-choice" if i % 2 == 0 else "free-form",
             "metadata": {"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry",
                          "subfield": "Angle" if i % 2 == 0 else "Length"},
             "query_wo": "According to the question shown in the image, please directly answer the question.",
             "query_cot": "According to the question shown in the image, please first conduct reasoning.",
             "question_for_eval": "As shown in the figure ..."} for i in range(n)]


def dynamath(seeds: int = 2, variants: int = 3) -> list[dict]:
    # sample_all order: variant 1 of every seed, then variant 2, ...
    return [{"id": str(s + 1), "question": "What is the slope of the line? Choices: (A) 1 (B) 2 (C) 3"
             if s == 0 else "What is the area of the shaded region?", "image": f"images/{s}_{v}.png",
             "decoded_image": _png(s), "ground_truth": "B" if s == 0 else f"{v + 1}.5",
             "answer_type": "multiple choice" if s == 0 else "float",
             "subject": "analytic geometry" if s == 0 else "plane geometry", "knowledge_level": "high school"}
            for v in range(variants) for s in range(seeds)]


def wemath() -> list[dict]:
    """One two-step problem (ID 1: its two steps and the whole) and one one-step problem."""
    rows = []
    for key, answer in (("2steps_1", "A"), ("2steps_2", "C"), ("2steps_multi", "B"), ("1step", "D")):
        rows.append({"ID": "1" if key.startswith("2") else "2", "split": "testmini",
                     "knowledge concept": "Area of rectangles" if key.startswith("2") else "Angles",
                     "question": f"Question for {key}", "option": "A. 6 cm²; B. 8 cm²; C. 12 cm²; D. 24 cm²; "
                     "E. No correct answer", "answer": answer, "image_path": _png(len(rows)), "key": key,
                     "question number": len(rows) + 1, "knowledge concept description": "..."})
    return rows


def logicvista(n: int = 3) -> list[dict]:
    answers = ["C", "A, C", "3"]
    return [{"imagename": f"v1_{i}.png", "question": "Which choice (A, B, C, or D) fits the pattern?",
             "answer": answers[i % 3], "reasoning": "...", "skill": ["inductive"] if i % 2 == 0 else ["deductive"],
             "capability": ["diagram"], "image": _png(i)} for i in range(n)]


def mathvision(n: int = 3) -> list[dict]:
    return [{"id": str(i + 1), "question": f"<image1> How long is the side? ({i})",
             "options": ["1", "2", "3", "4", "5"] if i % 2 == 0 else [], "image": f"images/{i}.jpg",
             "decoded_image": _png(i), "answer": "C" if i % 2 == 0 else "2\\sqrt{3}", "solution": "",
             "level": 2, "subject": "metric geometry - length"} for i in range(n)]


ROWS = {"m3cot": m3cot, "mmmu": mmmu, "mathverse": mathverse, "dynamath": dynamath, "wemath": wemath,
        "logicvista": logicvista, "mathvision": mathvision}


def write_parquet(name: str, path) -> str:
    Dataset.from_list(ROWS[name](), features=FEATURES[name]).to_parquet(str(path))
    return str(path)


def doc(name: str, i: int = 0) -> dict:
    """Row ``i`` as lmms-eval hands it to a task (images decoded)."""
    return Dataset.from_list(ROWS[name](), features=FEATURES[name])[i]


PUBLISHED = Path(__file__).parent.parent / "data" / "published_options.json"


def published(name: str) -> list[dict]:
    """Rows of ``name``'s published files (their source in the json), cut to what the benchmark's target reads,
    with the rest of the schema None: the real option structures (letters as options, options in the question,
    irregular separators)."""
    rows = json.loads(PUBLISHED.read_text(encoding="utf-8"))[name]["rows"]
    fields = FEATURES[name]
    return [{**{f: None for f in fields}, **row} for row in rows]


def smoke(utils, name: str, target=None) -> int:
    """Every published row of ``name`` gets a target and is scored without raising: its gold letter stated as a CoT
    answer is right, and so is the gold option's text where the options are written out. Returns the rows seen."""
    from mmpr.answers import LETTERS

    target = target or utils.target
    cot = "I read the figure and compare the candidates one by one.\nAnswer: "
    for row in published(name):
        t = target(row)
        gold = t.answer if isinstance(t.answer, str) else t.answer[0]
        record = utils.process_results_cot(row, [cot + gold.replace("\n", ", ")])["accuracy"]  # "C\nD": both
        if not gold:  # LogicVista v1_447 has no answer: unscorable, never raised
            assert not record["scorable"], row
            continue
        assert record["correct"] and record["scorable"], (row, record)
        if t.answer_type == "multiple_choice" and len(gold) == 1 and gold in LETTERS:
            text = t.choices[LETTERS.index(gold)]
            if len(text) > 1 and sum(c.strip().lower() == text.strip().lower() for c in t.choices) == 1:
                assert utils.process_results_cot(row, [cot + text])["accuracy"]["correct"], (row, text)
    return len(published(name))
