import pytest

from mmpr.errors import Unreachable, UserError
from mmpr.locations import check_location, check_out, check_server, looks_local


def test_paths_are_checked_as_paths_before_the_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert check_location(tmp_path, "data") == str(tmp_path)
    with pytest.raises(UserError, match=r"data \./nope: no such file or folder"):
        check_location("./nope", "data")
    with pytest.raises(UserError, match=r"data runs/demo: no such local folder, and the Hub is switched off"):
        check_location("runs/demo", "data")
    assert looks_local("x.jsonl") and looks_local("a/b/c") and not looks_local("org/name")


def test_out_folder_rules(tmp_path):
    same = lambda out: (out / "mine").exists()  # noqa: E731
    assert check_out(tmp_path / "new", marker="a job", same_job=same, overwrite=False) == tmp_path / "new"
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "other.txt").write_text("x")
    with pytest.raises(UserError, match="holds something else.*--overwrite"):
        check_out(tmp_path / "busy", marker="a job", same_job=same, overwrite=False)
    assert (tmp_path / "busy" / "other.txt").exists()
    (tmp_path / "busy" / "mine").write_text("")
    check_out(tmp_path / "busy", marker="a job", same_job=same, overwrite=False)  # a resume
    (tmp_path / "busy" / "mine").unlink()
    check_out(tmp_path / "busy", marker="a job", same_job=same, overwrite=True)
    assert list((tmp_path / "busy").iterdir()) == []


def test_a_server_that_is_not_there_is_unreachable():
    with pytest.raises(Unreachable, match="judge http://127.0.0.1:9/v1/models: did not answer"):
        check_server("http://127.0.0.1:9/v1/models", "judge")


def test_a_resume_must_match_the_settings_decided_in_one_place(tmp_path):
    from mmpr.locations import changed_settings, check_same_settings, claim, claimed_by

    recorded = {"beta": 0.1, "weights": [0.8, 0.2, 1.0], "gone": 1}
    assert changed_settings(recorded, {"beta": 0.1, "weights": (0.8, 0.2, 1.0), "gone": 1}) == []
    assert changed_settings(recorded, {"beta": 0.2, "weights": (0.8, 0.2, 1.0), "new": 2}) == ["beta", "gone", "new"]
    with pytest.raises(UserError, match=r"^output_dir o: holds a run made with other settings \(beta, gone, new\); "
                                        r"rerun with the same settings to resume, choose another output_dir, or add "
                                        r"--overwrite$"):
        check_same_settings(recorded, {"beta": 0.2, "weights": [0.8, 0.2, 1.0], "new": 2}, where="output_dir o",
                            what="a run", out_flag="output_dir")
    claim(tmp_path, ".job.json", {"release": "r", "n": (1, 2)})
    assert claimed_by(".job.json", {"release": "r", "n": [1, 2]})(tmp_path)
    assert not claimed_by(".job.json", {"release": "other", "n": [1, 2]})(tmp_path)
    (tmp_path / ".job.json").write_text("[1, 2]")
    assert not claimed_by(".job.json", {"release": "r"})(tmp_path), "a marker that is not a mapping is not this job's"
