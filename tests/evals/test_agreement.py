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


def test_the_suite_is_re_scored_with_each_official_rule(tmp_path, capsys):
    import json

    from evals.agreement import main, official_agreement

    cot = "I compare the options one by one.\n"
    m3 = [{"doc_id": "a", "response": cot + "The answer is (B)", "correct": True, "parsable": True, "extracted": "(B)",
           "target": {"answer": "B", "choices": ["x", "y"]}, "reference": {}},
          {"doc_id": "b", "response": cot + "I think it is y.", "correct": False, "parsable": False, "extracted": None,
           "target": {"answer": "B", "choices": ["x", "y"]}, "reference": {}}]
    report = official_agreement("m3cot", m3)
    assert (report.total, report.agree, report.official_accuracy) == (2, 1, 100.0)
    assert [(d.doc_id, d.ours_correct, d.official_correct) for d in report.disagreements] == [("b", False, True)]
    (tmp_path / "samples_mmpr_m3cot_cot.jsonl").write_text("\n".join(json.dumps(r) for r in m3) + "\n")
    dyn = {"doc_id": "1", "response": '{"short answer": "2.0944"}', "correct": True, "parsable": True,
           "extracted": "2.0944", "target": {"answer": "2.0944"},
           "reference": {"seed": "1", "answer_type": "float", "ground_truth": "2.0944"}}
    (tmp_path / "samples_mmpr_dynamath_cot.jsonl").write_text(json.dumps(dyn) + "\n")
    assert main([str(tmp_path)]) == 0  # no MathVista samples: no judge server needed
    saved = json.loads((tmp_path / "agreement.json").read_text())["benchmarks"]
    assert set(saved) == {"m3cot", "dynamath"} and saved["dynamath"]["agree"] == 1
    assert saved["m3cot"]["scorer"] == "LightChen233/M3CoT:utils/metric.py"
    assert "m3cot: 1/2 samples scored alike" in capsys.readouterr().out
