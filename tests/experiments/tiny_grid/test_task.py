import pytest

from evals.registry import PRESETS, get
from evals.scoring import MissingField
from experiments.tiny_grid import generate as sg

bench = get("synthetic_grid")
utils = bench.utils()


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """The held-out rows as the generator writes them, with their questions."""
    from datasets import load_dataset

    out = tmp_path_factory.mktemp("grid")
    sg.write_data(out, train=2, test=12, sft=2, direct_share=0.5, seed=5)
    rows = list(load_dataset("parquet", data_files=str(out / "test.parquet"), split="train"))
    return rows, {q.id: q for q in sg.questions(12, seed=6, prefix="test")}


def test_the_record_reads_the_generators_columns_and_is_in_no_preset(held_out):
    rows, _ = held_out
    assert set(bench.fields) == set(rows[0]) and bench.prompts == ("cot", "direct") and not bench.dataset
    assert all("synthetic_grid" not in names for names in PRESETS.values())


def test_prompts_are_the_ones_trained_on_and_reference_answers_score(held_out):
    rows, questions = held_out
    for doc in rows:
        q = questions[doc["id"]]
        assert utils.doc_to_text(doc, {"prompt": "cot"}) == sg.cot_prompt(q)
        assert utils.doc_to_text(doc, {"prompt": "direct"}) == sg.direct_prompt(q)
        assert utils.doc_to_visual(doc)[0].size == (84, 84)
        cot = utils.process_results_cot(doc, [q.cot()])["accuracy"]
        assert cot["correct"] and cot["categories"] == {"kind": [q.kind]} and cot["doc_id"] == q.id
        assert utils.process_results_direct(doc, [q.answer])["accuracy"]["correct"]
        wrong = "yes" if q.answer == "no" else "no" if q.kind == "compare" else str((int(q.answer) + 1) % 10)
        assert not utils.process_results_direct(doc, [wrong])["accuracy"]["correct"]


def test_a_missing_field_is_named(held_out):
    rows, _ = held_out
    with pytest.raises(MissingField, match="synthetic_grid: the dataset has no field kind"):
        utils.target({k: v for k, v in rows[0].items() if k != "kind"})
