import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from mmpr.testing import FAMILIES
from mpo_train.data import PairEncoder
from mpo_train.forward import SequenceLogps, packed_logps, plain_logps


def _setup(tiny_model_dir, family, attn="sdpa"):
    path = tiny_model_dir(family)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(path, attn_implementation=attn)
    encoder = PairEncoder(AutoProcessor.from_pretrained(path), max_length=512)
    return model, encoder


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_equals_plain(tiny_model_dir, pair_dataset, family, attn):
    model, encoder = _setup(tiny_model_dir, family, attn)
    pairs = [encoder.encode(i, pair_dataset[i]) for i in range(len(pair_dataset))]
    with torch.no_grad():
        packed, plain = packed_logps(model, pairs), plain_logps(model, pairs)
    torch.testing.assert_close(packed.chosen, plain.chosen, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(packed.rejected, plain.rejected, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(packed.chosen_nll, plain.chosen_nll, atol=1e-5, rtol=1e-5)
    assert packed.tokens < plain.tokens, "the prompt is computed once"
    assert packed.chosen.shape == (3,) and (packed.chosen < 0).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_packed_gradients_equal_plain(tiny_model_dir, pair_dataset, family):
    model, encoder = _setup(tiny_model_dir, family)
    pairs = [encoder.encode(i, pair_dataset[i]) for i in range(2)]
    grads = []
    for fn in (packed_logps, plain_logps):
        model.zero_grad()
        out = fn(model, pairs)
        (out.chosen.sum() - 0.5 * out.rejected.sum() + out.chosen_nll).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-4, rtol=1e-3)


def test_auto_checks_packed_once_and_falls_back_on_other_backends(tiny_model_dir, pair_dataset):
    model, encoder = _setup(tiny_model_dir, "qwen2_vl")
    pairs = [encoder.encode(0, pair_dataset[0])]
    chooser = SequenceLogps("auto")
    chooser(model, pairs)
    assert chooser.mode == "packed" and "checked against plain" in chooser.reason
    model.config.get_text_config()._attn_implementation = "flash_attention_2"
    fallback = SequenceLogps("auto")
    fallback._check(model, pairs)
    assert fallback.mode == "plain" and "flash_attention_2" in fallback.reason


@pytest.mark.parametrize("family", FAMILIES)
def test_vision_keepalive_is_a_zero_that_reaches_the_vision_tower(tiny_model_dir, family):
    from mpo_train.forward import dummy_image_inputs, vision_keepalive

    model, encoder = _setup(tiny_model_dir, family)
    zero = vision_keepalive(model, dummy_image_inputs(encoder.processor))
    zero.backward()
    assert zero.item() == 0.0
    touched = [n for n, p in model.named_parameters() if p.grad is not None]
    assert touched and all("vision" in n or "visual" in n or "projector" in n or "mlp1" in n for n in touched)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["llava", "internvl"])
def test_flex_attention_block_mask_equals_plain(tiny_model_dir, pair_dataset, family, tmp_path):
    """Forward only: torch's CPU flex attention has no backward; on CPU it serves the reference pass, which is
    checked here too."""
    from accelerate import PartialState

    from mpo_train.data import PairDataset
    from mpo_train.reference import precompute

    flex, encoder = _setup(tiny_model_dir, family, "flex_attention")
    plain_model, _ = _setup(tiny_model_dir, family)
    pairs = [encoder.encode(i, pair_dataset[i]) for i in range(len(pair_dataset))]
    with torch.inference_mode():
        packed, plain = packed_logps(flex, pairs), plain_logps(plain_model, pairs)
    torch.testing.assert_close(packed.chosen, plain.chosen, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(packed.rejected, plain.rejected, atol=1e-4, rtol=1e-5)
    table = precompute(flex, PairDataset(pair_dataset, encoder, list(range(len(pairs)))), [0, 1, 2],
                       cache=tmp_path / "ref.json", batch_size=3, logps=SequenceLogps("packed"),
                       accelerator=PartialState())
    torch.testing.assert_close(torch.tensor([table[i] for i in range(3)]),
                               torch.stack([plain.chosen, plain.rejected], dim=1), atol=1e-4, rtol=1e-5)


def test_qwen2_vl_refuses_flex_attention_in_this_transformers(tiny_model_dir):
    """Documented in the module: Qwen2-VL's text model declares no flex support, so sdpa is its GPU backend."""
    with pytest.raises(ValueError, match="flex_attention"):
        AutoModelForImageTextToText.from_pretrained(tiny_model_dir("qwen2_vl"), attn_implementation="flex_attention")


def test_packed_rows_grow_linearly_with_the_pairs(tiny_model_dir, pair_dataset):
    """One row per pair, each as long as the longest pair: twice the pairs, twice the tokens (a single packed
    row with a dense mask would cost four times the attention)."""
    from mpo_train.forward import _allowed, packed_layout

    _, encoder = _setup(tiny_model_dir, "qwen2_vl")
    pair = encoder.encode(0, pair_dataset[0])
    one, four = packed_layout([pair], 0), packed_layout([pair] * 4, 0)
    assert four.input_ids.shape == (4, one.input_ids.shape[1])
    allow = _allowed(four.segments)
    assert allow.shape == (4, one.input_ids.shape[1], one.input_ids.shape[1])
    assert torch.equal(allow[0], allow[3])
    P, C = len(pair.prompt), len(pair.chosen)
    assert not allow[0, P + C, P:P + C].any(), "the rejected response does not see the chosen one"
    assert allow[0, P + C, :P].all(), "it sees the whole prompt"
