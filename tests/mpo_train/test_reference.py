import json

import pytest
import torch

from mmpr.registry import UnknownName
from mpo_train.config import ConfigError, TrainConfig, load_config
from mpo_train.data import EncodedPair, PairDataset, PairEncoder
from mpo_train.forward import SequenceLogps, plain_logps
from mpo_train.reference import (
    REFERENCES,
    NoReference,
    PrecomputedReference,
    ScoringJob,
    choose_reference,
    model_identity,
    score_pairs,
)


def test_precomputed_reference_reads_pairs_and_refuses_missing_values():
    ref = PrecomputedReference(logps=SequenceLogps(), device="cpu")
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


def _cfg(**kw):
    return TrainConfig(model="m", data=["d"], output_dir="o", **kw)


def test_the_kind_is_chosen_by_name_in_one_place():
    assert set(REFERENCES.names()) == {"online", "precomputed", "lora_base", "none"}
    assert {name: REFERENCES.get(name).needs_model for name in REFERENCES} == {
        "online": True, "precomputed": True, "lora_base": False, "none": False}
    assert choose_reference(_cfg(reference="precomputed")) is PrecomputedReference
    assert choose_reference(_cfg(reference="precomputed", loss_weights=(0, 0, 1))) is NoReference, \
        "the SFT term alone takes no reference, whatever reference says"
    with pytest.raises(UnknownName, match=r"unknown reference 'precomputd' \(did you mean 'precomputed'\?\); "
                                          r"available: lora_base, none, online, precomputed"):
        REFERENCES.get("precomputd")
    with pytest.raises(ConfigError, match=r"^overrides: invalid settings: reference: .*unknown reference 'precomputd'"):
        load_config(None, ["model=m", "data=[d]", "output_dir=o", "reference=precomputd"])
    with pytest.raises(ValueError, match=r"reference: none serves the SFT term alone"):
        _cfg(reference="none")
    assert _cfg(reference="none", loss_weights=(0, 0, 1)).reference == "none"


class _PackedDiffersOnTheSecondSignature:
    """The packed forward, off by 1 nat per token from the second image-path signature on."""

    def __init__(self):
        from mpo_train import forward

        self.real, self.signatures = forward.packed_logps, []

    def __call__(self, model, pairs):
        from mpo_train.forward import batch_signatures

        out = self.real(model, pairs)
        for signature in batch_signatures(pairs) - set(self.signatures):
            self.signatures.append(signature)
        if len(self.signatures) > 1:
            out.chosen = out.chosen + torch.tensor([float(len(p.chosen)) for p in pairs])
        return out


def test_each_cache_holds_the_log_probs_of_the_mode_its_key_names(tiny_model_dir, pair_dataset, tmp_path,
                                                                   monkeypatch):
    """The cache key names the forward mode that scored its pairs: a packed run and a plain run keep apart caches,
    and where the check falls back to plain while scoring (a new image signature differs), nothing is written under
    the packed key and every pair is scored again into the plain mode's cache."""
    from accelerate import PartialState

    from mmpr.loading import load_processor, load_vlm
    from mpo_train import forward

    path = tiny_model_dir("qwen2_vl")
    model = load_vlm(path).eval()
    encoder = PairEncoder(load_processor(path), max_length=512)

    def scored(logps, folder):
        # pair 2 has no image: the text-only signature is checked first, the image one second
        job = ScoringJob(pairs=lambda: PairDataset(pair_dataset, encoder, [2, 0, 1]), cache_dir=tmp_path / folder,
                         data_fingerprint="d", encoder_fingerprint="e", precision="fp32", batch_size=1)
        reference = PrecomputedReference(logps=logps, device="cpu", model=model, source=str(path))
        reference.precompute(job, PartialState(), lambda message: None)
        assert reference.model is None, "the frozen copy is dropped once the pairs are scored"
        return reference.table, [p.name for p in (tmp_path / folder).iterdir()]

    _, packed_cache = scored(SequenceLogps("packed"), "packed")
    plain_table, plain_cache = scored(SequenceLogps("plain"), "plain")
    assert packed_cache != plain_cache

    monkeypatch.setattr(forward, "packed_logps", _PackedDiffersOnTheSecondSignature())
    auto = SequenceLogps("auto")
    table, cache = scored(auto, "auto")
    assert auto.mode == "plain" and "differ by" in auto.reason
    assert cache == plain_cache, "only the plain mode's cache was written"
    with torch.no_grad():
        expected = plain_logps(model, [encoder.encode(i, pair_dataset[i]) for i in (0, 1, 2)])
    got = torch.tensor([table[i] for i in (0, 1, 2)])
    torch.testing.assert_close(got, torch.stack([expected.chosen, expected.rejected], 1), atol=1e-5, rtol=1e-5)
    assert table == plain_table, "the same values as the run that was plain from the start"


def _score_on_rank(rank, port, path, rows, results):
    """One of two ranks scoring into one cache: rank 0 has three batches (text-only, then images), rank 1 one
    (text-only); rank 0's packed forward fails on images, in the round where rank 1 has run out."""
    import os

    from accelerate import PartialState

    from mmpr.loading import load_processor, load_vlm
    from mpo_train import forward

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2")
    state = PartialState(cpu=True)
    model = load_vlm(path).eval()
    encoder = PairEncoder(load_processor(path), max_length=512)
    dataset = PairDataset(rows, encoder, [2, 0, 1] if rank == 0 else [2])
    real = forward.packed_logps

    def failing_on_images(m, pairs):
        if rank == 0 and any(p.mm for p in pairs):
            raise RuntimeError("no kernel for this")
        return real(m, pairs)

    forward.packed_logps = failing_on_images
    logps = SequenceLogps("auto")
    first = score_pairs(model, dataset, list(range(len(dataset))), cache=results["cache"], batch_size=1,
                        logps=logps, accelerator=state)
    table = score_pairs(model, dataset, list(range(len(dataset))), cache=results["cache"], batch_size=1,
                        logps=logps, accelerator=state)
    results[rank] = (first, logps.mode, logps.reason, sorted(table))
    state.destroy_process_group()


@pytest.mark.slow  # two processes, each importing torch and transformers
def test_ranks_with_unequal_shares_score_in_lockstep_and_take_rank_0s_decision(tiny_model_dir, pair_dataset,
                                                                                tmp_path):
    """Two CPU processes (gloo): the rank with fewer pairs joins the forward check's collectives until the other is
    done (else they would wait on each other), both fall back to plain in the same round with rank 0's reason (rank
    1 alone would say "on another rank"), nothing is written in packed, and the plain pass gathers every pair."""
    import socket
    import time

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.Manager().dict(cache=tmp_path / "reference.json")
    context = mp.start_processes(_score_on_rank, args=(port, tiny_model_dir("qwen2_vl"), pair_dataset, results),
                                 nprocs=2, start_method="spawn", join=False)
    deadline = time.monotonic() + 300
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the ranks waited on each other")
    (first0, mode0, reason0, rows0), (first1, mode1, reason1, rows1) = results[0], results[1]
    assert first0 is None and first1 is None, "the fall-back reached both ranks while scoring: nothing written"
    assert mode0 == mode1 == "plain" and reason0 == reason1 and "RuntimeError: no kernel for this" in reason1
    assert rows0 == rows1 == [0, 1, 2]
    assert sorted(json.loads((tmp_path / "reference.json").read_text())) == ["0", "1", "2"]
