import json

import pytest
import torch

from mpo_train.data import EncodedPair
from mpo_train.reference import CachedReference, model_identity


def test_cached_reference_reads_pairs_and_refuses_missing_values():
    ref = CachedReference("cpu")
    pairs = [EncodedPair(0, [1], [2], [3], ref=(-1.5, -2.5)), EncodedPair(1, [1], [2], [3], ref=(-0.5, -3.0))]
    chosen, rejected = ref(pairs)
    torch.testing.assert_close(chosen, torch.tensor([-1.5, -0.5]))
    torch.testing.assert_close(rejected, torch.tensor([-2.5, -3.0]))
    with pytest.raises(RuntimeError, match="no precomputed reference"):
        ref([EncodedPair(2, [1], [2], [3])])


def test_model_identity_changes_with_the_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"a": 1}))
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    first = model_identity(str(tmp_path), None)
    assert model_identity(str(tmp_path), None) == first
    (tmp_path / "model.safetensors").write_bytes(b"y" * 11)
    assert model_identity(str(tmp_path), None) != first

    class Config:
        _commit_hash = "abc123"

    assert model_identity("org/model", Config()) == "org/model@abc123"
