import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmpr.errors import UserError
from mmpr.locations import looks_local
from mmpr.model_ref import check_model, resolve_model


def test_missing_local_folder_is_named_without_reaching_for_the_hub(tmp_path):
    with pytest.raises(UserError, match=r"--model ./nope: .*nope does not exist"):
        check_model("./nope")
    with pytest.raises(UserError, match="no config.json"):
        check_model(str(tmp_path))


def test_a_hub_id_offline_says_the_hub_is_off_not_that_the_model_is_missing(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=r"switched off here \(HF_HUB_OFFLINE=1\).*huggingface-cli download "
                                        r"some-org/some-model --local-dir DIR\) and give DIR as --model"):
        check_model("some-org/some-model")


def test_a_model_in_the_local_hub_cache_passes_offline(monkeypatch):
    from huggingface_hub import constants

    entry = Path(constants.HF_HUB_CACHE) / "models--cached-org--cached-model"
    (entry / "snapshots" / "abc").mkdir(parents=True)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text("abc")
    (entry / "snapshots" / "abc" / "config.json").write_text("{}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        assert check_model("cached-org/cached-model") == "cached-org/cached-model"
    finally:
        shutil.rmtree(entry)


def test_served_names_and_hub_ids_pass_through():
    assert check_model("some-served-name", served=True) == "some-served-name"
    assert resolve_model("org/model") == "org/model"
    assert looks_local("./x") and looks_local("~/x") and not looks_local("org/model")


def test_unknown_tiny_family_lists_the_known_ones():
    with pytest.raises(UserError, match="tiny:qwen2_vl"):
        resolve_model("tiny:gpt")


def test_the_tiny_model_maker_is_imported_only_for_tiny_references():
    code = "import sys, mmpr.model_ref as m; m.resolve_model('org/x'); print('mmpr.testing' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
