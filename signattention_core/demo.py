"""Build the embedded demo run: demo corpus, trained model, extracted artifact.

    python -m signattention_core.demo [--seed 0] [--force]

Three stages, each skipped when its output already exists (unless --force):

1. `python -m signattention_core.corpus demo` writes the synthetic corpus to
   `data/demo-corpus/` (about 30 s, 1.1 GB, not committed).
2. `train.py` trains `configs/demo.json` on it into `runs/demo/`.
3. `extract.py` extracts the test split into `artifacts/demo/`, the run the
   dashboard opens by default.

Everything is deterministic for a seed on CPU, so a rebuilt artifact matches
the committed one up to its creation time.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = Path("data/demo-corpus")
DEFAULT_RUN = Path("runs/demo")
DEFAULT_ARTIFACT = Path("artifacts/demo")
DEFAULT_CONFIG = Path("configs/demo.json")


def build_demo(
    seed: int = 0,
    size: str = "default",
    corpus_dir: Path = DEFAULT_CORPUS,
    run_dir: Path = DEFAULT_RUN,
    artifact_dir: Path = DEFAULT_ARTIFACT,
    config: Path = DEFAULT_CONFIG,
    device: str = "cpu",
    force: bool = False,
    epochs: int | None = None,
) -> Path:
    """Build corpus, run and artifact; return the artifact folder.

    Paths are taken relative to the current directory, so that the run and the
    artifact record repository-relative corpus paths when called from the root.
    """
    from signattention_core.corpus.synthetic import write_demo_corpus
    from signattention_core.extraction import ExtractionConfig, extract
    from signattention_core.training import train

    started = time.perf_counter()

    # stage 1: the synthetic corpus
    if force or not (corpus_dir / "annotations.csv").is_file():
        print(f"[1/3] writing the demo corpus (seed {seed}, size {size}) to {corpus_dir}", flush=True)
        write_demo_corpus(corpus_dir, seed=seed, size=size, overwrite=True)
    else:
        print(f"[1/3] reusing the demo corpus in {corpus_dir}", flush=True)

    # stage 2: training
    if force or not (run_dir / "best.pt").is_file():
        print(f"[2/3] training {config} into {run_dir}", flush=True)
        if run_dir.exists():
            shutil.rmtree(run_dir)
        train(corpus_dir, config, run_dir, device=device, epochs=epochs)
    else:
        print(f"[2/3] reusing the trained run in {run_dir}", flush=True)

    # stage 3: extraction of the test split
    print(f"[3/3] extracting the test split into {artifact_dir}", flush=True)
    extract(ExtractionConfig(run_dir=run_dir, out_dir=artifact_dir, split="test", device=device,
                             force=True, corpus_dir=corpus_dir))

    minutes = (time.perf_counter() - started) / 60
    print(f"demo run ready in {minutes:.1f} min: streamlit run app", flush=True)
    return artifact_dir


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and build the demo run."""
    parser = argparse.ArgumentParser(
        prog="python -m signattention_core.demo",
        description="Build the demo corpus, train the demo configuration and extract its test split.",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic corpus (default 0)")
    parser.add_argument("--size", default="default", choices=("default", "small"),
                        help="demo corpus size; small trains in seconds but reaches no useful accuracy")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus folder to write or reuse")
    parser.add_argument("--run", type=Path, default=DEFAULT_RUN, help="training run folder to write or reuse")
    parser.add_argument("--out", type=Path, default=DEFAULT_ARTIFACT, help="artifact folder to write")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="training configuration file")
    parser.add_argument("--device", default="cpu",
                        help="auto, cpu, cuda, cuda:N or mps (default cpu, which is deterministic)")
    parser.add_argument("--epochs", type=int, default=None, help="override the configuration's epoch count")
    parser.add_argument("--force", action="store_true", help="rebuild every stage even when its output exists")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    build_demo(seed=args.seed, size=args.size, corpus_dir=args.corpus, run_dir=args.run, artifact_dir=args.out,
               config=args.config, device=args.device, force=args.force, epochs=args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
