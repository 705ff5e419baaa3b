import pytest

from evals.prompting import answer_tag, extract, render, score_response, template_text
from evals.scoring import Target


def test_the_three_styles_render_the_question_and_options():
    cot, direct, reasoning = (render("How many?", s, ["1", "2"]) for s in ("cot", "direct", "reasoning"))
    assert "Final answer:" in cot and "A. 1\nB. 2" in cot
    assert direct.endswith("Answer with the option's letter from the given choices directly.")
    assert "<think>...</think>" in reasoning and "<answer>...</answer>" in reasoning and "A. 1\nB. 2" in reasoning
    assert "Final answer" not in reasoning
    assert "<answer>" in template_text("reasoning") and "Final answer" in template_text("cot")


def test_the_answer_of_the_reasoning_format():
    assert answer_tag("<think>2+2</think><answer> 4 </answer>") == "4"
    assert answer_tag("<think>x</think><answer>3</answer> wait <answer>\\boxed{5}</answer>") == "5"
    assert answer_tag("<think>2+2</think> the answer is 4") is None
    assert answer_tag("<answer>  </answer>") is None


def test_each_style_reads_its_own_format_only():
    target = Target("4", "integer")
    think = "<think>two and two make four</think><answer>4</answer>"
    cot = "Two and two make four, as counted above.\nFinal answer: 4"
    assert score_response(think, target, "reasoning").correct
    assert not score_response(cot, target, "reasoning").parsable
    assert score_response(cot, target, "cot").correct
    assert extract(" 4.", "direct") == "4"
    # a benchmark's own rule replaces the plain judge
    assert score_response(think, target, "reasoning", judge_fn=lambda e: e == "5").correct is False


def test_styles_are_chosen_through_the_registry():
    from evals.prompting import PROMPT_STYLES, STYLES
    from mmpr.registry import UnknownName

    assert PROMPT_STYLES == ("cot", "direct", "reasoning")
    with pytest.raises(UnknownName, match=r"unknown prompt style 'cto' \(did you mean 'cot'\?\); available: cot, "
                                          r"direct, reasoning"):
        render("How many?", "cto")
    assert STYLES.get("direct").extract(" 4.") == "4"
