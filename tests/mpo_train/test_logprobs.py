import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from mmpr.loading import load_processor, load_vlm
from mmpr.testing import FAMILIES, LAYER_TYPE_FAMILIES, MIXED_SHAPE_FAMILIES
from mpo_train import logprobs
from mpo_train.data import PairEncoder
from mpo_train.forward import packed_layout, packed_logps, plain_logps
from mpo_train.logprobs import captured_hidden, chunk_rows, output_head, token_logps

# 16 rows per chunk at the tiny vocabulary: every response spans several chunks
SMALL_CHUNKS = 16 * 4 * 2000


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(logprobs, "CHUNK_BYTES", SMALL_CHUNKS)


def _model(tiny_model_dir, family, **kwargs):
    path = tiny_model_dir(family)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(path, attn_implementation="sdpa", **kwargs)
    return model, PairEncoder(AutoProcessor.from_pretrained(path), max_length=512)


def _recording(model):
    """The keyword arguments of every call of ``model``'s forward."""
    calls = []
    model.register_forward_pre_hook(lambda _m, _a, kwargs: calls.append(dict(kwargs)), with_kwargs=True)
    return calls


def _full_logits_logps(model, pairs, kwargs, layout_kind):
    """Today's path: the model's own [rows, positions, V] logits, log-softmax in float32, targets gathered."""
    logits = model(**kwargs).logits.float().log_softmax(-1)
    chosen, rejected = [], []
    if layout_kind == "packed":
        pad = model.config.get_text_config().pad_token_id or 0
        targets = packed_layout(pairs, pad).targets
        picked = logits.gather(-1, targets.clamp(min=0)[..., None])[..., 0]
        C = max(len(p.chosen) for p in pairs)
        for b, p in enumerate(pairs):
            chosen.append(picked[b, :len(p.chosen)].sum())
            rejected.append(picked[b, C:C + len(p.rejected)].sum())
        nll_tokens = torch.cat([picked[b, :len(p.chosen)] for b, p in enumerate(pairs)])
    else:
        B, rows = len(pairs), []
        for i, (p, response) in enumerate(zip(pairs + pairs, [p.chosen for p in pairs] + [p.rejected for p in pairs],
                                              strict=True)):
            P = len(p.prompt)
            rows.append(logits[i, P - 1:P - 1 + len(response)].gather(-1, torch.tensor(response)[:, None])[:, 0])
        chosen, rejected = [r.sum() for r in rows[:B]], [r.sum() for r in rows[B:]]
        nll_tokens = torch.cat(rows[:B])
    return torch.stack(chosen), torch.stack(rejected), -nll_tokens.mean()


def _loss(chosen, rejected, nll):
    return chosen.sum() - 0.5 * rejected.sum() + nll


def _grads(model):
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    model.zero_grad()
    return grads


def _check_equal_to_full_logits(model, pairs, fn, kind):
    calls = _recording(model)
    out = fn(model, pairs)
    _loss(out.chosen, out.rejected, out.chosen_nll).backward()
    ours = _grads(model)
    chosen, rejected, nll = _full_logits_logps(model, pairs, calls[0], kind)
    _loss(chosen, rejected, nll).backward()
    theirs = _grads(model)
    torch.testing.assert_close(out.chosen, chosen, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(out.rejected, rejected, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(out.chosen_nll, nll, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["packed", "plain"])
def test_log_probs_and_gradients_equal_the_full_logits(tiny_model_dir, pair_dataset, family, kind):
    model, encoder = _model(tiny_model_dir, family)
    pairs = [encoder.encode(i, pair_dataset[i]) for i in range(len(pair_dataset))]
    assert sum(len(p.chosen) + len(p.rejected) for p in pairs) > 3 * chunk_rows(model.config.get_text_config()
                                                                                  .vocab_size)
    _check_equal_to_full_logits(model, pairs, packed_logps if kind == "packed" else plain_logps, kind)


# Every other family: its own head, masks and processor outputs, in the forward it trains with (packed; plain for
# Qwen3.5, whose linear-attention layers refuse packing; both paths run above on three families).
OTHER_FAMILIES = (*MIXED_SHAPE_FAMILIES, "llama4", "qwen2_5_vl", "qwen3_vl", *LAYER_TYPE_FAMILIES, "glm4v", "kimi_k25")


@pytest.mark.slow
@pytest.mark.parametrize("family", OTHER_FAMILIES)
def test_every_family_log_probs_and_gradients_equal_the_full_logits(tiny_model_dir, pair_dataset, family):
    path = tiny_model_dir(family)
    torch.manual_seed(0)
    model = load_vlm(path, attn_implementation="sdpa", dtype=torch.float32)
    encoder = PairEncoder(load_processor(path), max_length=2048)
    pairs = [encoder.encode(i, pair_dataset[i]) for i in range(len(pair_dataset))]
    assert sum(len(p.chosen) + len(p.rejected) for p in pairs) > 3 * chunk_rows(model.config.get_text_config()
                                                                                  .vocab_size)
    kind = "plain" if family == "qwen3_5" else "packed"
    _check_equal_to_full_logits(model, pairs, packed_logps if kind == "packed" else plain_logps, kind)


def test_untied_head(tiny_model_dir, pair_dataset):
    model, encoder = _model(tiny_model_dir, "qwen2_vl", tie_word_embeddings=False)
    head = output_head(model)
    assert head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    pairs = [encoder.encode(i, pair_dataset[i]) for i in range(2)]
    _check_equal_to_full_logits(model, pairs, packed_logps, "packed")


def test_lora_on_the_head(tiny_model_dir, pair_dataset):
    from peft import LoraConfig, get_peft_model

    model, encoder = _model(tiny_model_dir, "llava")
    torch.manual_seed(1)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["lm_head", "q_proj"],
                                                  init_lora_weights=False))
    assert type(output_head(peft_model)).__module__.startswith("peft"), "the head with its adapter"
    pairs = [encoder.encode(i, pair_dataset[i]) for i in range(2)]
    _check_equal_to_full_logits(peft_model, pairs, packed_logps, "packed")


def _gemma2(vocab):
    from transformers import Gemma2Config, Gemma2ForCausalLM

    return Gemma2ForCausalLM(Gemma2Config(vocab_size=vocab, hidden_size=64, intermediate_size=128,
                                          num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                          head_dim=32, final_logit_softcapping=0.5, attn_implementation="eager"))


def _cohere(vocab):
    from transformers import CohereConfig, CohereForCausalLM

    return CohereForCausalLM(CohereConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128,
                                          num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                          logit_scale=0.0625))


def _granite(vocab):
    from transformers import GraniteConfig, GraniteForCausalLM

    return GraniteForCausalLM(GraniteConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128,
                                            num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                            logits_scaling=8.0))


@pytest.mark.parametrize("make", [_gemma2, _cohere, _granite], ids=["gemma2-softcap", "cohere-scale", "granite-scale"])
def test_logit_scaling_and_soft_capping_as_the_model_applies_them(make):
    """Gemma 2 caps its logits in its own forward, Cohere and Granite scale them: the chunked path does the same
    per chunk, and the model's treatment of its (empty) logits changes nothing."""
    torch.manual_seed(0)
    model = make(500)
    ids = torch.randint(0, 500, (2, 40))
    targets = ids[:, 1:].reshape(-1)
    logits = model(input_ids=ids).logits[:, :-1]
    raw = output_head(model)(model.model(input_ids=ids).last_hidden_state[:, :-1])
    assert not torch.allclose(logits, raw, atol=1e-3), "the model transforms its head's output"
    expected = logits.float().log_softmax(-1).reshape(-1, 500).gather(-1, targets[:, None])[:, 0]
    expected.sum().backward()
    theirs = _grads(model)
    with captured_hidden(model) as captured:
        empty = model(input_ids=ids).logits
    assert empty.shape == (2, 0, 500)
    ours = logprobs.model_token_logps(model, captured.hidden[:, :-1].reshape(-1, 64), targets)
    ours.sum().backward()
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(_grads(model), theirs, atol=1e-5, rtol=1e-4)


class _CountingHead(torch.nn.Linear):
    """A head that counts its calls and the rows of each: what a ZeRO-3 / FSDP hook sees (one gather per call)."""

    def __init__(self, hidden, vocab):
        super().__init__(hidden, vocab, bias=False)
        self.calls = []

    def forward(self, x):
        self.calls.append(x.shape[0])
        return super().forward(x)


def test_each_chunk_calls_the_head_module_so_sharded_heads_gather_per_chunk():
    torch.manual_seed(0)
    head = _CountingHead(32, 1000)
    hidden = torch.randn(100, 32, requires_grad=True)
    targets = torch.randint(0, 1000, (100,))
    rows = chunk_rows(1000, 32 * 4 * 1000)
    assert rows == 32
    with torch.no_grad():
        token_logps(head, hidden, targets, chunk_bytes=32 * 4 * 1000)
    assert head.calls == [32, 32, 32, 4]
    head.calls.clear()
    token_logps(head, hidden, targets, chunk_bytes=32 * 4 * 1000).sum().backward()
    assert head.calls == [32, 32, 32, 4, 4, 32, 32, 32], "each chunk recomputed once in backward (last first)"


def _largest_saved(fn) -> int:
    """The most elements of any tensor autograd keeps for backward while ``fn`` runs."""
    sizes = [0]

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return max(sizes)


def test_no_vocabulary_sized_tensor_is_kept_for_backward():
    torch.manual_seed(0)
    head = torch.nn.Linear(32, 5000, bias=False)
    hidden = torch.randn(200, 32, requires_grad=True)
    targets = torch.randint(0, 5000, (200,))
    full = _largest_saved(lambda: head(hidden).log_softmax(-1).gather(-1, targets[:, None]).sum())
    chunked = _largest_saved(lambda: token_logps(head, hidden, targets).sum())
    assert full >= 200 * 5000, "the unchunked path keeps its logits"
    assert chunked < 5000, f"the chunked path keeps at most a few rows of hidden states, not logits ({chunked})"


def test_a_model_whose_forward_skips_its_head_is_refused_in_one_line():
    class NoHeadCall(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = type("C", (), {"get_text_config": lambda self: self})()
            self.lm_head = torch.nn.Linear(4, 10)

        def get_output_embeddings(self):
            return self.lm_head

        def forward(self, x):
            return x @ self.lm_head.weight.T

    model = NoHeadCall()
    with pytest.raises(RuntimeError, match="never called its output embedding"), captured_hidden(model):
        model(torch.zeros(1, 4))
