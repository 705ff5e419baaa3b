"""``python -m mpo_train.convert_internvl SRC OUT [--to hf|original]``: InternVL2 / InternVL2.5 checkpoints between
the original remote-code layout and transformers' native InternVL layout.

Examples::

    # before training: the original checkpoint -> AutoModelForImageTextToText + AutoProcessor
    python -m mpo_train.convert_internvl ~/models/InternVL2-8B ~/models/InternVL2-8B-hf
    # after training: back to the layout VLMEvalKit, lmdeploy and vLLM load (remote code from the source)
    python -m mpo_train.convert_internvl runs/internvl2-8b-mpo/final ~/models/InternVL2-8B-MPO --to original \\
        --original-from ~/models/InternVL2-8B
"""

from __future__ import annotations

import argparse
import sys

from mmpr.cli import ArgumentParser
from mpo_train.convert_internvl import LayoutError, to_hf, to_original


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m mpo_train.convert_internvl", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="checkpoint folder to convert")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--to", choices=["hf", "original"], default="hf", help="target layout (default hf)")
    parser.add_argument("--original-from", help="with --to original: the original checkpoint whose config, remote "
                        "code and tokenizer files to use (default SRC/original_layout, written by --to hf)")
    parser.add_argument("--max-shard-gb", type=float, default=5.0, help="largest safetensors shard, GB")
    args = parser.parse_args(argv)
    shard = int(args.max_shard_gb * 1024**3)
    try:
        if args.to == "hf":
            out = to_hf(args.src, args.out, max_shard_bytes=shard)
        else:
            out = to_original(args.src, args.out, original_from=args.original_from, max_shard_bytes=shard)
    except (LayoutError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote the {args.to} layout to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
