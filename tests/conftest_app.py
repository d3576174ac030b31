"""Artifacts for the dashboard tests, built once per test session.

`build_app_runs(root)` writes an artifacts root with one good run and three
broken ones, plus the corpus the good run points at (poses and one video).
Even samples store their pose in the artifact and odd ones do not, so the
pose player is tested with both sources. The attention weights are random
row-stochastic matrices with a soft diagonal, written through the real
ArtifactWriter, so every table passes the real schema checks.

Test files import the fixture `app_runs` from here; swapping `build_good_run`
for an extraction of a trained model changes every dashboard test at once.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from signattention_core.artifacts import ArtifactWriter, SampleRecord
from signattention_core.corpus import Sample, write_corpus

GOOD_RUN = "demo"
DAMAGED_RUN = "damaged"
OLD_SCHEMA_RUN = "old-schema"
UNFINISHED_RUN = "unfinished"

# sentences of the test corpus: (sentence group, glosses, translation)
SENTENCES = (
    ("g0", ["ΕΓΩ(1)", "ΘΕΛΩ", "ΝΕΡΟ"], "Θέλω νερό."),
    ("g1", ["ΠΟΙΟΣ;", "ΕΣΥ"], "Ποιος είσαι;"),
    ("g2", ["ΕΓΩ(1)", "ΕΝΟΧΛΩ_ΕΣΕΝΑ", "ΣΥΓΓΝΩΜΗ", "ΕΓΩ(1)"], "Συγγνώμη που σε ενοχλώ."),
    ("g3", ["ΚΑΛΗΜΕΡΑ"], "Καλημέρα."),
)
SIGNERS = ("signer1", "signer2", "signer3")
FPS = 25.0
SAMPLE_RATE = 3
LAYERS = 2
HEADS = 2


@dataclass(frozen=True)
class AppRuns:
    """Where the test runs live."""

    root: Path  # artifacts root holding every run folder
    corpus: Path  # corpus folder of the good run
    samples: list[Sample]  # corpus samples in sample_idx order


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _diagonal_attention(rng: np.random.Generator, L: int, H: int, N: int, P: int, causal: bool = False) -> np.ndarray:
    """Random (L, H, N, P) softmax weights whose row i peaks near (i + 0.5) / N of the columns."""
    u = (np.arange(P) + 0.5) / P
    target = (np.arange(N) + 0.5) / N
    logits = -((u[None, :] - target[:, None]) ** 2) / (2 * 0.15**2)
    logits = logits[None, None] + rng.normal(0.0, 1.0, size=(L, H, N, P))  # (L, H, N, P)
    if causal:
        logits = np.where(np.tril(np.ones((N, P), dtype=bool)), logits, -np.inf)
    return _softmax(logits).astype(np.float32)


def _pose(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """A plausible (F, 543, 3) pose: a standing skeleton whose wrists move."""
    pose = np.full((n_frames, 543, 3), np.nan, dtype=np.float32)
    body = np.zeros((33, 3), dtype=np.float32)
    body[:, 0] = 0.5 + 0.1 * np.sin(np.arange(33))
    body[:, 1] = np.linspace(0.15, 0.95, 33)
    body[11], body[12] = (0.38, 0.35, 0), (0.62, 0.35, 0)
    body[13], body[14] = (0.32, 0.5, 0), (0.68, 0.5, 0)
    t = np.arange(n_frames)[:, None]
    pose[:, :33] = body[None]
    pose[:, 15, :2] = np.hstack([0.3 + 0.05 * np.sin(t / 5), 0.6 - 0.1 * np.cos(t / 7)])
    pose[:, 16, :2] = np.hstack([0.7 - 0.05 * np.sin(t / 6), 0.6 - 0.1 * np.sin(t / 4)])
    for start, wrist in ((501, 15), (522, 16)):
        offsets = rng.normal(0.0, 0.02, size=(21, 2)).astype(np.float32)
        pose[:, start : start + 21, :2] = pose[:, wrist, None, :2] + offsets[None]
        pose[:, start : start + 21, 2] = 0.0
    pose[n_frames // 2 :, 501:522] = np.nan  # the left hand leaves the frame halfway
    return pose


def _corpus_samples(n_per_sentence: int) -> list[Sample]:
    samples = []
    for group, glosses, text in SENTENCES:
        for k in range(n_per_sentence):
            signer = SIGNERS[k % len(SIGNERS)]
            repetition = k // len(SIGNERS) + 1
            n_frames = 12 * len(glosses) + 6 + 5 * k
            bounds = np.linspace(0, n_frames, len(glosses) + 1).astype(int)
            spans = tuple((int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True))
            samples.append(
                Sample(
                    id=f"{group}_{signer}_rep{repetition}/sentence{k:02d}",
                    split="test",
                    gloss=" ".join(glosses),
                    text=text,
                    signer=signer,
                    repetition=repetition,
                    sentence_group=group,
                    fps=FPS,
                    n_frames=n_frames,
                    gloss_spans=spans if group != "g1" else None,
                )
            )
    return samples


def _hypothesis(reference: list[str], k: int) -> list[str]:
    """The reference, or one of three kinds of error, by performance number."""
    if k % 4 == 1 and len(reference) > 1:
        return reference[:-1]  # deletion
    if k % 4 == 2:
        return [*reference[:-1], "ΕΣΥ" if reference[-1] != "ΕΣΥ" else "ΝΕΡΟ"]  # substitution
    return list(reference)


def run_info(corpus: Path, name: str = GOOD_RUN) -> dict:
    """A run.json description like the extraction writes."""
    vocabulary = ["<pad>", "<unk>", "<bos>", "<eos>"] + sorted({g for _, glosses, _ in SENTENCES for g in glosses})
    return {
        "run_name": name,
        "run_dir": f"runs/{name}",
        "model": {"n_features": 150, "d_model": 16, "nhead": HEADS, "num_encoder_layers": LAYERS,
                  "num_decoder_layers": LAYERS, "dim_feedforward": 64, "n_parameters": 12345},
        "training_config": {"sample_rate": SAMPLE_RATE, "max_frames": 220},
        "checkpoint_sha256": "0" * 64,
        "corpus": {"name": "test corpus", "path": str(corpus)},
        "split": "test",
        "decoding": {"method": "greedy", "beam_size": 1, "max_len": 12},
        "vocabulary": vocabulary,
        "summary": {"bleu_1": 81.0, "bleu_4": 40.5, "wer": 0.21, "exact_match": 0.5},
    }


def build_good_run(out_dir: Path, corpus: Path, n_per_sentence: int = 6, seed: int = 0) -> list[Sample]:
    """Write a corpus with poses and one video, and an artifact over it; return the samples."""
    rng = np.random.default_rng(seed)
    samples = _corpus_samples(n_per_sentence)
    poses = {sample.id: _pose(rng, sample.n_frames) for sample in samples}
    write_corpus(corpus, {"name": "test corpus", "id": "test"}, samples, poses)
    _write_video(corpus / "videos" / f"{samples[0].id}.mp4", samples[0].n_frames)

    with ArtifactWriter(out_dir, run_info(corpus)) as writer:
        for idx, sample in enumerate(samples):
            reference = sample.glosses
            k = int(sample.id.rsplit("sentence", 1)[1])
            hypothesis = _hypothesis(reference, k)
            frame_index = np.arange(0, sample.n_frames, SAMPLE_RATE, dtype=np.int64)
            P, N = frame_index.size, len(hypothesis) + 1
            exact = hypothesis == reference
            writer.add_sample(
                SampleRecord(
                    sample_idx=idx, id=sample.id, split=sample.split, signer=sample.signer,
                    repetition=sample.repetition, sentence_group=sample.sentence_group,
                    reference=" ".join(reference), hypothesis=" ".join(hypothesis),
                    reference_tokens=reference, hypothesis_tokens=hypothesis, text=sample.text,
                    exact_match=exact, sentence_bleu=100.0 if exact else float(rng.uniform(5, 60)),
                    wer=0.0 if exact else float(rng.uniform(0.2, 0.8)),
                    frame_index=frame_index, n_frames=sample.n_frames, fps=sample.fps,
                    gold_spans=list(sample.gloss_spans) if sample.gloss_spans else None,
                    encoder_self=_diagonal_attention(rng, LAYERS, HEADS, P, P),
                    decoder_self=_diagonal_attention(rng, LAYERS, HEADS, N, N, causal=True),
                    cross=_diagonal_attention(rng, LAYERS, HEADS, N, P),
                    self_norm=rng.uniform(0.5, 2.0, size=(LAYERS, N)),
                    cross_norm=rng.uniform(0.5, 2.0, size=(LAYERS, N)),
                    signed_diff=rng.normal(0.0, 0.1, size=(LAYERS, N)),
                    # even samples carry their pose in the artifact; odd ones leave the player to the corpus
                    pose=poses[sample.id] if idx % 2 == 0 else None,
                )
            )
    return samples


def _write_video(path: Path, n_frames: int) -> None:
    """Write a small MP4 whose frames show their own number as a grey level."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (64, 48))
    for frame in range(n_frames):
        image = np.full((48, 64, 3), (frame * 5) % 255, dtype=np.uint8)
        writer.write(image)
    writer.release()


def build_broken_runs(root: Path, good: Path) -> None:
    """Copy the good run three times and break each copy in a different way."""
    damaged = root / DAMAGED_RUN
    shutil.copytree(good, damaged)
    target = damaged / "samples.parquet"
    target.write_bytes(target.read_bytes()[:200])

    old = root / OLD_SCHEMA_RUN
    shutil.copytree(good, old)
    run = json.loads((old / "run.json").read_text(encoding="utf-8"))
    run["schema_version"] = 99
    (old / "run.json").write_text(json.dumps(run), encoding="utf-8")

    unfinished = root / UNFINISHED_RUN
    shutil.copytree(good, unfinished)
    (unfinished / "metrics.parquet").unlink()


def build_app_runs(root: Path) -> AppRuns:
    """Write the artifacts root used by the dashboard tests."""
    root.mkdir(parents=True, exist_ok=True)
    corpus = root.parent / "corpus"
    samples = build_good_run(root / GOOD_RUN, corpus)
    build_broken_runs(root, root / GOOD_RUN)
    return AppRuns(root=root, corpus=corpus, samples=samples)


@pytest.fixture(scope="session")
def app_runs(tmp_path_factory: pytest.TempPathFactory) -> AppRuns:
    """An artifacts root with the good run `demo` and three broken runs."""
    return build_app_runs(tmp_path_factory.mktemp("app") / "artifacts")
