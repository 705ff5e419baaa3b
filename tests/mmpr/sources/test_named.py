import io

import pytest
from datasets import Dataset, Features, Image, List, Value

from mmpr.images import ImageStore
from mmpr.problems import ProblemLog
from mmpr.sources import SourceSpec, available_sources, make_source
from mmpr.testing import tiny_images


def _png():
    buf = io.BytesIO()
    tiny_images(1)[0].save(buf, format="PNG")
    return buf.getvalue()


def _items(name, rows, tmp_path, features=None, **spec):
    folder = tmp_path / name
    Dataset.from_list(rows, features=features).save_to_disk(str(folder))
    source = make_source(SourceSpec(name=name, path=str(folder), **spec)).open()
    log = ProblemLog()
    return list(source.items(ImageStore(tmp_path / "store"), log)), log


def test_registry_lists_the_sources():
    assert {"generic", "sample", "scienceqa", "ai2d", "chartqa", "geometry3k", "clevr_math",
            "mathvista"} <= set(available_sources())


def test_scienceqa_maps_the_answer_index_to_a_letter_and_uses_the_hint(tmp_path):
    features = Features({"image": Image(), "question": Value("string"), "choices": List(Value("string")),
                         "answer": Value("int64"), "hint": Value("string"), "subject": Value("string"),
                         "topic": Value("string"), "grade": Value("string")})
    rows = [{"image": {"bytes": _png()}, "question": "Which is a mammal?", "choices": ["frog", "cat"], "answer": 1,
             "hint": "Look closely.", "subject": "natural science", "topic": "biology", "grade": "grade3"},
            {"image": None, "question": "Text only?", "choices": ["a", "b"], "answer": 0, "hint": "",
             "subject": "s", "topic": "t", "grade": "g"}]
    items, log = _items("scienceqa", rows, tmp_path, features)
    (item,) = items
    assert item.answer == "B" and item.answer_type == "multiple_choice" and item.choices == ["frog", "cat"]
    assert item.question == "Context: Look closely.\nWhich is a mammal?" and item.category == "science"
    assert item.metadata == {"subject": "natural science", "topic": "biology", "grade": "grade3"}
    assert log.counts == {"image_missing": 1} and log.items[0].line == 2


def test_ai2d_chartqa_geometry3k_clevr(tmp_path):
    img = {"bytes": _png()}
    items, _ = _items("ai2d", [{"image": img, "question": "Which?", "options": ["x", "y", "z"], "answer": "2"}],
                      tmp_path, Features({"image": Image(), "question": Value("string"),
                                          "options": List(Value("string")), "answer": Value("string")}))
    assert items[0].answer == "C" and items[0].choices == ["x", "y", "z"]
    items, _ = _items("chartqa", [{"image": img, "query": "Max?", "label": ["42"], "human_or_machine": 0}],
                      tmp_path, Features({"image": Image(), "query": Value("string"), "label": List(Value("string")),
                                          "human_or_machine": Value("int64")}))
    assert (items[0].question, items[0].answer, items[0].answer_type) == ("Max?", "42", "chart")
    items, _ = _items("geometry3k", [{"images": [img], "problem": "<image>Find x.", "answer": "2\\sqrt{3}"}],
                      tmp_path, Features({"images": List(Image()), "problem": Value("string"),
                                          "answer": Value("string")}))
    assert items[0].answer_type == "latex" and len(items[0].images) == 1 and items[0].category == "mathematics"
    items, _ = _items("clevr_math", [{"image": img, "question": "Subtract all cubes. How many are left?",
                                      "label": 3, "template": "subtraction"}], tmp_path,
                      Features({"image": Image(), "question": Value("string"), "label": Value("int64"),
                                "template": Value("string")}))
    assert (items[0].answer, items[0].answer_type) == ("3", "integer")


def test_mathvista_maps_question_and_answer_types(tmp_path):
    features = Features({"pid": Value("string"), "question": Value("string"), "decoded_image": Image(),
                         "choices": List(Value("string")), "unit": Value("string"), "precision": Value("float64"),
                         "answer": Value("string"), "question_type": Value("string"), "answer_type": Value("string"),
                         "metadata": {"skills": List(Value("string"))}})
    img = {"bytes": _png()}
    base = {"decoded_image": img, "unit": None, "precision": None, "metadata": {"skills": ["arithmetic reasoning"]}}
    rows = [{**base, "pid": "1", "question": "Which?", "choices": ["3", "4"], "answer": "4",
             "question_type": "multi_choice", "answer_type": "text"},
            {**base, "pid": "2", "question": "x?", "choices": None, "answer": "1.5", "precision": 1.0,
             "question_type": "free_form", "answer_type": "float"},
            {**base, "pid": "3", "question": "odd?", "choices": None, "answer": "1",
             "question_type": "free_form", "answer_type": "weird"}]
    items, log = _items("mathvista", rows, tmp_path, features)
    assert [(i.id, i.answer_type) for i in items] == [("mathvista/1", "multiple_choice"), ("mathvista/2", "float")]
    assert items[1].metadata["precision"] == 1.0 and items[0].metadata["metadata"]["skills"] == ["arithmetic reasoning"]
    assert log.counts == {"skipped_by_source": 1} and "weird" in log.items[0].message


def test_generic_source_reports_bad_rows_and_honours_limit(tmp_path):
    img = tmp_path / "a.png"
    tiny_images(1)[0].save(img)
    (tmp_path / "broken.png").write_bytes(b"nope")
    path = tmp_path / "my data.jsonl"
    path.write_text("\n".join([
        '{"img": "a.png", "q": "How many?", "a": 3}',
        '{"img": "broken.png", "q": "How many?", "a": 3}',
        '{"img": "a.png", "a": 3}',
        '{"img": "a.png", "q": "Last?", "a": 1}']) + "\n")
    source = make_source(SourceSpec(name="generic", path=str(path), columns={"image": "img", "question": "q",
                                                                                "answer": "a"},
                                    answer_type="integer", limit=3)).open()
    log = ProblemLog()
    items = list(source.items(ImageStore(tmp_path / "s"), log))
    assert [i.id for i in items] == ["my_data/0"] and items[0].answer == "3" and source.name == "my_data"
    assert [(p.code, p.line) for p in log.items] == [("image_unreadable", 2), ("missing_field", 3)]
    assert "column 'q' is empty" in log.items[1].message


def test_wrong_paths_fail_before_any_work(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_source(SourceSpec(name="scienceqa", path=str(tmp_path / "nope"))).open()
    with pytest.raises(ValueError, match="needs a path"):
        make_source("generic")
    with pytest.raises(ValueError, match="unsupported format"):
        (tmp_path / "x.txt").write_text("hi")
        make_source(SourceSpec(name="generic", path=str(tmp_path / "x.txt"))).open()


def test_sample_source_ships_with_the_package(tmp_path):
    source = make_source("sample").open()
    log = ProblemLog()
    items = list(source.items(ImageStore(tmp_path), log))
    assert len(items) == len(source) == 30 and log.total == 0
    assert {i.answer_type for i in items} == {"integer", "multiple_choice", "yes_no", "chart", None}
