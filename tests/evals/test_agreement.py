from evals.agreement import agreement
from tests.evals.judge_server import JudgeServer


def _record(doc_id, response, correct, parsable=True, *, qtype="free_form", atype="integer", choices=None,
            answer="4", extracted="4"):
    return {"doc_id": doc_id, "response": response, "correct": correct, "parsable": parsable,
            "extracted": extracted if parsable else None,
            "reference": {"pid": doc_id, "query": "Question: how many?", "question_type": qtype, "answer_type": atype,
                          "choices": choices, "precision": None, "answer": answer}}


def test_agreement_with_lmms_eval_scoring_through_a_local_judge():
    records = [
        _record("1", "I count. Final answer: 4", True),
        _record("2", "I count. Final answer: 5", False, extracted="5"),
        # no final answer: judge-free says wrong; lmms-eval's judge still pulls a number out and calls it right
        _record("3", "there are 4 of them, I believe", False, parsable=False),
        # multiple choice with no answer at all: lmms-eval snaps to the nearest option
        _record("4", "I really cannot tell.", False, parsable=False, qtype="multi_choice", atype="text",
                choices=["4", "5"], answer="4"),
    ]
    with JudgeServer() as server:
        report = agreement(records, judge_url=server.url, judge_model="rule-judge")
        assert server.requests, "lmms-eval's extraction went to the local judge"
    assert report.total == 4 and report.agree == 2 and report.agreement_rate == 50.0
    assert report.ours_accuracy == 25.0 and report.official_accuracy == 75.0
    assert report.ours_unparsable == 2
    assert [(d.doc_id, d.ours_correct, d.official_correct) for d in report.disagreements] == [
        ("3", False, True), ("4", False, True)]
