"""Saving a trained model so that ``from_pretrained`` loads it: full weights, whatever the sharding was."""

from __future__ import annotations

from pathlib import Path


def save_full_model(model, processor, folder: Path, *, state_dict: dict, is_main_process: bool = True,
                    save_function=None, lora_merged: bool = False) -> Path:
    """Write ``model`` with ``state_dict`` (full tensors, gathered from ZeRO-3 / FSDP shards by the caller) and the
    processor to ``folder``. A peft model keeps its adapter in ``folder/adapter``; with ``lora_merged`` the merged
    full model goes to ``folder`` too."""
    folder = Path(folder)
    if hasattr(model, "peft_config"):
        model.save_pretrained(folder / "adapter", state_dict=state_dict, is_main_process=is_main_process)
        if lora_merged and is_main_process:
            model.merge_and_unload().save_pretrained(folder)
    else:
        kwargs = {"save_function": save_function} if save_function is not None else {}
        model.save_pretrained(folder, state_dict=state_dict, is_main_process=is_main_process, **kwargs)
    if is_main_process:
        processor.save_pretrained(folder)
    return folder
