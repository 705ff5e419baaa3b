from mmpr.problems import ProblemLog


def test_counts_all_keeps_the_first_and_writes_a_report(tmp_path):
    log = ProblemLog(keep=2)
    for i in range(3):
        log.add("image_missing", "a.jsonl", f"image {i} not found", line=i + 1, field="image")
    log.add("malformed_json", "b.jsonl", "bad", line=9)
    assert log.total == 4 and len(log.items) == 2
    assert log.summary() == "4 skipped (image_missing: 3, malformed_json: 1)"
    assert str(log.items[0]) == "a.jsonl:1 [image]: image 0 not found (image_missing)"
    log.write(tmp_path / "r.json")
    assert '"listed": 2' in (tmp_path / "r.json").read_text()
    assert ProblemLog().summary() == "no problems"
