"""Train a pose-to-gloss Transformer, evaluate a run, or import a study checkpoint.

    python train.py --corpus DIR --config FILE --out runs/NAME [--device auto|cpu|cuda|mps]
                    [--epochs N] [--resume] [--force]
    python train.py evaluate --run runs/NAME [--split test] [--decode greedy|beam --beam-size K]
    python train.py import-checkpoint STUDY.ckpt --out runs/NAME [--nhead H] [--force]

Several GPUs or machines: ``torchrun --nproc_per_node N train.py ...`` (the same arguments).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

SUBCOMMANDS = ("evaluate", "import-checkpoint")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        command, rest = argv[0], argv[1:]
    else:
        command, rest = "train", argv
    parser = {"train": _train_parser, "evaluate": _evaluate_parser,
              "import-checkpoint": _import_parser}[command]()
    args = parser.parse_args(rest)
    _configure_logging(args.verbose)

    # invalid input (ConfigError, CorpusError, CheckpointError, RunFolderError are all
    # ValueErrors) ends with its message and exit status 2 instead of a traceback
    try:
        if command == "train":
            return _run_train(args)
        if command == "evaluate":
            return _run_evaluate(args)
        return _run_import(args)
    except ValueError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train a model on a corpus folder, then evaluate the test split with the "
        "best checkpoint. Subcommands: " + ", ".join(SUBCOMMANDS) + " (see train.py SUBCOMMAND -h).",
    )
    parser.add_argument("--corpus", help="corpus folder (optional with --resume)")
    parser.add_argument("--config", help="training configuration, .json or .yaml "
                        "(optional with --resume)")
    parser.add_argument("--out", required=True, help="run folder to create, such as runs/NAME")
    _add_device(parser)
    parser.add_argument("--epochs", type=int, help="maximum number of epochs; overrides the config")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint.pt")
    parser.add_argument("--force", action="store_true",
                        help="delete an earlier run in --out before training")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    _add_verbose(parser)
    return parser


def _evaluate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train.py evaluate",
        description="Decode one split with a run's checkpoint; write metrics and translations "
        "into the run folder.",
    )
    parser.add_argument("--run", required=True, help="run folder")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--decode", default="greedy", choices=("greedy", "beam"))
    parser.add_argument("--beam-size", type=int, default=5, help="beams K for --decode beam")
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"),
                        help="best.pt (lowest validation loss) or checkpoint.pt (last epoch)")
    parser.add_argument("--corpus", help="corpus folder; default the one recorded in corpus.json")
    parser.add_argument("--batch-size", type=int, help="samples per decoding batch; "
                        "default the run's BATCH_SIZE")
    _add_device(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_verbose(parser)
    return parser


def _import_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train.py import-checkpoint",
        description="Convert a SignAttention study checkpoint (PyTorch Lightning .ckpt) into a "
        "run folder, reading it with a restricted unpickler.",
    )
    parser.add_argument("checkpoint", help="the study's .ckpt file")
    parser.add_argument("--out", required=True, help="run folder to create, such as runs/study_gsl")
    parser.add_argument("--nhead", type=int,
                        help="attention heads when the checkpoint's config has no NHEAD (default 8)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out folder")
    _add_verbose(parser)
    return parser


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")


def _configure_logging(verbose: bool) -> None:
    # under torchrun only rank 0 logs progress; the other ranks report warnings and errors
    rank = int(os.environ.get("RANK", "0") or 0)
    if verbose:
        level = logging.DEBUG
    elif rank == 0:
        level = logging.INFO
    else:
        level = logging.WARNING
    prefix = f"[rank {rank}] " if "RANK" in os.environ else ""
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s",
                        datefmt="%H:%M:%S")


def _run_train(args: argparse.Namespace) -> int:
    from signattention_core.training import train

    if not args.resume and (args.corpus is None or args.config is None):
        raise ValueError("--corpus and --config are required unless --resume continues a run")
    run_dir = train(
        args.corpus,
        args.config,
        args.out,
        device=args.device,
        resume=args.resume,
        force=args.force,
        epochs=args.epochs,
        progress=not args.no_progress,
    )
    if int(os.environ.get("RANK", "0") or 0) == 0:
        print(run_dir)
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from signattention_core.evaluation import evaluate_run

    metrics = evaluate_run(
        args.run,
        split=args.split,
        decode=args.decode,
        beam_size=args.beam_size,
        corpus_dir=args.corpus,
        device=args.device,
        batch_size=args.batch_size,
        which=args.checkpoint,
        progress=not args.no_progress,
    )
    print(
        f"{metrics['split']}: {metrics['n_samples']} samples, exact match {metrics['exact_match']:.3f}, "
        f"BLEU-1..4 {metrics['bleu_1']:.2f}/{metrics['bleu_2']:.2f}/{metrics['bleu_3']:.2f}/"
        f"{metrics['bleu_4']:.2f}, WER {metrics['wer']:.3f}, token accuracy "
        f"{metrics['token_accuracy']:.3f} ({metrics['tokenization']})"
    )
    return 0


def _run_import(args: argparse.Namespace) -> int:
    from signattention_core.checkpoint import import_study_checkpoint

    run_dir = import_study_checkpoint(args.checkpoint, args.out, nhead=args.nhead, overwrite=args.force)
    print(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
