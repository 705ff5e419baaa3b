import os
import socket

import pytest
import torch
import torch.distributed as dist
from transformers import AutoModelForImageTextToText, AutoProcessor

from mpo_train.data import PairEncoder
from mpo_train.forward import packed_logps
from mpo_train.saving import save_full_model


@pytest.fixture
def process_group():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_fsdp2_sharded_training_step_and_full_state_save(tiny_model_dir, pair_dataset, process_group, tmp_path):
    """A model sharded with FSDP2 (single process, CPU) scores as the unsharded one and trains through the packed
    forward, and the full state dict gathered from its shards (what accelerate's get_state_dict does under FSDP)
    saves a model that loads with from_pretrained, equals the sharded weights and generates."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    path = tiny_model_dir("qwen2_vl")
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)
    pairs = [PairEncoder(processor, max_length=512).encode(i, pair_dataset[i]) for i in range(2)]
    with torch.no_grad():
        unsharded = packed_logps(model, pairs)
    mesh = init_device_mesh("cpu", (1,))
    for layer in model.model.language_model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    assert isinstance(next(model.parameters()), DTensor)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    out = packed_logps(model, pairs)
    # the chunked head runs on the sharded model's gathered head, chunk by chunk: the same log-probs
    torch.testing.assert_close(out.chosen.detach(), unsharded.chosen, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.rejected.detach(), unsharded.rejected, atol=1e-5, rtol=1e-5)
    (out.chosen_nll - out.chosen.mean() + out.rejected.mean()).backward()
    optimizer.step()
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    assert not any(isinstance(v, DTensor) for v in state.values())
    save_full_model(model, processor, tmp_path / "final", state_dict=state)
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "final")
    original = AutoModelForImageTextToText.from_pretrained(path)
    changed = 0
    for name, param in loaded.named_parameters():
        torch.testing.assert_close(param, state[name])
        changed += not torch.equal(param, original.state_dict()[name])
    assert changed > 10, "the saved weights are the trained ones, not the initial ones or zeros"
    inputs = processor(text=["<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"], return_tensors="pt")
    generated = loaded.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 3
