"""Extract every attention weight of a trained run into a Parquet artifact folder.

    python extract.py --run runs/NAME --split test --out artifacts/NAME
    python extract.py --run runs/NAME --out artifacts/NAME --decode beam --beam-size 5
    torchrun --nproc_per_node 4 extract.py --run-dir runs/NAME --out artifacts/NAME

torchrun reads "--run" as an abbreviation of its own "--run-path", so
sharded runs spell the option "--run-dir".

docs/artifacts.md describes the folder column by column.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from signattention_core.artifacts import ArtifactError
from signattention_core.checkpoint import CheckpointError
from signattention_core.corpus import CorpusError
from signattention_core.extraction import CHECKPOINTS, DECODE_METHODS, ExtractionConfig, extract


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Decode a corpus split with a trained run, capture every attention weight in one "
            "teacher-forced pass per batch, and write them with alignment metrics as Parquet."
        )
    )

    # what to extract and where to write it
    parser.add_argument(
        "--run", "--run-dir", dest="run", required=True, type=Path,
        help="training run folder, e.g. runs/NAME (under torchrun spell it --run-dir)",
    )
    parser.add_argument("--out", required=True, type=Path, help="artifact folder to create, e.g. artifacts/NAME")
    parser.add_argument("--split", default="test", help="corpus split: train, val or test (default: test)")
    parser.add_argument(
        "--corpus", type=Path, default=None,
        help="corpus folder (default: the path in the run's corpus.json)",
    )
    parser.add_argument("--limit", type=int, default=None, help="extract only the first N samples of the split")
    parser.add_argument(
        "--checkpoint", default="best", choices=CHECKPOINTS,
        help="best (best.pt, lowest validation loss) or last (checkpoint.pt) (default: best)",
    )
    parser.add_argument("--force", action="store_true", help="replace the artifact folder if it exists")

    # decoding
    parser.add_argument("--decode", default="greedy", choices=DECODE_METHODS, help="decoding method (default: greedy)")
    parser.add_argument("--beam-size", type=int, default=5, help="beams per sample with --decode beam (default: 5)")
    parser.add_argument(
        "--length-penalty", type=float, default=0.0,
        help="GNMT length penalty exponent for beam search; 0 turns it off (default: 0)",
    )
    parser.add_argument(
        "--max-len", type=int, default=None,
        help="maximum decoding steps per sample, EOS included (default: the run's max_tokens + 1)",
    )

    # how to run
    parser.add_argument("--batch-size", type=int, default=32, help="samples per batch and process (default: 32)")
    parser.add_argument(
        "--device", default="auto",
        help="auto, cpu, cuda, cuda:N or mps (default: auto picks CUDA, then MPS, then the CPU)",
    )
    parser.add_argument(
        "--batched-encoder", action="store_true",
        help=(
            "capture the encoder for the whole padded batch at once instead of one sample at a time; "
            "faster on a GPU, but float32 rounding then makes sharp weights depend on the batch by up to about 1e-5"
        ),
    )
    parser.add_argument(
        "--no-poses", action="store_true",
        help="do not store body and hand keypoints in the artifact; the pose player then reads the corpus folder",
    )
    parser.add_argument("--quiet", action="store_true", help="log warnings only and hide the progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = ExtractionConfig(
            run_dir=args.run,
            out_dir=args.out,
            split=args.split,
            decode=args.decode,
            beam_size=args.beam_size,
            length_penalty=args.length_penalty,
            max_len=args.max_len,
            batch_size=args.batch_size,
            device=args.device,
            force=args.force,
            corpus_dir=args.corpus,
            limit=args.limit,
            checkpoint=args.checkpoint,
            encoder_per_sample=not args.batched_encoder,
            progress=not args.quiet,
            store_poses=not args.no_poses,
        )
        out_dir = extract(config)
    except (ArtifactError, CheckpointError, CorpusError, OSError, ValueError) as error:
        print(f"extract.py: error: {error}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":
        print(out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
