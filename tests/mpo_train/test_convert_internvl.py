"""mpo_train.convert_internvl on tiny original-layout checkpoints of both LLM kinds (InternLM2 with grouped wqkv and
GQA, Qwen2): bit-exact round trip, logits against an independent forward of the original weights, the processor
against the original dynamic tiling, the sentencepiece tokenizer, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from mmpr.testing import tiny_original_internvl
from mpo_train.convert_internvl import LayoutError, to_hf, to_original
from mpo_train.convert_internvl.__main__ import main
from mpo_train.convert_internvl.files import read_state

KINDS = ["internlm2", "qwen2"]


@pytest.fixture(scope="module", params=KINDS)
def converted(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    # a small shard size: the real checkpoints are sharded with an index
    src = tiny_original_internvl(root / "orig", request.param, max_shard_bytes=100_000)
    return request.param, src, to_hf(src, root / "hf")


def test_round_trip_is_bit_exact(converted, tmp_path):
    kind, src, hf = converted
    back = to_original(hf, tmp_path / "back")
    a, b = read_state(src), read_state(back)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name
    assert json.loads((back / "config.json").read_text()) == json.loads((src / "config.json").read_text())
    for path in src.iterdir():
        if path.suffix == ".py" or path.name.startswith("tokenizer"):
            assert (back / path.name).read_bytes() == path.read_bytes(), path.name
    assert json.loads((back / "config.json").read_text())["architectures"] == ["InternVLChatModel"]


# --- an independent forward of the original LLM weights --------------------------------------------------------

def _rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _rope(x, theta):  # x [heads, T, d], rotate-half convention of InternLM2 / Qwen2
    d, t = x.shape[-1], x.shape[-2]
    inv = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = torch.outer(torch.arange(t, dtype=torch.float64), inv)
    cos, sin = torch.cat([ang, ang], -1).cos().float(), torch.cat([ang, ang], -1).sin().float()
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def _attend(q, k, v):  # one head each, causal
    t = q.shape[0]
    scores = q @ k.T / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
    return scores.softmax(-1) @ v


def reference_logits(src, ids: list[int]) -> torch.Tensor:
    """Logits of the original checkpoint's LLM, read straight from its tensors. For InternLM2 each key/value group's
    rows of ``wqkv`` are walked in place: group j holds ``groups`` query heads, then its key head, then its value."""
    cfg = json.loads((src / "config.json").read_text())["llm_config"]
    w = read_state(src)
    internlm2 = cfg["architectures"] == ["InternLM2ForCausalLM"]
    heads, kv, h = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
    d, groups, eps, theta = h // heads, heads // kv, cfg["rms_norm_eps"], cfg["rope_theta"]
    p = "language_model.model."
    x = w[p + ("tok_embeddings" if internlm2 else "embed_tokens") + ".weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        layer = f"{p}layers.{i}."
        norm = _rms(x, w[layer + ("attention_norm" if internlm2 else "input_layernorm") + ".weight"], eps)
        outs = []
        for j in range(kv):
            if internlm2:
                rows = w[layer + "attention.wqkv.weight"][j * (groups + 2) * d:(j + 1) * (groups + 2) * d]
                qs = [rows[g * d:(g + 1) * d] for g in range(groups)]
                kw, vw = rows[groups * d:(groups + 1) * d], rows[(groups + 1) * d:]
                kb = vb = 0
                qbs = [0] * groups
            else:
                a = layer + "self_attn."
                qs = [w[a + "q_proj.weight"][(j * groups + g) * d:(j * groups + g + 1) * d] for g in range(groups)]
                qbs = [w[a + "q_proj.bias"][(j * groups + g) * d:(j * groups + g + 1) * d] for g in range(groups)]
                kw, kb = w[a + "k_proj.weight"][j * d:(j + 1) * d], w[a + "k_proj.bias"][j * d:(j + 1) * d]
                vw, vb = w[a + "v_proj.weight"][j * d:(j + 1) * d], w[a + "v_proj.bias"][j * d:(j + 1) * d]
            k = _rope((norm @ kw.T + kb)[None], theta)[0]
            v = norm @ vw.T + vb
            outs += [_attend(_rope((norm @ qw.T + qb)[None], theta)[0], k, v)
                     for qw, qb in zip(qs, qbs, strict=True)]
        o = w[layer + ("attention.wo" if internlm2 else "self_attn.o_proj") + ".weight"]
        x = x + torch.cat(outs, -1) @ o.T
        norm = _rms(x, w[layer + ("ffn_norm" if internlm2 else "post_attention_layernorm") + ".weight"], eps)
        names = ("feed_forward.w1", "feed_forward.w3", "feed_forward.w2") if internlm2 else (
            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
        gate, up, down = (w[layer + n + ".weight"] for n in names)
        x = x + (torch.nn.functional.silu(norm @ gate.T) * (norm @ up.T)) @ down.T
    x = _rms(x, w[p + "norm.weight"], eps)
    return x @ w["language_model." + ("output" if internlm2 else "lm_head") + ".weight"].T


def test_converted_logits_equal_an_independent_forward_of_the_original(converted):
    from transformers import AutoModelForImageTextToText

    kind, src, hf = converted
    ids = list(range(5, 40, 3))
    want = reference_logits(src, ids)
    model = AutoModelForImageTextToText.from_pretrained(hf, dtype=torch.float32).eval()
    with torch.no_grad():
        got = model(input_ids=torch.tensor([ids])).logits[0]
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
    if kind == "internlm2":  # the check sees a wrong split: q|k|v as three contiguous blocks
        heads = model.config.text_config.num_attention_heads
        d = model.config.text_config.head_dim
        state = {k: v.clone() for k, v in model.state_dict().items()}
        wqkv = read_state(src)["language_model.model.layers.0.attention.wqkv.weight"]
        attn = "model.language_model.layers.0.self_attn."
        q, k, v = wqkv.split([heads * d, (wqkv.shape[0] - heads * d) // 2, (wqkv.shape[0] - heads * d) // 2])
        state |= {attn + "q_proj.weight": q, attn + "k_proj.weight": k, attn + "v_proj.weight": v}
        model.load_state_dict(state)
        with torch.no_grad():
            wrong = model(input_ids=torch.tensor([ids])).logits[0]
        assert not torch.allclose(wrong, want, atol=1e-3)


def reference_image_embeddings(src, pixel_values: torch.Tensor) -> torch.Tensor:
    """InternVL's ``extract_feature`` from the original tensors: InternViT (pre-norm blocks with layer scale, fused
    q|k|v), drop the class token, pixel shuffle 0.5 (each output cell stacks the 2x2 block row-major over the
    first two axes), then ``mlp1`` (LayerNorm, Linear, GELU, Linear)."""
    import torch.nn.functional as F

    cfg = json.loads((src / "config.json").read_text())["vision_config"]
    w = read_state(src)
    d, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    e = "vision_model.embeddings."
    x = F.conv2d(pixel_values, w[e + "patch_embedding.weight"], w[e + "patch_embedding.bias"], stride=cfg["patch_size"])
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([w[e + "class_embedding"].expand(len(x), 1, d), x], 1) + w[e + "position_embedding"]
    for i in range(cfg["num_hidden_layers"]):
        p = f"vision_model.encoder.layers.{i}."
        y = F.layer_norm(x, (d,), w[p + "norm1.weight"], w[p + "norm1.bias"], eps)
        q, k, v = (y @ w[p + "attn.qkv.weight"].T + w[p + "attn.qkv.bias"]).split(d, -1)
        q, k, v = (t.unflatten(-1, (heads, d // heads)).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2) / math.sqrt(d // heads)).softmax(-1) @ v
        x = x + w[p + "ls1"] * (att.transpose(1, 2).flatten(2) @ w[p + "attn.proj.weight"].T + w[p + "attn.proj.bias"])
        y = F.layer_norm(x, (d,), w[p + "norm2.weight"], w[p + "norm2.bias"], eps)
        y = F.gelu(y @ w[p + "mlp.fc1.weight"].T + w[p + "mlp.fc1.bias"]) @ w[p + "mlp.fc2.weight"].T
        x = x + w[p + "ls2"] * (y + w[p + "mlp.fc2.bias"])
    x = x[:, 1:]
    side = int(math.isqrt(x.shape[1]))
    grid = x.reshape(len(x), side, side, d)
    shuffled = torch.cat([grid[:, t::2, s::2] for t in (0, 1) for s in (0, 1)], -1).flatten(1, 2)
    y = F.layer_norm(shuffled, (4 * d,), w["mlp1.0.weight"], w["mlp1.0.bias"], 1e-5)
    return F.gelu(y @ w["mlp1.1.weight"].T + w["mlp1.1.bias"]) @ w["mlp1.3.weight"].T + w["mlp1.3.bias"]


def test_converted_image_features_equal_an_independent_forward_of_the_original(converted):
    from transformers import AutoModelForImageTextToText

    kind, src, hf = converted
    model = AutoModelForImageTextToText.from_pretrained(hf, dtype=torch.float32).eval()
    tile = model.config.vision_config.image_size[0]
    pixels = torch.randn(3, 3, tile, tile, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = model.model.get_image_features(pixel_values=pixels, vision_feature_layer=-1,
                                             vision_feature_select_strategy="default")
    got = got.pooler_output if hasattr(got, "pooler_output") else got
    torch.testing.assert_close(got, reference_image_embeddings(src, pixels), atol=2e-5, rtol=1e-4)


# --- the original dynamic tiling, from InternVL's published preprocessing --------------------------------------

def original_tiles(image: Image.Image, *, tile: int, min_num: int, max_num: int) -> np.ndarray:
    """InternVL's ``dynamic_preprocess`` + ``build_transform``: pick the tile grid (i, j) with i*j in
    [min_num, max_num] closest in aspect ratio (a tie goes to the larger grid when the image area exceeds half of
    the grid's), PIL-resize (bicubic) to the grid, cut row-major, add a resized thumbnail when more than one tile,
    then scale to [0, 1] and normalise with ImageNet mean/std. Returns [tiles, 3, tile, tile]."""
    w, h = image.size
    aspect = w / h
    grids = sorted({(i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
                    if min_num <= i * j <= max_num}, key=lambda g: g[0] * g[1])
    best, best_diff = (1, 1), float("inf")
    for i, j in grids:
        diff = abs(aspect - i / j)
        if diff < best_diff:
            best, best_diff = (i, j), diff
        elif diff == best_diff and w * h > 0.5 * tile * tile * i * j:
            best = (i, j)
    resized = image.resize((tile * best[0], tile * best[1]), Image.BICUBIC)
    tiles = [resized.crop((c * tile, r * tile, (c + 1) * tile, (r + 1) * tile))
             for r in range(best[1]) for c in range(best[0])]
    if len(tiles) != 1:
        tiles.append(image.resize((tile, tile), Image.BICUBIC))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    arrays = [((np.asarray(t.convert("RGB"), dtype=np.float64) / 255 - mean) / std).transpose(2, 0, 1) for t in tiles]
    return np.stack(arrays)


@pytest.mark.parametrize("size", [(56, 56), (200, 60), (60, 230), (130, 118), (400, 90)])
def test_processor_reproduces_the_original_dynamic_tiling(converted, size):
    from transformers import AutoProcessor

    from mmpr.testing import tiny_images

    kind, src, hf = converted
    config = json.loads((src / "config.json").read_text())
    tile, per_tile = config["force_image_size"], (config["force_image_size"] // 14) ** 2 // 4
    image = tiny_images(1, size=size, seed=sum(size))[0]
    want = original_tiles(image, tile=tile, min_num=config["min_dynamic_patch"], max_num=config["max_dynamic_patch"])
    processor = AutoProcessor.from_pretrained(hf)
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"},
                                                                       {"type": "text", "text": "What is it?"}]}],
                                         add_generation_prompt=True)
    batch = processor(text=[text], images=[image], return_tensors="pt")
    got = batch["pixel_values"].double().numpy()
    assert got.shape == want.shape
    # transformers' PIL resize rounds a few pixels differently from PIL's own: at most one intensity level
    np.testing.assert_allclose(got, want, atol=1.01 / 255 / 0.224)
    assert np.mean(np.abs(got - want) > 1e-5) < 0.005
    ids = batch["input_ids"][0].tolist()
    tok = processor.tokenizer
    assert ids.count(tok.convert_tokens_to_ids("<IMG_CONTEXT>")) == per_tile * len(want)
    start, end = ids.index(tok.convert_tokens_to_ids("<img>")), ids.index(tok.convert_tokens_to_ids("</img>"))
    assert end - start - 1 == per_tile * len(want)


def test_chat_template_is_internvl_mpt_style_with_the_default_system_message(converted):
    from transformers import AutoProcessor

    kind, src, hf = converted
    processor = AutoProcessor.from_pretrained(hf)
    text = processor.apply_chat_template([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}])
    assert text.startswith("<|im_start|>system\n你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型")
    assert text.endswith("<|im_end|><|im_start|>user\nHi<|im_end|><|im_start|>assistant\nYo<|im_end|>")
    own = processor.apply_chat_template([{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
                                        add_generation_prompt=True)
    assert own == "<|im_start|>system\nS<|im_end|><|im_start|>user\nQ<|im_end|><|im_start|>assistant\n"
    model_cfg = json.loads((hf / "config.json").read_text())
    assert model_cfg["image_token_id"] == processor.tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    assert len(processor.tokenizer) == model_cfg["text_config"]["vocab_size"]


def test_internvl2_5_template_ends_turns_with_a_newline(tmp_path):
    from transformers import AutoProcessor

    src = tiny_original_internvl(tmp_path / "o", "qwen2", layers=1)
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps(config | {"template": "internvl2_5"}))
    processor = AutoProcessor.from_pretrained(to_hf(src, tmp_path / "hf"))
    text = processor.apply_chat_template([{"role": "user", "content": "Q"}], add_generation_prompt=True)
    assert text == ("<|im_start|>system\n你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及"
                    "多家合作单位联合开发的多模态大语言模型。<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n")
    (src / "config.json").write_text(json.dumps(config | {"template": "vicuna_v1.1"}))
    with pytest.raises(LayoutError, match="vicuna_v1.1"):
        to_hf(src, tmp_path / "hf2")


def test_internlm2_sentencepiece_tokenizer_becomes_an_equal_fast_tokenizer(tmp_path):
    import sentencepiece as spm
    from transformers import AutoTokenizer

    src = tiny_original_internvl(tmp_path / "o", "internlm2")
    hf = to_hf(src, tmp_path / "hf")
    sp = spm.SentencePieceProcessor(model_file=str(src / "tokenizer.model"))
    tok = AutoTokenizer.from_pretrained(hf)
    for text in ["the red circle is 42.5 cm", " two  spaces ü\n\n x", "Final answer: (B) 3.14\\boxed{2}", "日本"]:
        assert tok.encode(text, add_special_tokens=False) == sp.encode(text), text
    assert tok.encode("a", add_special_tokens=True)[0] == 1  # <s>, as InternLM2's tokenizer adds it
    decoder = json.loads((src / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    for id_, entry in decoder.items():
        assert tok.convert_tokens_to_ids(entry["content"]) == int(id_)
        assert tok.encode(f"x{entry['content']}y", add_special_tokens=False)[1] == int(id_)


def test_cli_both_ways_and_errors(tmp_path, capsys):
    src = tiny_original_internvl(tmp_path / "o", "qwen2", layers=1)
    assert main([str(src), str(tmp_path / "hf")]) == 0
    assert main([str(tmp_path / "hf"), str(tmp_path / "back"), "--to", "original", "--original-from", str(src)]) == 0
    assert torch.equal(read_state(src)["mlp1.1.weight"], read_state(tmp_path / "back")["mlp1.1.weight"])
    assert main([str(tmp_path / "hf"), str(tmp_path / "x")]) == 2  # already transformers layout
    assert "InternVLChatModel" in capsys.readouterr().err
    (tmp_path / "hf2").mkdir()
    (tmp_path / "hf2" / "config.json").write_text((tmp_path / "hf" / "config.json").read_text())
    assert main([str(tmp_path / "hf2"), str(tmp_path / "y"), "--to", "original"]) == 2
    assert "--original-from" in capsys.readouterr().err


def test_unsupported_llm_is_named(tmp_path):
    src = tiny_original_internvl(tmp_path / "o", "qwen2", layers=1)
    config = json.loads((src / "config.json").read_text())
    config["llm_config"]["architectures"] = ["Phi3ForCausalLM"]
    (src / "config.json").write_text(json.dumps(config))
    with pytest.raises(LayoutError, match="Phi3ForCausalLM"):
        to_hf(src, tmp_path / "hf")


def test_back_to_original_writes_the_dtype_the_source_declares(converted, tmp_path):
    """A trained model is saved in float32; converted back against a bfloat16 source, the weights are bfloat16
    (half the bytes), equal to the float32 ones rounded."""
    import shutil

    from mpo_train.convert_internvl import ORIGINAL_DIR

    _, src, hf = converted
    template = tmp_path / "bf16-source"
    shutil.copytree(hf / ORIGINAL_DIR, template)
    config = json.loads((template / "config.json").read_text())
    config["torch_dtype"] = "bfloat16"
    (template / "config.json").write_text(json.dumps(config))
    back = read_state(to_original(hf, tmp_path / "back", original_from=template))
    source = read_state(src)
    assert {t.dtype for t in back.values() if t.is_floating_point()} == {torch.bfloat16}
    for name, tensor in source.items():
        assert torch.equal(back[name], tensor.to(torch.bfloat16)), name
