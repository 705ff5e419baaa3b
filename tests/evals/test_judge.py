from evals.judge import judge_unparsable
from tests.evals.judge_server import JudgeServer


def _record(response, parsable, correct, answer="4"):
    return {"response": response, "parsable": parsable, "correct": correct,
            "target": {"answer": answer, "answer_type": "integer", "choices": None, "precision": None}}


def test_only_unparsable_answers_go_to_the_judge():
    records = [_record("... Final answer: 4", True, True), _record("so the answer is 4", False, False),
               _record("I have no idea at all", False, False), _record("... Final answer: 5", True, False)]
    with JudgeServer() as server:
        sent, accuracy = judge_unparsable(records, server.url)
        assert sent == 2 and len(server.requests) == 2
        assert all("Final answer: 4" not in r["messages"][0]["content"] for r in server.requests)
    assert records[1]["judge_extracted"] == "4" and records[1]["judge_correct"]
    assert records[2]["judge_extracted"] is None and not records[2]["judge_correct"]
    assert "judge_extracted" not in records[0]
    assert accuracy == 50.0


def test_a_judge_call_that_fails_is_marked_not_guessed():
    records = [_record("so the answer is 4", False, False), _record("it is 4 I think", False, False)]
    with JudgeServer(fail_on="it is 4 I think") as server:
        sent, accuracy = judge_unparsable(records, server.url, retries=0)
    assert sent == 1 and accuracy == 50.0
    assert records[1]["judge_failed"] and "judge_extracted" not in records[1]
