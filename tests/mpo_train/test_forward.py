import pytest
import torch
from transformers import AutoModelForImageTextToText

from mmpr.loading import load_processor, load_vlm
from mmpr.testing import FAMILIES, LAYER_TYPE_FAMILIES, MIXED_SHAPE_FAMILIES
from mpo_train.data import PairEncoder
from mpo_train.forward import SequenceLogps, packed_logps, plain_logps


def _setup(tiny_model_dir, family, attn="sdpa", max_length=512):
    path = tiny_model_dir(family)
    torch.manual_seed(0)
    model = load_vlm(path, attn_implementation=attn)
    encoder = PairEncoder(load_processor(path), max_length=max_length)
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


@pytest.mark.parametrize("family", [*FAMILIES, "gemma3"])
def test_packed_gradients_equal_plain(tiny_model_dir, pair_dataset, family):
    model, encoder = _setup(tiny_model_dir, family)
    pairs = [encoder.encode(i, pair_dataset[i]) for i in range(2)]
    grads = []
    for fn in (packed_logps, plain_logps):
        model.zero_grad()
        out = fn(model, pairs)
        (out.chosen.sum() - 0.5 * out.rejected.sum() + out.chosen_nll).backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    # float32 sums in another order differ by a few ulps of a tensor's largest gradient (1e8 on Gemma 3's random
    # projector): each tensor's absolute tolerance scales with it
    for packed, plain in zip(*grads, strict=True):
        torch.testing.assert_close(packed, plain, atol=1e-4 + 1e-6 * plain.abs().max().item(), rtol=1e-3)


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


@pytest.mark.parametrize("family", [*FAMILIES, *LAYER_TYPE_FAMILIES, "qwen3_vl"])
def test_vision_keepalive_is_a_zero_that_reaches_the_vision_tower(tiny_model_dir, family):
    from mpo_train.forward import dummy_image_inputs, vision_keepalive

    model, encoder = _setup(tiny_model_dir, family)
    zero = vision_keepalive(model, dummy_image_inputs(encoder.processor))
    zero.backward()
    assert zero.item() == 0.0
    touched = [n for n, p in model.named_parameters() if p.grad is not None]
    assert touched and all("vision" in n or "visual" in n or "projector" in n or "mlp1" in n for n in touched)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["llava", "internvl", "gemma3"])
def test_flex_attention_block_mask_equals_plain(tiny_model_dir, pair_dataset, family, tmp_path):
    """Forward only: torch's CPU flex attention has no backward; on CPU it serves the reference pass, which is
    checked here too. Gemma 3: one block mask per layer type (its sliding window, its image blocks)."""
    from accelerate import PartialState

    from mpo_train.data import PairDataset
    from mpo_train.reference import score_pairs

    flex, encoder = _setup(tiny_model_dir, family, "flex_attention")
    plain_model, _ = _setup(tiny_model_dir, family)
    pairs = [encoder.encode(i, pair_dataset[i]) for i in range(len(pair_dataset))]
    with torch.inference_mode():
        packed, plain = packed_logps(flex, pairs), plain_logps(plain_model, pairs)
    torch.testing.assert_close(packed.chosen, plain.chosen, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(packed.rejected, plain.rejected, atol=1e-4, rtol=1e-5)
    table = score_pairs(flex, PairDataset(pair_dataset, encoder, list(range(len(pairs)))), [0, 1, 2],
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


# --- micro-batches that mix image shapes (crops, anyres patches, native resolution) and text-only pairs -----------

MIXED_ROWS = [  # three aspect ratios and a text-only pair in one micro-batch
    ("How many shapes are there?", [(90, 70)], "I count three shapes. Final answer: 3", "Final answer: 5, maybe"),
    ("Compare <image> with <image>.", [(40, 100), (56, 56)], "The first is taller.", "They are the same."),
    ("What is 2 + 2?", [], "2 + 2 = 4. Final answer: 4", "Final answer: 5"),
    # wider than 2 x 448 px: Phi-4's processor crops it (smaller images take one crop there)
    ("Which colour is on top?", [(900, 300)], "Red is on top.", "Blue, I think, or green."),
]


def mixed_pairs(encoder):
    from mmpr.testing import tiny_images

    pairs = []
    for i, (question, sizes, chosen, rejected) in enumerate(MIXED_ROWS):
        images = [tiny_images(1, size=size, seed=10 * i + j)[0] for j, size in enumerate(sizes)]
        pairs.append(encoder.encode(i, {"question": question, "images": images, "chosen": chosen,
                                        "rejected": rejected}))
    return pairs


def own_forward_logps(model, encoder, pairs):
    """Summed chosen log-probs from the model's own forward, on the mm tensors its processor makes for the whole
    micro-batch at once (its own batching and padding convention), for the pairs with images."""
    from mmpr.chat import conversation
    from mmpr.testing import tiny_images
    from mpo_train.forward import model_dtype

    with_images = [p for p in pairs if p.mm]
    rows = [MIXED_ROWS[p.index] for p in with_images]
    texts = [encoder.processor.apply_chat_template(conversation(q, len(s)), add_generation_prompt=True,
                                                   tokenize=False) for q, s, _, _ in rows]
    images = [[tiny_images(1, size=size, seed=10 * p.index + j)[0] for j, size in enumerate(MIXED_ROWS[p.index][1])]
              for p in with_images]
    batch = encoder.processor(text=texts, images=images, return_tensors="pt", padding=True)
    mm = {k: v.to(model_dtype(model)) if v.is_floating_point() else v for k, v in batch.items()
          if k not in ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids")}
    seqs = [p.prompt + p.chosen for p in with_images]
    width = max(map(len, seqs))
    ids = torch.tensor([s + [0] * (width - len(s)) for s in seqs])
    attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    if "mm_token_type_ids" in batch:  # the processor marks the image tokens (Qwen VL's rope index reads them)
        mm["mm_token_type_ids"] = (ids == encoder.processor.image_token_id).long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention, **mm).logits.float().log_softmax(-1)
    out = []
    for row, p in enumerate(with_images):
        P = len(p.prompt)
        out.append(logits[row, P - 1:P - 1 + len(p.chosen)].gather(-1, torch.tensor(p.chosen)[:, None]).sum())
    return torch.stack(out)


@pytest.mark.parametrize("family", [*MIXED_SHAPE_FAMILIES, "llama4", "qwen2_5_vl", "qwen3_vl"])
def test_mixed_image_shapes_packed_equals_plain_equals_the_models_own_forward(tiny_model_dir, family):
    from mpo_train.forward import batch_signatures

    model, encoder = _setup(tiny_model_dir, family, max_length=2048)  # Phi-4's 448 px crops: ~270 tokens each
    pairs = mixed_pairs(encoder)
    if family in MIXED_SHAPE_FAMILIES:
        assert ("padded",) in batch_signatures(pairs), "the micro-batch mixes image-tensor shapes"
    with torch.no_grad():
        packed, plain = packed_logps(model, pairs), plain_logps(model, pairs)
    torch.testing.assert_close(packed.chosen, plain.chosen, atol=1e-4, rtol=0)
    torch.testing.assert_close(packed.rejected, plain.rejected, atol=1e-4, rtol=0)
    own = own_forward_logps(model, encoder, pairs)
    torch.testing.assert_close(plain.chosen[[i for i, p in enumerate(pairs) if p.mm]], own, atol=1e-4, rtol=0)


def test_processor_outputs_pad_per_key_and_take_the_models_dtype():
    from mpo_train.data import EncodedPair
    from mpo_train.forward import _mm

    a = EncodedPair(0, [1], [2], [3], {"pixel_values": torch.ones(1, 2, 3, 4, 6, dtype=torch.bfloat16),
                                       "pixel_attention_mask": torch.ones(1, 2, 4, 6, dtype=torch.long)})
    b = EncodedPair(1, [1], [2], [3], {"pixel_values": torch.ones(1, 3, 3, 5, 4, dtype=torch.bfloat16),
                                       "pixel_attention_mask": torch.ones(1, 3, 5, 4, dtype=torch.long)})
    text = EncodedPair(2, [1], [2], [3], {})
    out = _mm([a, text, b], "cpu", torch.float32, repeat=2)
    assert out["pixel_values"].shape == (4, 3, 3, 5, 6) and out["pixel_values"].dtype == torch.float32
    assert out["pixel_attention_mask"].dtype == torch.long
    mask = out["pixel_attention_mask"]
    assert mask[0].sum() == 2 * 4 * 6 and mask[1].sum() == 3 * 5 * 4, "padding is zeros, the real pixels ones"
    assert torch.equal(out["pixel_values"][0, 2], torch.zeros(3, 5, 6)), "a padded crop is all zeros (dropped)"


class _Shifted:
    """plain_logps plus a per-token offset on the packed side: a packed forward that is ``offset`` nats per token
    off (a window or a recurrence the packed mask does not respect)."""

    def __init__(self, offset):
        self.offset = offset

    def __call__(self, model, pairs):
        out = plain_logps(model, pairs)
        out.chosen = out.chosen + self.offset * torch.tensor([len(p.chosen) for p in pairs])
        return out


def test_auto_checks_every_new_image_signature_with_an_absolute_tolerance(tiny_model_dir, pair_dataset,
                                                                           monkeypatch):
    from mpo_train import forward

    model, encoder = _setup(tiny_model_dir, "qwen2_vl")
    text_only, with_image = [encoder.encode(2, pair_dataset[2])], [encoder.encode(0, pair_dataset[0])]
    said, checked = [], []
    chooser = SequenceLogps("auto", say=said.append)
    monkeypatch.setattr(forward, "plain_logps", lambda m, p: checked.append(len(p)) or plain_logps(m, p))
    chooser(model, text_only)
    chooser(model, text_only)
    assert len(checked) == 1, "a text-only first batch is checked once"
    chooser(model, with_image)
    assert len(checked) == 2, "the first batch with an image is checked again"
    assert chooser.mode == "packed" and "2 image signatures" in said[-1]
    # 5e-3 nats per token: a few hundredths of a percent of the summed log-prob, refused all the same
    chooser(model, [encoder.encode(1, pair_dataset[1])])
    assert len(checked) == 2, "two images of another size: the same signature, not checked again"
    monkeypatch.setattr(forward, "packed_logps", _Shifted(5e-3))
    strict = SequenceLogps("auto", say=said.append)
    strict(model, with_image)
    assert strict.mode == "plain" and "per token" in said[-1] and not strict.checking


def test_the_decision_is_the_same_on_every_rank(tiny_model_dir, pair_dataset, monkeypatch):
    """A rank whose own batch agrees still takes the plain forward when another rank's differs (the largest
    difference over the ranks decides)."""
    from mpo_train import forward

    model, encoder = _setup(tiny_model_dir, "qwen2_vl")
    monkeypatch.setattr(forward, "_max_over_ranks", lambda value, device: max(value, 0.5))
    chooser = SequenceLogps("auto")
    chooser(model, [encoder.encode(0, pair_dataset[0])])
    assert chooser.mode == "plain" and "5.00e-01" in chooser.reason


def _reduce_on_rank(rank, port, results):
    import torch.distributed as dist

    from mpo_train.forward import _max_over_ranks

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    results[rank] = _max_over_ranks(float(rank) * 0.25, "cpu")
    dist.destroy_process_group()


def test_max_over_ranks_reaches_every_rank():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.Manager().dict()
    mp.start_processes(_reduce_on_rank, args=(port, results), nprocs=2, start_method="fork")
    assert dict(results) == {0: 0.25, 1: 0.25}


def test_an_idle_rank_joins_the_check_of_the_others(tiny_model_dir, monkeypatch):
    """A rank that has run out of micro-batches (the reference precompute) still takes part in the check another rank
    starts, and takes its decision; while checking, every rank makes as many calls as the busiest; once decided,
    no collective is taken."""
    from mpo_train import forward

    model, _ = _setup(tiny_model_dir, "qwen2_vl")
    other_rank = iter([3.0, 1.0, 0.5])  # its batches, "a new signature here", its difference
    monkeypatch.setattr(forward, "_max_over_ranks", lambda value, device: max(value, next(other_rank)))
    chooser = SequenceLogps("auto")
    assert chooser.lockstep(1, "cpu") == 3
    chooser.idle(model)
    assert chooser.mode == "plain" and "5.00e-01" in chooser.reason
    monkeypatch.setattr(forward, "_max_over_ranks", lambda value, device: pytest.fail("a collective was taken"))
    assert chooser.lockstep(1, "cpu") == 1
    chooser.idle(model)


def test_the_config_decides_before_any_batch_and_the_mode_used_is_described(tiny_model_dir, pair_dataset):
    """What the config decides is settled before the first micro-batch (a reference cache is keyed by the mode that
    scores it); the description names the mode used, and the mode used before a switch."""
    model, encoder = _setup(tiny_model_dir, "qwen2_vl")
    chooser = SequenceLogps("auto")
    chooser.settle(model)
    assert chooser.mode == "packed" and chooser.checking, "only a micro-batch can tell for this one"
    chooser(model, [encoder.encode(0, pair_dataset[0])])
    assert chooser.describe().startswith("packed: packed forward checked against plain on 1 image signatures")
    model.config.get_text_config()._attn_implementation = "flash_attention_2"
    chooser.seen.clear()
    chooser._check(model, [encoder.encode(0, pair_dataset[0])])
    assert chooser.describe() == ("plain (packed for the first 1 forwards): using the plain two-sequence forward: "
                                  "attention backend 'flash_attention_2' takes no custom attention mask")
    settled = SequenceLogps("auto")
    settled.settle(model)
    assert settled.mode == "plain" and not settled.calls
    assert SequenceLogps("plain").describe() == "plain: set by forward: plain"


# ---------------------------------------------------------------------------------------- masks per layer type

def _own_logps(model, processor, row, response_ids):
    """Summed log-prob of ``response_ids`` after the prompt, from the model's own forward on what the processor
    gives for the prompt (``token_type_ids`` / ``mm_token_type_ids`` included): no custom mask, no positions."""
    from mmpr.chat import conversation
    from mpo_train.chat_split import split_pair

    images = [img.convert("RGB") for img in row["images"]]
    split = split_pair(processor, conversation(row["question"], len(images)), row["chosen"], row["rejected"])
    inputs = processor(text=[split.prompt_text], images=images or None, return_tensors="pt", add_special_tokens=False)
    n = inputs["input_ids"].shape[1]
    response = torch.tensor([response_ids])
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    for key in ("token_type_ids", "mm_token_type_ids"):
        if key in extra:
            extra[key] = torch.cat([extra[key], torch.zeros_like(response)], dim=1)
    ids = torch.cat([inputs["input_ids"], response], dim=1)
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **extra).logits[0, n - 1:-1].float()
    return logits.log_softmax(-1).gather(-1, response[0][:, None]).sum()


@pytest.mark.parametrize(("family", "attn"), [("gemma3", "sdpa"), ("gemma3", "eager"), ("gemma4", "sdpa"),
                                              ("qwen3_5", "sdpa"), ("qwen3_vl", "sdpa"), ("glm4v", "sdpa"),
                                              ("glm4v_moe", "sdpa"), ("kimi_k25", "sdpa")])
def test_layer_type_families_equal_their_own_forward(tiny_model_dir, pair_dataset, family, attn):
    """On a micro-batch with one image, two images and no image: the chosen forward (packed for Gemma 3 and 4,
    whose sliding window of 8 is shorter than their images, for Qwen3-VL with deepstack, GLM-4.1V, GLM-4.6V with
    experts and Kimi K2.5 with latent attention and experts; plain for Qwen3.5) equals the model's own forward."""
    model, encoder = _setup(tiny_model_dir, family, attn)
    pairs = [encoder.encode(i, pair_dataset[i]) for i in range(len(pair_dataset))]
    chooser = SequenceLogps("auto")
    with torch.no_grad():
        out = chooser(model, pairs)
        plain = plain_logps(model, pairs)
        own = torch.stack([torch.stack([_own_logps(model, encoder.processor, pair_dataset[p.index], getattr(p, side))
                                        for p in pairs]) for side in ("chosen", "rejected")])
    assert chooser.mode == ("plain" if family == "qwen3_5" else "packed"), chooser.reason
    for got in (out, plain):
        torch.testing.assert_close(got.chosen, own[0], atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(got.rejected, own[1], atol=1e-4, rtol=1e-5)


def test_gemma3_window_and_image_blocks_matter(tiny_model_dir, pair_dataset, monkeypatch):
    """The masks are what makes packed equal plain: one full-attention mask for every layer (the sliding windows
    and the bidirectional image blocks ignored) is far off, and the plain forward without ``token_type_ids``
    differs from the model's own forward."""
    from mpo_train import forward

    model, encoder = _setup(tiny_model_dir, "gemma3")
    pairs = [encoder.encode(i, pair_dataset[i]) for i in range(2)]
    with torch.no_grad():
        plain = plain_logps(model, pairs)
        monkeypatch.setattr(forward, "layer_masks", lambda config: {t: forward.LayerMask() for t in
                                                                    ("full_attention", "sliding_attention")})
        windowless = packed_logps(model, pairs)
        monkeypatch.setattr(forward, "bidirectional_images", lambda config: None)
        causal_images = plain_logps(model, pairs)
    assert (windowless.chosen - plain.chosen).abs().max() > 1e-2
    assert (causal_images.chosen - plain.chosen).abs().max() > 1e-3


def test_llama4_chunked_attention_mask_matters(tiny_model_dir):
    """Llama 4's RoPE layers attend within chunks of ``attention_chunk_size`` positions (32 in the tiny model): the
    packed forward equals the model's own forward on a mixed-shape micro-batch (the test above), and the same packed
    forward with one full-attention mask for every layer is far off."""
    from mpo_train import forward

    model, encoder = _setup(tiny_model_dir, "llama4", max_length=2048)
    pairs = mixed_pairs(encoder)
    assert model.config.get_text_config().attention_chunk_size < max(len(p.prompt) for p in pairs)
    with torch.no_grad():
        plain = plain_logps(model, pairs)
        packed = packed_logps(model, pairs)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(forward, "layer_masks", lambda config: {t: forward.LayerMask() for t in
                                                                  ("full_attention", "chunked_attention")})
            chunkless = packed_logps(model, pairs)
    torch.testing.assert_close(packed.chosen, plain.chosen, atol=1e-4, rtol=0)
    assert (chunkless.chosen - plain.chosen).abs().max() > 1e-2


def test_linear_attention_never_packs(tiny_model_dir, pair_dataset):
    """Qwen3.5's Gated DeltaNet layers would carry the chosen tokens into the rejected ones: the config decides
    plain (auto), and an explicit ``forward: packed`` is refused in one line."""
    from mmpr.errors import UserError
    from mpo_train import forward

    model, encoder = _setup(tiny_model_dir, "qwen3_5")
    pairs = [encoder.encode(i, pair_dataset[i]) for i in range(2)]
    chooser = SequenceLogps("auto")
    chooser(model, pairs)
    assert chooser.mode == "plain" and "linear_attention" in chooser.reason
    with pytest.raises(UserError, match="linear_attention layers carry a state.*use forward: auto or plain"):
        SequenceLogps("packed")(model, pairs)
    # the leak the refusal prevents: in one [prompt | chosen | rejected] row, with the segment mask on the attention
    # layers, the rejected tokens' log-probs move when only the chosen tokens change
    pair = encoder.encode(2, pair_dataset[2])
    rejected_logps = []
    for chosen in (pair.chosen, pair.chosen[::-1]):
        layout = forward.packed_layout([forward.EncodedPair(0, pair.prompt, chosen, pair.rejected)], 0)
        positions = torch.arange(layout.input_ids.shape[1])[None, None].expand(3, 1, -1)
        positions = torch.cat([positions[..., :layout.columns[0][2]],
                               positions[..., layout.columns[0][1]:layout.columns[0][1] + len(pair.rejected)]], -1)
        mask = {"full_attention": forward._allowed(layout.segments)[:, None], "linear_attention": None}
        with torch.no_grad():
            logits = model(input_ids=layout.input_ids, attention_mask=mask, position_ids=positions).logits[0]
        start = layout.columns[0][2]
        targets = torch.tensor(pair.rejected[1:])
        rejected_logps.append(logits[start:-1].log_softmax(-1).gather(-1, targets[:, None]).sum())
    assert abs(rejected_logps[0] - rejected_logps[1]) > 1e-3
