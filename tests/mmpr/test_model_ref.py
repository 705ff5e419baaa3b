import subprocess
import sys

import pytest

from mmpr.model_ref import check_model, looks_local, resolve_model


def test_missing_local_folder_is_named_without_reaching_for_the_hub(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--model ./nope: .*nope does not exist"):
        check_model("./nope")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        check_model(str(tmp_path))


def test_unknown_hub_id_offline_is_one_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="the Hub .* has no such model"):
        check_model("no-such-org/no-such-model")


def test_served_names_and_hub_ids_pass_through():
    assert check_model("some-served-name", served=True) == "some-served-name"
    assert resolve_model("org/model") == "org/model"
    assert looks_local("./x") and looks_local("~/x") and not looks_local("org/model")


def test_unknown_tiny_family_lists_the_known_ones():
    with pytest.raises(ValueError, match="tiny:qwen2_vl"):
        resolve_model("tiny:gpt")


def test_the_tiny_model_maker_is_imported_only_for_tiny_references():
    code = "import sys, mmpr.model_ref as m; m.resolve_model('org/x'); print('mmpr.testing' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
