import pytest
from transformers import AutoProcessor

from mmpr.chat import conversation
from mmpr.loading import load_processor
from mmpr.testing import TINY_FAMILIES, tiny_tokenizer
from mpo_train.chat_split import split_pair
from mpo_train.data import PairEncoder

CHOSEN, REJECTED = "I count three shapes. Final answer: 3", "Final answer: 5, I think"


def _assistant(text):
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


@pytest.mark.parametrize("family", TINY_FAMILIES.names())
def test_prompt_and_response_are_the_templates_own_tokens(tiny_model_dir, family):
    """prompt + response == the published chat template's own tokenization of the conversation, up to its
    end-of-turn token (one <bos> where the template renders it; Qwen3.5's empty thinking block in the prompt; the
    end-of-sequence token after a turn the template ends with no token of its own, GLM-4.1V's). Gemma 4's prompt is
    its own generation prompt (with the empty thought channel), its response the rendered turn's."""
    processor = load_processor(tiny_model_dir(family))
    tok = processor.tokenizer

    def own(conversation, **kwargs):
        text = processor.apply_chat_template(conversation, tokenize=False, **kwargs)
        return tok(text, add_special_tokens=False)["input_ids"]

    messages = conversation("What is 2 + 2?", 0)
    split = split_pair(processor, messages, CHOSEN, REJECTED)
    # GLM-4.1V's template renders an assistant content as given: a string there, parts elsewhere
    answer = {"role": "assistant", "content": CHOSEN} if family == "glm4v" else _assistant(CHOSEN)
    whole = own([*messages, answer])
    prompt = tok(split.prompt_text, add_special_tokens=False)["input_ids"]
    assert len(prompt) == split.prompt_tokens
    body = split.chosen
    if family == "gemma4":
        assert prompt == own(messages, add_generation_prompt=True)
        assert whole[-len(body) - 1:-1] == body and tok.decode(whole[-1]) == "\n"
    else:
        if len(whole) < len(prompt) + len(body):  # no end-of-turn token rendered: the split appended eos
            assert body[-1] == tok.eos_token_id
            body = body[:-1]
        assert prompt + body == whole[:len(prompt) + len(body)]
    assert split.chosen[-1] in tok.all_special_ids + [tok.convert_tokens_to_ids("<|im_end|>")]
    assert tok.decode(split.chosen, skip_special_tokens=True) == CHOSEN
    assert tok.decode(split.rejected, skip_special_tokens=True) == REJECTED
    if tok.bos_token:
        assert prompt.count(tok.bos_token_id) == 1


@pytest.mark.parametrize("options", [{}, {"enable_thinking": False}, {"enable_thinking": True}])
def test_qwen3_5_empty_thinking_block_is_prompt_not_response(tiny_model_dir, options):
    processor = AutoProcessor.from_pretrained(tiny_model_dir("qwen3_5"))
    split = split_pair(processor, conversation("hi", 0), CHOSEN, REJECTED, options)
    assert split.prompt_text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    for response in (split.chosen, split.rejected):
        assert "think>" not in processor.tokenizer.decode(response)


def test_gemma3_prompt_starts_with_one_bos(tiny_model_dir, pair_rows):
    """The template renders <bos> and the tokenizer would add another one."""
    processor = AutoProcessor.from_pretrained(tiny_model_dir("gemma3"))
    pair = PairEncoder(processor, max_length=512).encode(0, pair_rows[0])
    bos = processor.tokenizer.bos_token_id
    assert pair.prompt[0] == bos and pair.prompt[1] != bos
    assert processor(text=["<bos>hi"])["input_ids"][0][:2] == [bos, bos], "the check above can fail"


# a generation prompt ending with a space (Vicuna / LLaVA-1.5 style): " the" is one token across the boundary
SPACE_ENDED = (
    "{%- for m in messages -%}{{ m['role'] | upper + ': ' }}"
    "{%- for item in m['content'] -%}{%- if item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}{%- endfor -%}"
    "{%- if m['role'] == 'assistant' -%}{{ '<|im_end|>' }}{%- else -%}{{ ' ' }}{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'ASSISTANT: ' }}{%- endif -%}"
)


def test_gemma4_empty_thought_channel_belongs_to_the_prompt(tiny_model_dir):
    processor = AutoProcessor.from_pretrained(tiny_model_dir("gemma4"))
    tok = processor.tokenizer
    split = split_pair(processor, conversation("hi", 0), CHOSEN, REJECTED)
    assert split.prompt_text.endswith("<|turn>model\n<|channel>thought\n<channel|>")
    assert tok.decode(split.chosen) == CHOSEN + "<turn|>"
    thinking = split_pair(processor, conversation("hi", 0), CHOSEN, REJECTED, {"enable_thinking": True})
    assert thinking.prompt_text.endswith("<|turn>model\n") and "<|think|>" in thinking.prompt_text


@pytest.mark.parametrize("family", ["glm4v", "glm4v_moe"])
def test_a_turn_without_end_token_ends_with_eos(tiny_model_dir, family):
    """GLM-4.1V's and GLM-4.6V's templates end a turn with the next turn's header: the response gets the
    end-of-sequence token, so the SFT term teaches stopping. GLM-4.6V's empty thinking block is prompt, and
    GLM-4.1V's answer is rendered as a string (as parts, its template would render their Python repr)."""
    processor = AutoProcessor.from_pretrained(tiny_model_dir(family))
    tok = processor.tokenizer
    messages = conversation("What is 2 + 2?", 0)
    split = split_pair(processor, messages, CHOSEN, REJECTED)
    assert split.chosen[-1] == split.rejected[-1] == tok.eos_token_id
    assert tok.decode(split.chosen[:-1]) == CHOSEN and tok.decode(split.rejected[:-1]) == REJECTED
    answer = {"role": "assistant", "content": CHOSEN if family == "glm4v" else [{"type": "text", "text": CHOSEN}]}
    own = tok.apply_chat_template([*messages, answer], tokenize=True, return_dict=False)
    assert tok(split.prompt_text, add_special_tokens=False)["input_ids"] + split.chosen[:-1] == own
    if family == "glm4v_moe":
        assert split.prompt_text.endswith("<|assistant|>\n<think></think>\n")
    else:
        assert "'text'" in processor.apply_chat_template([*messages, _assistant(CHOSEN)], tokenize=False), \
            "the repr this test is about"


def test_a_token_across_the_boundary_stays_whole():
    tok = tiny_tokenizer(chat_template=SPACE_ENDED)
    chosen = "the answer is 3"
    split = split_pair(tok, conversation("hi", 0), chosen, REJECTED)
    whole = tok("USER: hi ASSISTANT: " + chosen + "<|im_end|>", add_special_tokens=False)["input_ids"]
    prompt = tok(split.prompt_text, add_special_tokens=False)["input_ids"]
    assert prompt + split.chosen == whole
    assert tok.decode(split.chosen[:1]) == " the" and split.prompt_text.endswith("ASSISTANT:")
    naive = tok("USER: hi ASSISTANT: ", add_special_tokens=False)["input_ids"] + tok(
        chosen + "<|im_end|>", add_special_tokens=False)["input_ids"]
    assert naive != whole, "tokenizing the two halves apart cuts the token"


def test_an_empty_response_is_its_end_token(tiny_model_dir):
    processor = AutoProcessor.from_pretrained(tiny_model_dir("qwen2_vl"))
    split = split_pair(processor, conversation("hi", 0), CHOSEN, "")
    assert processor.tokenizer.decode(split.rejected) == "<|im_end|>"


def test_a_template_that_changes_the_prompt_is_refused():
    tok = tiny_tokenizer(chat_template=SPACE_ENDED.replace("'ASSISTANT: '", "'BOT: '"))
    with pytest.raises(ValueError, match="cannot split prompt and response"):
        split_pair(tok, conversation("hi", 0), CHOSEN, REJECTED)


def test_a_prompt_that_would_merge_alone_ends_where_both_tokenizations_agree():
    """Alone, "ASSISTANT:\\n\\n" ends with one "\\n\\n" token; followed by text, the two newlines are two tokens.
    The prompt is tokenized alone again later (the processor expands its images), so it ends before them."""
    template = ("{%- for m in messages -%}{{ m['role'] | upper + ':\n\n' }}{%- for item in m['content'] -%}"
                "{{ item['text'] }}{%- endfor -%}{{ '<|im_end|>' }}{%- endfor -%}"
                "{%- if add_generation_prompt -%}{{ 'ASSISTANT:\n\n' }}{%- endif -%}")
    tok = tiny_tokenizer(chat_template=template, extra_corpus=("ASSISTANT:\n\n",) * 200)
    alone = tok("ASSISTANT:\n\n", add_special_tokens=False)["input_ids"]
    assert tok.decode(alone[-1:]) == "\n\n", "the merge this test is about"
    messages = conversation("hi", 0)
    split = split_pair(tok, messages, "The answer is 3", "no")
    prompt = tok(split.prompt_text, add_special_tokens=False)["input_ids"]
    own = tok.apply_chat_template([*messages, _assistant("The answer is 3")], tokenize=True, return_dict=False)
    assert prompt + split.chosen == own
    assert split.prompt_text.endswith("ASSISTANT:\n") and tok.decode(split.chosen[:1]) == "\n"
