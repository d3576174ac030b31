"""Run the whole pipeline on real signer recordings and print what it measures.

    python benchmarks/real_signers.py --real DIR [--work DIR] [--epochs N]

DIR is a folder with the real recordings (asl-isolated-signs, sgg-lexicon,
phoenix14t-skels, phoenix14t-pose, signbridge-asl-sentences). For each source
the script imports the recordings into a corpus, validates it, trains a small
model, extracts an artifact and reports samples, training time, exact-match
rate, band diagonality and gold mass. The point is that real files (pixel
coordinates, masked hands, 576- and 178-point layouts, 20-30 fps) pass through
every stage. These corpora are far too small for the scores to mean much,
except on the sentences composed from isolated signs, whose gold spans are exact.

The single PHOENIX `.pose` sample is too small to train on, so it is extracted
with the model trained on the PHOENIX skeleton files.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# run as a script from anywhere: the package sits in the repository root
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signattention_core.artifacts import HEAD_MEAN, Artifact  # noqa: E402
from signattention_core.corpus.importers import import_pose_folder, import_skels  # noqa: E402
from signattention_core.corpus.lexicon import ConcatConfig, write_concat_corpus  # noqa: E402
from signattention_core.corpus.validate import validate_corpus  # noqa: E402

# a small configuration that trains in about a minute per source on 2 CPU cores
REAL_CONFIG: dict = {
    "BATCH_SIZE": 16,
    "SAMPLE_RATE": 2,
    "MAX_FRAMES": 220,
    "MAX_TOKENS": 20,
    "LANDMARKS_USED": ["body", "lhand", "rhand"],
    "D_MODEL": 32,
    "NHEAD": 4,
    "DIM_FEEDFORWARD": 64,
    "DROPOUT": 0.1,
    "LR": 0.002,
    "EPOCHS": 60,
    "PATIENCE": 15,
    "SEED": 0,
    "NORMALIZE": "shoulders",
}


@dataclass
class SourceResult:
    """Figures of one source's pass through import, training and extraction."""

    name: str  # source label
    corpus_dir: Path  # imported corpus folder
    artifact_dir: Path  # extracted artifact folder
    n_samples: int  # samples in the corpus
    split: str  # split that was extracted
    n_extracted: int  # samples in the artifact
    train_seconds: float | None  # wall time of training; None when the model came from another source
    exact_match: float  # exact-match rate of the extracted split, 0-1
    band_diagonality: float | None  # mean over samples, layer 0, mean over heads; None when no sample has a row
    gold_mass: float | None  # mean over samples with gold spans, None without any
    extras: dict = field(default_factory=dict)  # anything else worth printing


def write_signbridge_table(source: Path, table: Path) -> None:
    """Write the CSV of ids, glosses and automatic gloss spans for the signbridge sentences."""
    segments = json.loads((source / "segments.json").read_text(encoding="utf-8"))
    with table.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "path", "gloss", "text", "gloss_spans"])
        for sample_id, entry in sorted(segments.items()):
            glosses = [segment["gloss_top1"].upper() for segment in entry["segments"]]
            spans = [[segment["start_frame"], segment["end_frame_exclusive"]] for segment in entry["segments"]]
            writer.writerow([sample_id, f"{sample_id}/capture.pose", " ".join(glosses),
                             entry["reference_sentence"], json.dumps(spans)])


def import_sources(real: Path, work: Path, asl_sentences: int = 60) -> dict[str, Path]:
    """Import every real source into a corpus folder under `work`; return name -> corpus folder."""
    corpora = {
        "asl-concat": work / "corpora" / "asl-concat",
        "sgg-concat": work / "corpora" / "sgg-concat",
        "phoenix14t-skels": work / "corpora" / "phoenix14t-skels",
        "phoenix14t-pose": work / "corpora" / "phoenix14t-pose",
        "signbridge": work / "corpora" / "signbridge",
    }
    write_concat_corpus(real / "asl-isolated-signs", corpora["asl-concat"],
                        ConcatConfig(seed=0, n_sentences=asl_sentences, min_length=2, max_length=4, renditions=5),
                        overwrite=True)
    write_concat_corpus(real / "sgg-lexicon", corpora["sgg-concat"],
                        ConcatConfig(seed=0, n_sentences=12, min_length=1, max_length=3, renditions=5),
                        overwrite=True)
    import_skels(real / "phoenix14t-skels", corpora["phoenix14t-skels"], overwrite=True)
    phoenix = real / "phoenix14t-pose"
    import_pose_folder(phoenix / "PHOENIX-2014-T.train.corpus.csv", phoenix, corpora["phoenix14t-pose"],
                       split_fractions=(1, 0, 0), overwrite=True)
    table = work / "signbridge.csv"
    write_signbridge_table(real / "signbridge-asl-sentences", table)
    import_pose_folder(table, real / "signbridge-asl-sentences", corpora["signbridge"], overwrite=True)

    for name, corpus_dir in corpora.items():
        report = validate_corpus(corpus_dir, check_poses=True)
        if not report.ok:
            raise RuntimeError(f"the imported {name} corpus does not validate:\n{report.format()}")
    return corpora


def summarize_artifact(artifact_dir: Path) -> dict:
    """Return exact match, band diagonality and gold mass of an artifact (layer 0, mean over heads)."""
    artifact = Artifact.open(artifact_dir)
    samples = artifact.samples(columns=["exact_match"])
    metrics = artifact.metrics(layer=0, head=HEAD_MEAN)
    band = metrics["band_diagonality"].dropna()
    gold = metrics["gold_mass"].dropna()
    return {
        "n_extracted": len(samples),
        "exact_match": float(samples["exact_match"].mean()),
        "band_diagonality": float(band.mean()) if len(band) else None,
        "gold_mass": float(gold.mean()) if len(gold) else None,
    }


# split extracted per source: the four signbridge sentences leave one test sample,
# so their two training samples show the gold-span overlay better
EXTRACTED_SPLIT = {"signbridge": "train"}


def run_sources(real: Path, work: Path, epochs: int | None = None, asl_sentences: int = 60) -> list[SourceResult]:
    """Import, validate, train, extract and summarise every source; return their figures."""
    from signattention_core.corpus import Corpus
    from signattention_core.extraction import ExtractionConfig, extract
    from signattention_core.training import train

    corpora = import_sources(real, work, asl_sentences)
    config = dict(REAL_CONFIG)
    if epochs is not None:
        config["EPOCHS"] = epochs

    results = []
    runs: dict[str, Path] = {}
    for name, corpus_dir in corpora.items():
        n_samples = len(Corpus.open(corpus_dir))
        train_seconds = None
        if name == "phoenix14t-pose":
            run_dir, split = runs["phoenix14t-skels"], "train"
        else:
            run_dir, split = work / "runs" / name, EXTRACTED_SPLIT.get(name, "test")
            started = time.perf_counter()
            train(corpus_dir, config, run_dir, device="cpu", force=True, progress=False)
            train_seconds = time.perf_counter() - started
            runs[name] = run_dir
        artifact_dir = work / "artifacts" / name
        extract(ExtractionConfig(run_dir=run_dir, out_dir=artifact_dir, split=split, device="cpu", force=True,
                                 corpus_dir=corpus_dir, progress=False))
        figures = summarize_artifact(artifact_dir)
        results.append(SourceResult(name=name, corpus_dir=corpus_dir, artifact_dir=artifact_dir,
                                    n_samples=n_samples, split=split, train_seconds=train_seconds, **figures))
    return results


def format_results(results: list[SourceResult]) -> str:
    """Format the figures as a Markdown table."""
    lines = [
        "| source | samples | extracted split | training time (s) | exact match | band diagonality | gold mass |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        seconds = "-" if result.train_seconds is None else f"{result.train_seconds:.0f}"
        gold = "-" if result.gold_mass is None else f"{result.gold_mass:.3f}"
        band = "-" if result.band_diagonality is None else f"{result.band_diagonality:.3f}"
        lines.append(f"| {result.name} | {result.n_samples} | {result.split} ({result.n_extracted}) | {seconds} | "
                     f"{result.exact_match:.2f} | {band} | {gold} |")
    return "\n".join(lines)


def main() -> None:
    """Parse the command line, run every source and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, required=True, help="folder with the real recordings")
    parser.add_argument("--work", type=Path, default=Path("build/real-signers"),
                        help="folder for corpora, runs and artifacts (default build/real-signers)")
    parser.add_argument("--epochs", type=int, default=None, help="override the epoch cap of every run")
    parser.add_argument("--asl-sentences", type=int, default=60,
                        help="distinct sentences composed from the ASL signs, 5 renditions each (default 60)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    started = time.perf_counter()
    results = run_sources(args.real, args.work, args.epochs, args.asl_sentences)
    print(format_results(results))
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s; artifacts in {args.work / 'artifacts'}")


if __name__ == "__main__":
    main()
