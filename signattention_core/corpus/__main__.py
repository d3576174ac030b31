"""Command line for corpus folders: validate, demo and the importers.

    python -m signattention_core.corpus validate DIR
    python -m signattention_core.corpus demo --out DIR [--seed N] [--size SIZE] [--overwrite]
    python -m signattention_core.corpus import-gsl --annotations DIR --poses DIR --split si|sd --out DIR
    python -m signattention_core.corpus import-pose-folder CSV POSES OUT
    python -m signattention_core.corpus import-skels DIR OUT
    python -m signattention_core.corpus concat LEXICON OUT

Exit status: 0 on success, 1 when the corpus or the input is unusable, 2 on
invalid arguments, 130 when interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from signattention_core.corpus.layout import CorpusError

logger = logging.getLogger("signattention_core.corpus")


def _validate(args: argparse.Namespace) -> int:
    from signattention_core.corpus.validate import validate_corpus

    report = validate_corpus(args.dir, check_poses=not args.skip_poses)
    print(report.format())
    return 0 if report.ok else 1


def _demo(args: argparse.Namespace) -> int:
    from signattention_core.corpus.synthetic import write_demo_corpus

    options = {"seed": args.seed, "overwrite": args.overwrite}
    if args.size is not None:
        options["size"] = args.size
    write_demo_corpus(args.out, **options)
    print(f"wrote demo corpus {args.out}")
    return 0


def _import_gsl(args: argparse.Namespace) -> int:
    from signattention_core.corpus.gsl import GslImportError, import_gsl

    try:
        report = import_gsl(args.annotations, args.poses, args.out, split=args.split,
                            allow_missing=args.allow_missing, overwrite=args.overwrite)
    except GslImportError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if report.missing_ids:
        print(f"dropped {len(report.missing_ids)} of {report.n_rows} samples that have no pose file "
              f"(--allow-missing); the full list is in {report.missing_list}")
    print(f"wrote {len(report.samples)} samples to {report.out_dir}; "
          f"check the pose files with: python -m signattention_core.corpus validate {report.out_dir}")
    return 0


def _import_pose_folder(args: argparse.Namespace) -> int:
    from signattention_core.corpus.importers import import_pose_folder

    samples = import_pose_folder(args.csv, args.poses, args.out, name=args.name,
                                 split_fractions=args.split_fractions, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {len(samples)} samples to {args.out}")
    return 0


def _import_skels(args: argparse.Namespace) -> int:
    from signattention_core.corpus.importers import import_skels

    samples = import_skels(args.dir, args.out, name=args.name, fps=args.fps, overwrite=args.overwrite)
    print(f"wrote {len(samples)} samples to {args.out}")
    return 0


def _concat(args: argparse.Namespace) -> int:
    from signattention_core.corpus.lexicon import ConcatConfig, write_concat_corpus

    try:
        config = ConcatConfig(
            seed=args.seed, n_sentences=args.n_sentences, min_length=args.lengths[0], max_length=args.lengths[1],
            renditions=args.renditions, fps=args.fps, speed_range=args.speed, amplitude_range=args.amplitude,
        )
    except ValueError as error:
        print(f"concat: {error}", file=sys.stderr)
        return 2
    samples = write_concat_corpus(args.lexicon, args.out, config, name=args.name, overwrite=args.overwrite)
    print(f"wrote {len(samples)} samples to {args.out}")
    return 0


def _fractions(value: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(part) for part in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{value!r} is not three comma-separated numbers such as 0.8,0.1,0.1")
    return parts


def _number_range(kind: type) -> Callable[[str], tuple]:
    """Return an argparse type that reads `LOW-HIGH` (or one number, meaning LOW = HIGH)."""

    def parse(value: str) -> tuple:
        low, _, high = value.partition("-")
        try:
            bounds = (kind(low), kind(high or low))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a range such as 2-5") from None
        if bounds[0] > bounds[1]:
            raise argparse.ArgumentTypeError(f"range {value!r} runs backwards; write it as LOW-HIGH")
        return bounds

    return parse


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with one subcommand per action."""
    parser = argparse.ArgumentParser(prog="python -m signattention_core.corpus",
                                     description="Validate, create and import corpus folders.")
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check a corpus folder and list every problem")
    validate.add_argument("dir", type=Path, help="corpus folder (contains metadata.json and annotations.csv)")
    validate.add_argument("--skip-poses", action="store_true",
                          help="check that pose files exist but do not read them")
    validate.set_defaults(handler=_validate)

    demo = commands.add_parser("demo", help="write the synthetic demo corpus")
    demo.add_argument("out_positional", nargs="?", type=Path, metavar="DIR", help="folder to create (same as --out)")
    demo.add_argument("--out", type=Path, default=None, metavar="DIR", help="folder to create")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--size", default=None,
                      help="corpus size preset: 'default' (about 1,600 samples) or 'small' (72 samples, for tests)")
    demo.add_argument("--overwrite", action="store_true", help="replace an existing demo corpus folder")
    demo.set_defaults(handler=_demo)

    gsl = commands.add_parser("import-gsl", help="import the GSL continuous dataset from its split files")
    gsl.add_argument("--annotations", type=Path, required=True,
                     help="folder with annotations.csv and the gsl_split_SI_*/GSL_SD_* split files")
    gsl.add_argument("--poses", type=Path, default=None,
                     help="folder with <scenario>/<scenario>_signerK_repR_sentences/sentencesNNNN.npy or .pose")
    gsl.add_argument("--split", choices=("si", "sd"), default="si",
                     help="si: signer-independent split; sd: unseen-sentence split (default si)")
    gsl.add_argument("--out", type=Path, required=True, help="corpus folder to create")
    gsl.add_argument("--allow-missing", action="store_true", help="drop samples that have no pose file")
    gsl.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    gsl.set_defaults(handler=_import_gsl)

    folder = commands.add_parser("import-pose-folder", help="import .pose files listed in a CSV")
    folder.add_argument("csv", type=Path, help="CSV listing the samples")
    folder.add_argument("poses", type=Path, help="folder with the .pose files")
    folder.add_argument("out", type=Path, help="corpus folder to create")
    folder.add_argument("--name", default=None, help="corpus name (default: the output folder name)")
    folder.add_argument("--split-fractions", type=_fractions, default=(0.8, 0.1, 0.1),
                        help="train,val,test fractions for rows without a split (default 0.8,0.1,0.1)")
    folder.add_argument("--seed", type=int, default=0, help="seed of the split assignment (default 0)")
    folder.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    folder.set_defaults(handler=_import_pose_folder)

    skels = commands.add_parser("import-skels", help="import a Progressive Transformers .skels folder")
    skels.add_argument("dir", type=Path, help="folder with train/dev/test .skels, .gloss, .text, .files")
    skels.add_argument("out", type=Path, help="corpus folder to create")
    skels.add_argument("--name", default=None, help="corpus name (default: the output folder name)")
    skels.add_argument("--fps", type=float, default=25.0, help="frame rate of the skeletons (default 25)")
    skels.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    skels.set_defaults(handler=_import_skels)

    concat = commands.add_parser("concat", help="compose sentences from an isolated-sign lexicon")
    concat.add_argument("lexicon", type=Path, help="lexicon folder")
    concat.add_argument("out", type=Path, help="corpus folder to create")
    concat.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    concat.add_argument("--n-sentences", type=int, default=40, help="distinct sentences to compose (default 40)")
    concat.add_argument("--lengths", type=_number_range(int), default=(2, 5), metavar="MIN-MAX",
                        help="glosses per sentence, inclusive range (default 2-5)")
    concat.add_argument("--renditions", type=int, default=4,
                        help="performances per sentence, each with its own speed and amplitude (default 4)")
    concat.add_argument("--speed", type=_number_range(float), default=(0.8, 1.25), metavar="LOW-HIGH",
                        help="playback speed factor drawn per sign and rendition (default 0.8-1.25)")
    concat.add_argument("--amplitude", type=_number_range(float), default=(0.85, 1.15), metavar="LOW-HIGH",
                        help="scale of arm and hand movement drawn per rendition (default 0.85-1.15)")
    concat.add_argument("--fps", type=float, default=30.0, help="frame rate every sign is resampled to (default 30)")
    concat.add_argument("--name", default=None, help="corpus name (default: the output folder name)")
    concat.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    concat.set_defaults(handler=_concat)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.out is not None and args.out_positional is not None:
            parser.error("demo takes the folder either as DIR or as --out DIR, not both")
        args.out = args.out or args.out_positional
        if args.out is None:
            parser.error("demo needs the folder to create: --out DIR")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except (CorpusError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # every writer here builds its output in a temporary folder, which is removed on the way out
        print("interrupted; the output folder was not written or changed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
