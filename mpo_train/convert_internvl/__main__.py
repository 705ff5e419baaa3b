"""``python -m mpo_train.convert_internvl SRC OUT [--to hf|original]``: InternVL2 / InternVL2.5 checkpoints between
the original remote-code layout and transformers' native InternVL layout.

Examples::

    # before training: the original checkpoint -> AutoModelForImageTextToText + AutoProcessor
    python -m mpo_train.convert_internvl ~/models/InternVL2-8B ~/models/InternVL2-8B-hf
    # after training: back to the layout VLMEvalKit, lmdeploy and vLLM load (remote code from the source)
    python -m mpo_train.convert_internvl runs/internvl2-8b-mpo/final ~/models/InternVL2-8B-MPO --to original \\
        --original-from ~/models/InternVL2-8B

OUT must be new, empty, or hold an unfinished run of this same conversion; it may be neither SRC nor inside it.
Anything else needs --overwrite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmpr.cli import EXIT_CODES, ArgumentParser, add_output_arguments, front_door, quiet_logs
from mmpr.errors import UserError
from mmpr.locations import check_apart, check_out, claim, claimed_by, new_folder
from mpo_train.convert_internvl import LayoutError, to_hf, to_original

MARKER = ".convert_internvl.json"  # hidden: never copied along as a checkpoint file


@front_door
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m mpo_train.convert_internvl", description=__doc__, epilog=EXIT_CODES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="checkpoint folder to convert")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--to", choices=["hf", "original"], default="hf", help="target layout (default hf)")
    parser.add_argument("--original-from", help="with --to original: the original checkpoint whose config, remote "
                        "code and tokenizer files to use (default SRC/original_layout, written by --to hf)")
    parser.add_argument("--max-shard-gb", type=float, default=5.0, help="largest safetensors shard, GB")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    quiet_logs(args.verbose)
    shard = int(args.max_shard_gb * 1024**3)
    if not (Path(args.src) / "config.json").is_file():
        raise UserError(f"{args.src}: no config.json; give a checkpoint folder")
    check_apart(args.src, args.out, what_src="the checkpoint SRC", what_out="OUT")
    if args.original_from:
        check_apart(args.original_from, args.out, what_src="--original-from", what_out="OUT")
    job = {"src": str(Path(args.src).resolve()), "to": args.to, "max_shard_gb": args.max_shard_gb,
           "original_from": str(Path(args.original_from).resolve()) if args.original_from else None}
    check_out(args.out, marker="a conversion of this checkpoint", same_job=claimed_by(MARKER, job),
              overwrite=args.overwrite, what="OUT")
    try:
        with new_folder(args.out):
            claim(args.out, MARKER, job)
            if args.to == "hf":
                out = to_hf(args.src, args.out, max_shard_bytes=shard)
            else:
                out = to_original(args.src, args.out, original_from=args.original_from, max_shard_bytes=shard)
    except (LayoutError, FileNotFoundError) as e:
        raise UserError(str(e)) from e
    print(f"wrote the {args.to} layout to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
