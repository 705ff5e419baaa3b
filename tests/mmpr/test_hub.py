import httpx2
import pytest
from huggingface_hub import HfApi, constants
from huggingface_hub.utils import _http

from mmpr.dataset_writer import SubsetInput, read_manifest, write_dataset
from mmpr.hub import PublishError, publish
from mmpr.schemas import PreferencePair
from tests.mmpr.fake_hub import ENDPOINT, FakeHub


@pytest.fixture
def hub(monkeypatch):
    fake = FakeHub()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    _http.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake), follow_redirects=True))
    yield fake
    _http.set_client_factory(_http.default_client_factory)


@pytest.fixture
def api():
    return HfApi(endpoint=ENDPOINT, token="hf_fake")


def _dataset(folder, n, *, text="c"):
    pairs = [PreferencePair(id=f"s/{i}", subset="s", question=f"q{i}", chosen=f"{text}{i}", rejected=f"r{i}",
                            kind="correctness", source="s") for i in range(n)]
    write_dataset(folder, [SubsetInput("s", pairs)], name="demo")
    return folder


def test_first_push_is_one_commit_and_a_tag(hub, api, tmp_path):
    folder = _dataset(tmp_path / "d", 3)
    plan = publish(folder, "org/demo", private=True, api=api)
    assert plan.version == "1.0.0" and plan.tag == "v1.0.0"
    repo = hub.repos["org/demo"]
    assert repo.private and len(repo.commits) == 1 and repo.tags == {"v1.0.0": repo.oids[0]}
    (payload,) = hub.commit_payloads
    sent = sorted(line["value"]["path"] for line in payload if line["key"] == "file")
    assert sent == ["README.md", "data/s/train-00000.parquet", "manifest.json"]
    assert hub.tags_sent() == [repo.oids[0]], "the tag points at the commit just made"
    assert b"Version **1.0.0**" in repo.commits[0]["README.md"]


def test_new_content_gets_the_next_version_with_history(hub, api, tmp_path):
    publish(_dataset(tmp_path / "a", 3), "org/demo", api=api)
    folder = _dataset(tmp_path / "b", 4)
    plan = publish(folder, "org/demo", api=api)
    assert plan.version == "1.1.0"
    manifest = read_manifest(folder)
    assert manifest.dataset_version == "1.1.0"
    assert [h.version for h in manifest.history] == ["1.0.0"] and manifest.history[0].num_pairs == 3
    card = (folder / "README.md").read_text()
    assert "| 1.0.0 |" in card and "| 1.1.0 |" in card
    assert sorted(hub.repos["org/demo"].tags) == ["v1.0.0", "v1.1.0"]


def test_same_content_is_not_published_twice(hub, api, tmp_path):
    publish(_dataset(tmp_path / "a", 3), "org/demo", api=api)
    commits = len(hub.repos["org/demo"].commits)
    plan = publish(_dataset(tmp_path / "b", 3), "org/demo", api=api)
    assert plan.up_to_date and plan.version == "1.0.0"
    assert len(hub.repos["org/demo"].commits) == commits


def test_a_tag_with_other_content_is_refused(hub, api, tmp_path):
    publish(_dataset(tmp_path / "a", 3), "org/demo", version="2.0.0", api=api)
    with pytest.raises(PublishError, match="tag v2.0.0 already exists with other content"):
        publish(_dataset(tmp_path / "b", 3, text="other"), "org/demo", version="2.0.0", api=api)
    assert len(hub.repos["org/demo"].commits) == 1


def test_stale_shards_are_deleted_in_the_same_commit(hub, api, tmp_path):
    folder = _dataset(tmp_path / "a", 3)
    publish(folder, "org/demo", api=api)
    hub.repos["org/demo"].commits[-1]["data/s/train-00009.parquet"] = b"old"
    publish(_dataset(tmp_path / "b", 5), "org/demo", api=api)
    last = hub.commit_payloads[-1]
    assert [line["value"]["path"] for line in last if line["key"] == "deletedFile"] == ["data/s/train-00009.parquet"]


def test_dry_run_prints_the_plan_and_changes_nothing(hub, api, tmp_path):
    folder = _dataset(tmp_path / "a", 3)
    before = (folder / "manifest.json").read_bytes()
    plan = publish(folder, "org/demo", version="1.2.0", dry_run=True, api=api)
    text = plan.describe()
    assert "one commit, then tag v1.2.0" in text and "upload data/s/train-00000.parquet" in text
    assert "new" in text
    assert hub.repos == {} and (folder / "manifest.json").read_bytes() == before
    assert all(method == "GET" for method, _ in hub.requests)
