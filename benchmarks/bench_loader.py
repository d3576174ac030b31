"""Measure how fast the dataset reads and transforms poses, against plain numpy.load.

Three paths over the same samples, each timed after one warm-up pass so
that the files are in the page cache:

1. `numpy.load` of every pose file, nothing else (the floor);
2. `SignDataset.__getitem__`: `Corpus.load_pose`, the study's transforms
   (training-time random sampling for the train split) and tensor conversion;
3. the same through `make_loader` with `collate` (batch 64, no workers).

By default it writes the demo corpus into a temporary folder; `--corpus DIR`
measures an existing corpus instead.

    python benchmarks/bench_loader.py [--corpus DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

# run from a checkout without installing the package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signattention_core.corpus import Corpus  # noqa: E402
from signattention_core.dataset import SignDataset, fit_tokenizer, make_loader  # noqa: E402
from signattention_core.transforms import TransformConfig  # noqa: E402

BATCH_SIZE = 64


def write_demo(folder: Path) -> Path:
    """Write the default demo corpus into `folder` and return its root."""
    try:
        from signattention_core.corpus.synthetic import write_demo_corpus
    except ImportError as exc:
        sys.exit(f"cannot write the demo corpus ({exc}); pass --corpus DIR to measure an existing corpus")
    root = folder / "demo"
    write_demo_corpus(root, seed=0, size="default")
    return root


def time_median(run: Callable[[], int], repeats: int) -> tuple[float, int]:
    """Run once to warm up, then `repeats` times, and return the median seconds and the sample count."""
    count = run()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="corpus folder to read (default: write the demo corpus)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per path; the median is reported")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory(prefix="bench-loader-") as scratch:
        root = args.corpus if args.corpus else write_demo(Path(scratch))
        corpus = Corpus.open(root)
        config = TransformConfig()
        tokenizer = fit_tokenizer(corpus)
        datasets = [
            SignDataset(corpus, split, tokenizer, config, train=(split == "train"), seed=0)
            for split in ("train", "val", "test")
            if corpus.split(split)
        ]
        samples = [sample for dataset in datasets for sample in dataset.samples]
        paths = [corpus.pose_path(sample.id) for sample in samples]
        not_npy = [path for path in paths if path.suffix != ".npy"]
        if not_npy:
            sys.exit(f"{len(not_npy)} pose files are not .npy (first: {not_npy[0]}); "
                     "numpy.load cannot read them, so the comparison is not possible on this corpus")
        if not samples:
            sys.exit(f"corpus {root} has no sample with a pose file")

        def read_plain() -> int:
            for path in paths:
                np.load(path)
            return len(paths)

        def read_dataset() -> int:
            total = 0
            for dataset in datasets:
                for index in range(len(dataset)):
                    dataset[index]
                    total += 1
            return total

        def read_loader() -> int:
            total = 0
            for dataset in datasets:
                for batch in make_loader(dataset, BATCH_SIZE, shuffle=False, seed=0):
                    total += len(batch)
            return total

        plain_s, n_samples = time_median(read_plain, args.repeats)
        dataset_s, _ = time_median(read_dataset, args.repeats)
        loader_s, _ = time_median(read_loader, args.repeats)
        mean_frames = statistics.mean(np.load(path, mmap_mode="r").shape[0] for path in paths)

    plain_rate, dataset_rate, loader_rate = n_samples / plain_s, n_samples / dataset_s, n_samples / loader_s
    label = root if args.corpus else "demo corpus (size default, seed 0)"
    print(f"corpus: {label}, {n_samples} samples, mean {mean_frames:.0f} frames")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads 1, "
          f"Python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}")
    print(f"median of {args.repeats} passes after one warm-up pass")
    print(f"numpy.load only:                  {plain_rate:10.0f} samples/s")
    print(f"SignDataset (load + transforms):  {dataset_rate:10.0f} samples/s  "
          f"({dataset_rate / plain_rate:.2f}x numpy.load)")
    print(f"make_loader (+ collate, batch {BATCH_SIZE}): {loader_rate:10.0f} samples/s  "
          f"({loader_rate / plain_rate:.2f}x numpy.load)")


if __name__ == "__main__":
    main()
