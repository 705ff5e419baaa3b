import json
import random

import pytest

from experiments.tiny_grid import generate as sg
from mmpr.answers import extract_final_answer, is_correct
from mmpr.images import ImageStore
from mmpr.problems import ProblemLog
from mmpr.sources import SourceSpec, make_source


@pytest.mark.parametrize("side", [3, 4])
def test_image_is_one_28px_cell_per_qwen2_vl_token(side):
    q = sg.make_question(random.Random(0), "q", side)
    image = sg.render(q.grid)
    assert image.size == (28 * side, 28 * side)
    for r in range(side):
        for c in range(side):
            assert image.getpixel((c * 28 + 14, r * 28 + 14)) == sg.COLOURS[q.grid[r][c]]


def test_a_4x4_grid_is_16_image_tokens_for_the_tiny_models_processor(tmp_path):
    from transformers import AutoProcessor

    sg.write_model(tmp_path / "m", hidden=32, layers=1, side=4)
    processor = AutoProcessor.from_pretrained(tmp_path / "m")
    q = sg.make_question(random.Random(0), "q", 4)
    grid_thw = processor.image_processor(images=[sg.render(q.grid)], return_tensors="pt")["image_grid_thw"]
    assert grid_thw.prod().item() // 4 == 16  # patches of 14 px, merged 2x2: one token per 28 px cell


@pytest.mark.parametrize("side", [3, 4])
def test_reference_cot_transcribes_tallies_and_its_final_answer_is_judged_correct(side):
    rng = random.Random(1)
    qs = [sg.make_question(rng, str(i), side) for i in range(300)]
    assert {q.kind for q in qs} == {"count", "compare"}
    for q in qs:
        cells = [c for row in q.grid for c in row]
        text = q.cot()
        assert text.splitlines()[0].startswith("line 1: " + " ".join(q.grid[0]) + "; ")
        assert sum(line.startswith("line ") for line in text.splitlines()) == side
        last_tally = text.splitlines()[side - 1].split("; ")[1]
        assert last_tally == ", ".join(f"{c} {cells.count(c)}" for c in q.colours)
        extracted = extract_final_answer(text)
        assert is_correct(extracted, q.answer, answer_type=q.answer_type)
        if q.kind == "count":
            assert q.answer == str(cells.count(q.colours[0]))
        else:
            a, b = (cells.count(c) for c in q.colours)
            assert q.answer == ("yes" if a > b else "no")


@pytest.mark.parametrize("side", [3, 4])
def test_chance_is_below_30_percent_and_baselines_are_measured(side):
    assert sg.chance(side) < 0.3
    assert sg.chance(4) < sg.chance(3)  # 17 possible counts instead of 10
    train = sg.questions(2000, seed=0, prefix="a", side=side)
    test = sg.questions(500, seed=1, prefix="b", side=side)
    assert {len(q.grid) for q in test} == {side}
    base = sg.baselines(train, test)
    assert abs(base["chance"] - sg.chance(side)) < 0.03
    majority = {k: max({q.answer for q in train if q.kind == k}, key=[q.answer for q in train if q.kind == k].count)
                for k in ("count", "compare")}
    assert base["majority"] == round(sum(majority[q.kind] == q.answer for q in test) / len(test), 4)


@pytest.mark.parametrize("side", [3, 4])
def test_write_data_gives_a_source_eval_sets_and_supervised_rows(tmp_path, side):
    summary = sg.write_data(tmp_path, train=12, test=6, sft=20, direct_share=0.75, seed=3, side=side, val=5)
    assert sg.TaskSummary.model_validate_json((tmp_path / "task.json").read_text()) == summary
    assert json.loads((tmp_path / "task.json").read_text())["side"] == side and summary.val == 5
    source = make_source(SourceSpec(name="synthetic_grid", path=str(tmp_path / "train.jsonl")))
    problems = ProblemLog()
    items = list(source.items(ImageStore(tmp_path / "store"), problems))
    assert len(items) == 12 and problems.total == 0
    assert {i.answer_type for i in items} <= {"integer", "yes_no"} and all(len(i.images) == 1 for i in items)
    from datasets import load_dataset

    test = load_dataset("parquet", data_files=str(tmp_path / "test.parquet"), split="train")
    shuffled = load_dataset("parquet", data_files=str(tmp_path / "test_shuffled.parquet"), split="train")
    assert test["answer"] == shuffled["answer"]
    assert {img.size for img in test["image"]} == {(28 * side, 28 * side)}
    val = load_dataset("parquet", data_files=str(tmp_path / "val.parquet"), split="train")
    assert len(val) == 5 and not set(val["id"]) & set(test["id"])
    assert not {img.tobytes() for img in val["image"]} & {img.tobytes() for img in test["image"]}
    moved = sum(a.tobytes() != b.tobytes() for a, b in zip(test["image"], shuffled["image"], strict=True))
    assert moved >= 4  # two random grids can coincide, but not most
    cot = [json.loads(line) for line in (tmp_path / "sft_cot.jsonl").read_text().splitlines()]
    shift = [json.loads(line) for line in (tmp_path / "sft_shift.jsonl").read_text().splitlines()]
    assert all(r["question"].startswith("Answer the question below.") for r in cot)
    direct = [r for r in shift if r["question"].endswith("single word or phrase.")]
    assert 0 < len(direct) < len(shift)
    assert all("\n" not in r["response"] for r in direct)


def test_tiny_tokenizer_learns_the_task_words(tmp_path):
    from transformers import AutoTokenizer

    sg.write_model(tmp_path / "m", hidden=32, layers=1)
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    for word in (" red", " green", " blue", " yellow", " squares"):
        assert len(tok(word, add_special_tokens=False)["input_ids"]) == 1, word
    # the tally names the asked colour with the very token the question uses, so copying it is one lookup
    q = next(q for q in sg.questions(50, seed=3, prefix="t") if q.kind == "count")
    colour = tok(" " + q.colours[0], add_special_tokens=False)["input_ids"][0]
    question_ids = tok(sg.cot_prompt(q), add_special_tokens=False)["input_ids"]
    cot_ids = tok(q.cot(), add_special_tokens=False)["input_ids"]
    assert colour in question_ids
    assert cot_ids.count(colour) >= 3  # once per line's tally, whatever the cells hold


def test_side_out_of_range_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        sg.main(["data", str(tmp_path), "--side", "1"])
    assert exit_.value.code == 2
    assert "--side must be between 2 and 8" in capsys.readouterr().err
