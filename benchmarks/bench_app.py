"""Dashboard speed on a large run: page data loads and sample switches, cold and warm.

Builds a synthetic artifact of GSL-like size (10,000 samples by default: about
100 frames and 4 glosses per sample, 1 encoder and 1 decoder layer, 8 heads,
every 3rd frame kept) with the real ArtifactWriter, then times

- each page's data loading through `app.data` (the functions the pages call),
  cold (every Streamlit cache cleared; the operating system's file cache may
  still hold the files) and warm (the same call again);
- a sample switch: reading a sample's attention and stored pose with the
  run's tables already cached (new sample), and again (repeat);
- optionally (`--render`) each page's full script run under AppTest, which
  adds building the Altair charts and sending them.

Goals: a sample switch under 300 ms warm, each aggregate page's data under
2 s cold. The script prints figures and ratios to those goals; it asserts
nothing.

    python benchmarks/bench_app.py [--samples 10000] [--out DIR] [--render]
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from signattention_core.artifacts import ArtifactWriter, SampleRecord  # noqa: E402

SAMPLE_GOAL_S = 0.300
AGGREGATE_GOAL_S = 2.0
GLOSSES = [f"ΓΛΩΣΣΑ{i}" for i in range(310)]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


def build(out: Path, n_samples: int, heads: int = 8, seed: int = 0) -> None:
    """Write a synthetic artifact with GSL-like lengths and 331-like sentence groups."""
    rng = np.random.default_rng(seed)
    sentences = [list(rng.choice(GLOSSES, size=int(np.clip(rng.poisson(4), 1, 16)))) for _ in range(331)]
    vocabulary = ["<pad>", "<unk>", "<bos>", "<eos>", *GLOSSES]
    run_info = {
        "run_name": "bench", "run_dir": "runs/bench",
        "model": {"d_model": 16, "nhead": heads, "num_encoder_layers": 1, "num_decoder_layers": 1},
        "training_config": {}, "checkpoint_sha256": "0" * 64,
        "corpus": {"name": "synthetic", "path": str(out.parent / "no-corpus")}, "split": "test",
        "decoding": {"method": "greedy", "beam_size": 1, "max_len": 20}, "vocabulary": vocabulary,
        "summary": {"bleu_4": 0.0},
    }
    with ArtifactWriter(out, run_info, force=True) as writer:
        for idx in range(n_samples):
            group = int(rng.integers(len(sentences)))
            reference = sentences[group]
            hypothesis = list(reference) if rng.random() < 0.6 else list(reference[:-1]) or list(reference)
            n_frames = int(np.clip(rng.gamma(4.0, 25.0), 6, 615))
            frame_index = np.arange(0, n_frames, 3)[:220]
            P, N = frame_index.size, len(hypothesis) + 1
            u = (np.arange(P) + 0.5) / P
            target = (np.arange(N) + 0.5) / N
            diagonal = -((u[None] - target[:, None]) ** 2) / 0.02  # (N, P)
            writer.add_sample(
                SampleRecord(
                    sample_idx=idx, id=f"s{idx:05d}", split="test", signer=f"signer{idx % 7 + 1}",
                    repetition=idx % 5 + 1, sentence_group=f"group{group:03d}",
                    reference=" ".join(reference), hypothesis=" ".join(hypothesis),
                    reference_tokens=reference, hypothesis_tokens=hypothesis, text=None,
                    exact_match=hypothesis == reference, sentence_bleu=float(rng.uniform(0, 100)),
                    wer=float(rng.uniform(0, 1)), frame_index=frame_index, n_frames=n_frames, fps=30.0,
                    gold_spans=None,
                    encoder_self=_softmax(rng.normal(size=(1, heads, P, P))),
                    decoder_self=_softmax(np.where(np.tril(np.ones((N, N), bool)), rng.normal(size=(1, heads, N, N)), -np.inf)),
                    cross=_softmax(diagonal[None, None] + rng.normal(size=(1, heads, N, P))),
                    self_norm=rng.uniform(0.5, 2, size=(1, N)), cross_norm=rng.uniform(0.5, 2, size=(1, N)),
                    signed_diff=rng.normal(size=(1, N)),
                    pose=rng.random((n_frames, 543, 3), dtype=np.float32),
                )
            )


def clear_caches() -> None:
    """Empty every Streamlit cache the dashboard uses."""
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def page_loads(path: Path) -> dict[str, object]:
    """Return one callable per page that loads everything the page needs on first view."""
    from app import data

    stamp = (path / "run.json").stat().st_mtime_ns

    def ref():
        return data._open_run(str(path), stamp)

    def overview():
        run = ref()
        data.samples(run)

    def sample():
        run = ref()
        data.samples(run)
        data.attention(run, 0)
        data.contributions(run)
        data.artifact_pose(run.path, run.stamp, 0)

    def alignment():
        run = ref()
        data.mean_profiles(run, 0, -1)
        data.metric_intervals(run, 0, -1, None)
        data.cross_share(run, 0)
        data.encoder_mean(run, 0, -1, 100)

    def repeated():
        run = ref()
        data.consistency(run, 0, -1)

    def concordance():
        run = ref()
        vocabulary = data.gloss_vocabulary(run)
        data.occurrences(run, vocabulary[0], 0, -1)

    return {"overview": overview, "sample": sample, "alignment": alignment, "repeated": repeated,
            "concordance": concordance}


def sample_switches(path: Path, n_samples: int, switches: int = 20) -> tuple[list[float], list[float]]:
    """Time reading new samples with the run cached, then the same samples again."""
    from app import data

    stamp = (path / "run.json").stat().st_mtime_ns
    run = data._open_run(str(path), stamp)
    data.samples(run)
    data.contributions(run)
    indices = np.linspace(1, n_samples - 1, switches).astype(int)

    def switch(sample_idx: int) -> None:
        data.attention(run, sample_idx)
        data.artifact_pose(run.path, run.stamp, sample_idx)

    new = [timed(switch, int(i))[0] for i in indices]
    repeat = [timed(switch, int(i))[0] for i in indices]
    return new, repeat


def render_pages(root: Path) -> dict[str, tuple[float, float]]:
    """Time each page's full script run under AppTest, cold then warm."""
    from streamlit.testing.v1 import AppTest

    os.environ["SIGNATTENTION_ARTIFACTS"] = str(root)
    times = {}
    for page in ("overview.py", "sample.py", "alignment.py", "repeated.py", "concordance.py"):
        clear_caches()
        runs = []
        for _ in range(2):
            at = AppTest.from_file(str(REPO_ROOT / "app" / "streamlit_app.py"), default_timeout=600)
            start = time.perf_counter()
            at.run()
            if page != "overview.py":
                at.switch_page(page).run()
            runs.append(time.perf_counter() - start)
            if at.exception:
                raise RuntimeError(f"{page} raised an exception: {at.exception[0].value}")
        times[page] = (runs[0], runs[1])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000, help="samples in the synthetic run")
    parser.add_argument("--out", type=Path, default=None,
                        help="artifacts root to build into and keep (default: a temporary folder, deleted)")
    parser.add_argument("--render", action="store_true", help="also time full page runs under AppTest")
    args = parser.parse_args()

    root = args.out or Path(tempfile.mkdtemp(prefix="bench-app-"))
    path = root / "demo"
    try:
        if (path / "run.json").is_file():
            print(f"reusing {path}")
        else:
            seconds, _ = timed(build, path, args.samples)
            print(f"built {args.samples} samples in {seconds:.1f} s at {path}")
        size = sum(file.stat().st_size for file in path.iterdir()) / 2**20
        print(f"artifact size: {size:.0f} MiB")

        print("\npage data (s)      cold     warm   cold/goal")
        for name, load in page_loads(path).items():
            clear_caches()
            cold, _ = timed(load)
            warm, _ = timed(load)
            if name == "sample":
                # the sample goal is for switching samples, measured below
                print(f"{name:<14} {cold:8.3f} {warm:8.3f}        -  (first open of the page)")
            else:
                print(f"{name:<14} {cold:8.3f} {warm:8.3f}   {cold / AGGREGATE_GOAL_S:6.2f}  (goal {AGGREGATE_GOAL_S:g} s)")

        new, repeat = sample_switches(path, args.samples)
        print("\nsample switch (ms)   median   max    median/goal")
        for label, values in (("new sample", new), ("repeat", repeat)):
            median = statistics.median(values)
            print(f"{label:<18} {1000 * median:8.1f} {1000 * max(values):6.1f}   {median / SAMPLE_GOAL_S:6.2f}")

        if args.render:
            print("\nfull page run under AppTest (s)   cold     warm")
            for page, (cold, warm) in render_pages(root).items():
                print(f"{page:<32} {cold:8.2f} {warm:8.2f}")
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
