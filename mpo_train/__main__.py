"""``python -m mpo_train --config recipe.yaml [key=value ...]``: MPO training.

Examples::

    # this machine, no GPU: the tiny recipe on a dataset built by `python -m mmpr.build`
    python -m mpo_train --config mpo_train/recipes/tiny_cpu.yaml data=[runs/demo] output_dir=runs/mpo-demo
    # 8 GPUs, the paper's InternVL2-8B recipe under DeepSpeed ZeRO-1
    accelerate launch --config_file mpo_train/accelerate/zero1.yaml -m mpo_train \\
        --config mpo_train/recipes/internvl2_8b_mpo.yaml data=[OpenGVLab/MMPR-v1.1]

A killed run resumes from its latest checkpoint when started again with the same output_dir.
"""

from __future__ import annotations

import argparse
import logging
import sys

from mpo_train.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpo_train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML recipe (see mpo_train/recipes/)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="settings over the recipe, e.g. learning_rate=1e-6 lora.r=8 data=[a,b]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.overrides)
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from mpo_train.trainer import Trainer

    try:
        result = Trainer(cfg).train()
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"trained {result.steps} steps; model in {result.final_dir}; metrics in {cfg.output_dir}/metrics.jsonl, "
          f"curves in {cfg.output_dir}/training_curves.png")
    if result.eval_metrics:
        print("held out: " + ", ".join(f"{k} {v:.4f}" for k, v in result.eval_metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
