"""``python -m mpo_train --config recipe.yaml [key=value ...] [--key value ...]``: MPO training.

Every setting is a key of the recipe, also given as ``key=value`` (dotted for a group: ``lora.r=8``) or as a
flag named by the key (``--learning-rate 1e-6``, ``--no-gradient-checkpointing``); the command line wins over the
recipe; a key is given one way or the other, not both.

Examples::

    # this machine, no GPU: the tiny recipe on a dataset built by `python -m mmpr.build`
    python -m mpo_train --config mpo_train/recipes/tiny_cpu.yaml data=[runs/demo] output_dir=runs/mpo-demo
    # 8 GPUs, the paper's InternVL2-8B recipe under DeepSpeed ZeRO-1
    accelerate launch --config_file mpo_train/accelerate/zero1.yaml -m mpo_train \\
        --config mpo_train/recipes/internvl2_8b_mpo.yaml data=[OpenGVLab/MMPR-v1.1]

A killed run resumes from its latest checkpoint when started again with the same output_dir; an output_dir that
holds another run (other settings) or anything else needs --overwrite. Library and engine logs go to
<output_dir>/train.log (or stderr with --verbose).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mmpr.cli import EXIT_CODES, ArgumentParser, add_output_arguments, front_door, quiet_logs
from mmpr.errors import UserError
from mmpr.locations import check_inputs_apart, check_location, check_out, check_same_settings, new_folder
from mmpr.model_ref import check_model, resolve_model
from mmpr.release import read_meta, repeat_warning
from mmpr.settings import add_field_flags, config_keys_help
from mpo_train.config import TrainConfig, load_config

RUN_CONFIG = "train_config.json"
# the keys with a flag: all but the groups and mappings, which key=value and the recipe set
FLAG_FIELDS = tuple(name for name in TrainConfig.model_fields if name not in ("lora", "chat_template_options"))
BEFORE_TRAINING = {RUN_CONFIG, "train.log", "skipped.json", "cache"}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m mpo_train", description=__doc__,
                            epilog=f"{config_keys_help(TrainConfig, title='keys (recipe YAML or key=value)')}"
                                   f"\n\n{EXIT_CODES}",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML recipe (see mpo_train/recipes/)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="settings over the recipe, e.g. learning_rate=1e-6 lora.r=8 data=[a,b]")
    add_output_arguments(parser)
    add_field_flags(parser.add_argument_group("settings as flags (each a key above)"), TrainConfig, *FLAG_FIELDS)
    return parser


def trained(output_dir: Path) -> bool:
    """``output_dir`` holds more than what a run writes before its first step (settings, log, skip report, data
    cache): checkpoints, metrics, probes, the model."""
    return any(p.name not in BEFORE_TRAINING for p in Path(output_dir).iterdir())


def check_attention(model: str, name: str) -> None:
    """An attention backend the model's transformers class does not support, or one whose package (or GPU) is
    missing, is refused here, before any data is prepared (what each backend needs: :mod:`mpo_train.attention`)."""
    from mpo_train.attention import backend

    needs = backend(name)
    if needs.installed:
        import transformers.utils

        if not getattr(transformers.utils, needs.installed, lambda: False)():
            raise UserError(f"attn_implementation={name}: its package is not installed or there is no GPU for it; "
                            f"install it, or use attn_implementation=sdpa")
    if needs.support_flag is None:
        return
    import transformers
    from transformers import AutoConfig, AutoModelForImageTextToText

    try:
        cls = AutoModelForImageTextToText._model_mapping[type(AutoConfig.from_pretrained(resolve_model(model)))]
    except (OSError, ValueError, KeyError):  # remote code or an unknown family: the model load reports it
        return
    if not getattr(cls, needs.support_flag, True):
        raise UserError(f"attn_implementation={name}: {cls.__name__} does not support it in transformers "
                        f"{transformers.__version__}; use attn_implementation=sdpa or eager")


def check_inputs(cfg: TrainConfig, *, overwrite: bool) -> None:
    """Model, data and output_dir are checked before anything is loaded: local paths as paths, then the Hub;
    an output_dir holding another run is refused unless ``overwrite``."""
    check_model(cfg.model, flag="model")
    check_attention(cfg.model, cfg.attn_implementation)
    for location in cfg.data:
        check_location(location, "data")
        release = Path(location).expanduser()
        if (release / "meta.json").is_file():  # a release is read with its repeat_time applied
            warning = repeat_warning(read_meta(release, subsets=cfg.subsets), fix="convert it with python -m "
                                     "mmpr.convert --no-repeat to train on every row once")
            if warning:
                print(f"warning: data {location}: {warning}", file=sys.stderr, flush=True)
    if os.environ.get("RANK", "0") != "0":  # under accelerate launch the first process alone looks after output_dir
        return
    settings = cfg.model_dump(mode="json", exclude={"output_dir"})
    out = Path(cfg.output_dir)
    check_inputs_apart(out, [("model", cfg.model), *(("data", d) for d in cfg.data)], what_out="output_dir")
    if overwrite:  # start over: whatever the folder holds goes
        check_out(out, marker="a training run", same_job=lambda _: False, overwrite=True, what="output_dir")
        return
    check_out(out, marker="a training run", same_job=lambda o: (o / RUN_CONFIG).is_file(), overwrite=False,
              what="output_dir")
    recorded = out / RUN_CONFIG
    if recorded.is_file():
        check_same_settings(json.loads(recorded.read_text()), settings, where=f"output_dir {out}", what="a run",
                            out_flag="output_dir")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The recipe, its ``key=value`` overrides and the flags given in ``args`` (from :func:`build_parser`)."""
    return load_config(args.config, args.overrides,
                       flags={name: value for name in FLAG_FIELDS if (value := getattr(args, name)) is not None})


@front_door
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    cfg = config_from_args(args)
    quiet_logs(args.verbose)
    check_inputs(cfg, overwrite=args.overwrite)
    quiet_logs(args.verbose, Path(cfg.output_dir) / "train.log")  # after the folder check: a refused one gets no log
    from mmpr.io import atomic_write_text
    from mpo_train.trainer import Trainer

    # a run refused on its input (0 usable pairs, a bad column) leaves no folder; a killed one keeps its checkpoints,
    # and one that trained keeps everything it wrote, whatever fails after
    with new_folder(cfg.output_dir, only=UserError, unless=trained):
        if os.environ.get("RANK", "0") == "0":
            atomic_write_text(Path(cfg.output_dir) / RUN_CONFIG,
                              json.dumps(cfg.model_dump(mode="json", exclude={"output_dir"}), indent=2) + "\n")
        result = Trainer(cfg).train()
    print(f"trained {result.steps} steps; model in {result.final_dir}; metrics in {cfg.output_dir}/metrics.jsonl, "
          f"curves in {cfg.output_dir}/training_curves.png")
    if result.eval_metrics:
        print("held out: " + ", ".join(f"{k} {v:.4f}" for k, v in result.eval_metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
