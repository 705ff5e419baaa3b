import pytest

from evals.judged import DEMONSTRATIONS, Judge, extraction_prompt, judge_records, normalize, safe_equal, write_table
from tests.evals.judge_server import JudgeServer

MC = {"question_type": "multi_choice", "answer_type": "text", "choices": ["3/11", "8/11", "6/11", "3/5"],
      "precision": None, "answer": "8/11"}


def test_normalisation_follows_mathvistas_official_rules():
    assert normalize("B", MC) == "8/11" and normalize("(B) 8/11", MC) == "8/11"
    assert normalize("(b)", MC) == "8/11", "a letter in parentheses, either case"
    assert normalize("6/11 of it", MC) == "6/11", "anything else snaps to the nearest option"
    integer = {"question_type": "free_form", "answer_type": "integer", "answer": "14"}
    assert normalize("14.0", integer) == "14" and normalize("fourteen", integer) is None
    floating = {"question_type": "free_form", "answer_type": "float", "precision": 2.0, "answer": "1.45"}
    assert normalize("1.4500001", floating) == "1.45" and normalize("", floating) is None
    listed = {"question_type": "free_form", "answer_type": "list", "answer": "[2007, 2008]"}
    assert normalize(" [2007, 2008] ", listed) == "[2007, 2008]"
    assert safe_equal("1.45", " 1.45") and not safe_equal(None, "1.45") and not safe_equal("1.5", "1.45")


def test_the_prompt_carries_the_five_demonstrations_then_the_item():
    prompt = extraction_prompt("Hint: ...\nQuestion: How many?", "There are 4.\nFinal answer: 4")
    assert len(DEMONSTRATIONS) == 5 and prompt.count("Extracted answer:") == 6
    assert "Model response: The correct answer is (B) 8/11.\n\nExtracted answer: B" in prompt
    assert prompt.endswith("Question: How many?\n\nModel response: There are 4.\nFinal answer: 4\n\nExtracted answer: ")


def _records():
    cot = "I count the shapes in the figure one by one.\n"
    free = {"question_type": "free_form", "answer_type": "integer", "choices": None, "precision": None}
    return [
        # both right
        {"doc_id": "1", "extracted": "4", "correct": True, "response": cot + "Final answer: 4",
         "reference": {**free, "query": "Question: (1)", "answer": "4"}},
        # judge-free cannot read it; the judge takes the last number
        {"doc_id": "2", "extracted": None, "correct": False, "response": "so it must be 7 in the end",
         "reference": {**free, "query": "Question: (2)", "answer": "7"}},
        # multiple choice: the letter becomes the option text
        {"doc_id": "3", "extracted": "B", "correct": True, "response": cot + "Final answer: B",
         "reference": {**MC, "query": "Question: (3)"}},
        # judge-free right by option text; the judge's letter D snaps to 3/5: wrong
        {"doc_id": "4", "extracted": "8/11", "correct": True, "response": cot + "the answer is D",
         "reference": {**MC, "query": "Question: (4)"}},
    ]


def test_judged_protocol_against_a_local_server_lists_the_items_where_the_scorings_differ(tmp_path):
    with JudgeServer() as server:
        judge = Judge(server.url, tmp_path / "judge.jsonl")
        records = _records()
        comparison = judge_records(records, judge, judge_model=judge.model)
        assert len(server.requests) == 4 and server.requests[0]["model"] == "rule-judge"
        assert server.requests[0]["messages"][0]["content"].count("Extracted answer:") == 6
        again = judge_records(_records(), Judge(server.url, tmp_path / "judge.jsonl"), judge_model="rule-judge")
        assert len(server.requests) == 4, "a rerun reads the judge's replies from the cache"
    assert again == comparison
    assert (comparison.judge_free, comparison.judged, comparison.judge_failures) == (75.0, 75.0, 0)
    assert [(d.doc_id, d.judge_free_extracted, d.judged_extracted, d.judged_prediction, d.judged_correct)
            for d in comparison.differing] == [("2", None, "7", "7", True), ("4", "8/11", "D", "3/5", False)]
    assert comparison.difference_interval.low <= 0 <= comparison.difference_interval.high
    assert records[1]["judged_correct"] is True
    write_table(comparison, tmp_path / "judged.md", "mathvista")
    table = (tmp_path / "judged.md").read_text()
    assert "judge-free 75.00, judged 75.00 over 4 items; judge failures: 0" in table
    assert "| 4 | 8/11 | 8/11 | True | D | 3/5 | False |" in table


@pytest.mark.parametrize("failure", [{"fail_on": "Question: (2)"}, {"empty_on": "Question: (2)"}])
def test_a_failing_judge_is_counted_and_its_items_never_scored(tmp_path, failure):
    with JudgeServer(**failure) as server:
        judge = Judge(server.url, tmp_path / "judge.jsonl", retries=0)
        comparison = judge_records(_records(), judge, judge_model=judge.model)
        asked = len(server.requests)
    assert comparison.judge_failures == 1 and comparison.failed_items == ["2"]
    assert comparison.judged is None and comparison.judged_interval is None, "withheld, not scored wrong"
    assert comparison.judge_free == 75.0 and [d.doc_id for d in comparison.differing] == ["4"]
    assert asked == (4 if "fail_on" in failure else 6), "an empty reply is asked again at higher temperatures"
    with JudgeServer() as server:  # the judge is back: only the failed item is asked again
        comparison = judge_records(_records(), Judge(server.url, tmp_path / "judge.jsonl"), judge_model="rule-judge")
        assert len(server.requests) == 1 and comparison.judged == 75.0
