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


def test_a_written_log_reads_back_and_merges_within_the_keep_limit(tmp_path):
    log = ProblemLog()
    log.add("image_missing", "a.jsonl", "image not found", line=4, field="image")
    log.add("malformed_json", "a.jsonl", "bad", line=7)
    log.write(tmp_path / "r.json")
    back = ProblemLog.read(tmp_path / "r.json")
    assert back.counts == log.counts and back.items == log.items
    small = ProblemLog(keep=3)
    small.add("prompt_too_long", "run", "too long")
    small.update(back)
    small.update(back)
    assert small.total == 5 and small.counts["image_missing"] == 2 and len(small.items) == 3


def test_the_log_is_a_record_that_crosses_boundaries_and_names_files_inside_a_root(tmp_path):
    log = ProblemLog(keep=5)
    log.add("malformed_json", tmp_path / "rel" / "annotations" / "a.jsonl", "bad", line=3)
    log.add("image_missing", "elsewhere.jsonl", "gone")
    again = ProblemLog.model_validate_json(log.model_dump_json())
    assert again == log and again.counts["malformed_json"] == 1, "a summary holding it (the build's) dumps and loads"
    inside = log.relative_to(tmp_path / "rel")
    assert [p.file for p in inside.items] == ["annotations/a.jsonl", "elsewhere.jsonl"]
    assert inside.counts == log.counts and log.items[0].file.startswith(str(tmp_path)), "the log itself is unchanged"
