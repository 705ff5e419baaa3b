from evals.thinking import for_scoring, thinking_stats

THINK = "<think>count the bars: three tall, one short</think>"


def test_without_stripping_the_response_is_scored_whole_and_the_thinking_measured():
    assert for_scoring(THINK + "4", strip=False, style="direct") == (THINK + "4", 37, False)
    assert for_scoring("4", strip=False, style="direct") == ("4", None, False)
    assert for_scoring("<think>still going", strip=False, style="direct") == ("<think>still going", 11, True)


def test_stripping_keeps_the_answer_part_and_an_unclosed_block_is_unparsable():
    assert for_scoring(THINK + " 4", strip=True, style="direct") == (" 4", 37, False)
    assert for_scoring(THINK + "<answer>4</answer>", strip=True, style="reasoning")[0] == "<answer>4</answer>"
    assert for_scoring("<think>still going", strip=True, style="reasoning") == ("", 11, True)
    # CoT extraction reads past the block itself and counts the thinking as the rationale
    assert for_scoring(THINK + "Final answer: 4", strip=True, style="cot")[0] == THINK + "Final answer: 4"


def test_thinking_stats_count_responses_that_think_and_those_never_closed():
    records = [{"think_chars": 40, "think_unclosed": False}, {"think_chars": 100, "think_unclosed": True},
               {"think_chars": None, "think_unclosed": False}]
    stats = thinking_stats(records, stripped=True)
    assert (stats.responses_with_thinking, stats.unclosed, stats.mean_think_chars, stats.stripped) == (2, 1, 70, True)
    assert thinking_stats(records[2:], stripped=False) is None
