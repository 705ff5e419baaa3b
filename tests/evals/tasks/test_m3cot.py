import pytest

from evals.registry import get
from evals.scoring import MissingField
from tests.evals.tasks.rows import doc, smoke

utils = get("m3cot").utils()
COT = "The brick is made of clay and is much denser than a feather.\n"


def _correct(d, response, style="cot"):
    return getattr(utils, f"process_results_{style}")(d, [response])["accuracy"]


@pytest.mark.parametrize("response, correct", [
    (COT + "Final answer: B", True), (COT + "Final answer: (B) the brick", True),
    (COT + "Final answer: the brick", True), (COT + "Final answer: A", False),
])
def test_letter_or_option_text(response, correct):
    record = _correct(doc("m3cot", 0), response)
    assert record["parsable"] and record["correct"] is correct
    assert record["categories"] == {"domain": ["science"], "topic": ["physics"], "category": ["science"]}


def test_the_context_goes_before_the_question_and_the_options_are_listed():
    text = utils.doc_to_text(doc("m3cot", 0), {"prompt": "cot"})
    assert "Look.\nWhich object is heavier? (0)" in text and "B. the brick" in text


def test_prompt_styles():
    d = doc("m3cot", 1)
    assert _correct(d, "<think>bricks are heavy</think><answer>B</answer>", "reasoning")["correct"]
    assert not _correct(d, "<think>bricks are heavy</think> B", "reasoning")["parsable"]
    assert _correct(d, "B", "direct")["correct"]
    assert "<answer>" in utils.doc_to_text(d, {"prompt": "reasoning"})


def test_a_missing_field_is_named():
    d = {k: v for k, v in doc("m3cot", 0).items() if k != "choices"}
    with pytest.raises(MissingField, match="M3CoT: the dataset has no field choices"):
        utils.target(d)


def test_every_published_option_structure_gets_a_target():
    assert smoke(utils, "m3cot") > 100
