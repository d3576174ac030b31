"""Extraction of a whole run into an artifact folder, checked against the step-by-step reference."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from signattention_core.artifacts import Artifact, ArtifactError
from signattention_core.capture import capture_step_by_step
from signattention_core.checkpoint import load_run, save_checkpoint
from signattention_core.config import TrainConfig
from signattention_core.corpus import Corpus, Sample, write_corpus
from signattention_core.dataset import SignDataset, collate, fit_tokenizer
from signattention_core.evaluation import translation_metrics
from signattention_core.extraction import ExtractionConfig, extract, portable_path
from signattention_core.model import SignTransformer
from signattention_core.tokenizer import BOS_ID, EOS_ID, PAD_ID
from signattention_core.transforms import n_features

REPO_ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-6
GLOSSES = ("ΕΓΩ(1)", "ΠΟΙΟΣ;", "ΣΠΙΤΙ", "ΠΑΩ", "ΕΣΥ", "ΟΝΟΜΑ")
# (split, frames, gloss indices); test samples differ in length so that batches hold padding
SAMPLES = (
    ("train", 30, (0, 2)), ("train", 42, (1, 3, 4)), ("train", 25, (5,)), ("train", 51, (0, 1, 2, 3)),
    ("train", 36, (4, 5)), ("train", 28, (2, 3)),
    ("val", 33, (0, 2)), ("val", 40, (1, 4)),
    ("test", 30, (0, 2)), ("test", 57, (1, 3, 4)), ("test", 19, (5,)), ("test", 45, (0, 1, 2, 3)),
    ("test", 31, (0, 2)),
)
TINY_CONFIG = TrainConfig(
    d_model=16, nhead=2, dim_feedforward=32, num_encoder_layers=2, num_decoder_layers=2,
    dropout=0.0, max_frames=40, max_tokens=5, sample_rate=3, epochs=1, batch_size=4,
)


def tiny_samples() -> list[Sample]:
    samples = []
    for number, (split, frames, glosses) in enumerate(SAMPLES):
        # even gold spans, one per gloss
        bounds = np.linspace(0, frames, len(glosses) + 1).astype(int)
        samples.append(
            Sample(
                id=f"signer{number % 3 + 1}_rep{number % 2 + 1}/sentence{number:03d}",
                split=split,
                gloss=" ".join(GLOSSES[i] for i in glosses),
                text="κείμενο" if number % 2 else "",
                signer=f"signer{number % 3 + 1}",
                repetition=number % 2 + 1,
                fps=30.0,
                n_frames=frames,
                gloss_spans=tuple((int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])),
            )
        )
    return samples


def gloss_pose(sample: Sample, seed: int) -> np.ndarray:
    """Return a noisy pose whose keypoints sit at a gloss-specific place during each gloss span."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(0.5, 0.02, size=(sample.n_frames, 543, 3)).astype(np.float32)
    for gloss, (start, end) in zip(sample.glosses, sample.gloss_spans, strict=True):
        pose[start:end, :, 0] += 0.4 * (GLOSSES.index(gloss) / len(GLOSSES) - 0.5)
    pose[rng.uniform(size=sample.n_frames) < 0.1, 501:522] = np.nan  # left hand missing in some frames
    return pose


def fit_briefly(model: SignTransformer, dataset: SignDataset, steps: int = 150) -> None:
    """Fit the training split for a few steps, so that hypotheses end with EOS at several lengths."""
    batch = collate([dataset[i] for i in range(len(dataset))])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        logits = model(batch.src, batch.src_padding_mask, batch.tgt[:, :-1])  # (B, N, V)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), batch.tgt[:, 1:].reshape(-1), ignore_index=PAD_ID
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def write_tiny_run(root: Path) -> tuple[Path, Path]:
    """Write a corpus and an untrained, fixed-seed run folder; return (corpus, run)."""
    corpus_dir = root / "corpus"
    samples = tiny_samples()
    poses = {sample.id: gloss_pose(sample, seed) for seed, sample in enumerate(samples)}
    write_corpus(corpus_dir, {"name": "tiny", "id": "tiny"}, samples, poses)

    from signattention_core.corpus import Corpus

    corpus = Corpus.open(corpus_dir)
    tokenizer = fit_tokenizer(corpus, "gloss")
    torch.manual_seed(7)
    model = SignTransformer(
        n_features(TINY_CONFIG.transform_config()), len(tokenizer), d_model=16, nhead=2,
        num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=32, dropout=0.0,
    )
    fit_briefly(model, SignDataset(corpus, "train", tokenizer, TINY_CONFIG.transform_config(), train=False))

    run_dir = root / "run"
    run_dir.mkdir()
    save_checkpoint(run_dir / "best.pt", model, TINY_CONFIG, tokenizer, epoch=1)
    save_checkpoint(run_dir / "checkpoint.pt", model, TINY_CONFIG, tokenizer, epoch=1)
    (run_dir / "config.json").write_text(json.dumps(TINY_CONFIG.to_dict()), encoding="utf-8")
    tokenizer.save(run_dir / "vocab.json")
    (run_dir / "corpus.json").write_text(json.dumps({"name": "tiny", "path": str(corpus_dir)}), encoding="utf-8")
    return corpus_dir, run_dir


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # other processes share the CPU cores, and thread contention slows tiny models tenfold
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    return write_tiny_run(tmp_path_factory.mktemp("tiny"))


def run_extract(run_dir: Path, out_dir: Path, **settings) -> Artifact:
    settings.setdefault("batch_size", 3)
    config = ExtractionConfig(run_dir=run_dir, out_dir=out_dir, device="cpu", progress=False, **settings)
    return Artifact.open(extract(config))


@pytest.fixture(scope="module")
def greedy_artifact(tiny_run, tmp_path_factory) -> Artifact:
    _, run_dir = tiny_run
    return run_extract(run_dir, tmp_path_factory.mktemp("out") / "greedy")


@pytest.fixture(scope="module")
def beam_artifact(tiny_run, tmp_path_factory) -> Artifact:
    _, run_dir = tiny_run
    return run_extract(run_dir, tmp_path_factory.mktemp("out") / "beam", decode="beam", beam_size=3)


@pytest.fixture(scope="module")
def test_dataset(tiny_run):
    _, run_dir = tiny_run
    loaded = load_run(run_dir, device="cpu")
    from signattention_core.corpus import Corpus

    corpus = Corpus.open(tiny_run[0])
    dataset = SignDataset(corpus, "test", loaded.tokenizer, loaded.transform, max_tokens=TINY_CONFIG.max_tokens)
    return loaded, dataset


def check_against_step_by_step(artifact: Artifact, loaded, dataset, decode: str) -> None:
    max_len = artifact.run["decoding"]["max_len"]
    contributions = artifact.contributions()
    for sample_idx in range(artifact.n_samples):
        item = dataset[sample_idx]
        src = item["features"].unsqueeze(0)  # (1, P, E)
        mask = torch.zeros(src.shape[:2], dtype=torch.bool)  # (1, P)
        stored = artifact.attention(sample_idx)
        hypothesis = [loaded.tokenizer.token_to_id[token] for token in stored.tokens[:-1]]

        forced = hypothesis if decode == "beam" else None
        tokens, _, reference = capture_step_by_step(
            loaded.model, src, mask, forced, max_len, BOS_ID, EOS_ID
        )
        assert tokens == hypothesis
        if len(hypothesis) == max_len:
            # cut at max_len: the reference ran one step fewer than the capture stores
            _, _, reference = capture_step_by_step(loaded.model, src, mask, hypothesis, max_len, BOS_ID, EOS_ID)

        np.testing.assert_array_equal(stored.frame_index, item["frame_index"].numpy())
        for module in ("encoder_self", "decoder_self", "cross"):
            np.testing.assert_allclose(
                stored.module(module), getattr(reference, module), rtol=0, atol=TOLERANCE,
                err_msg=f"sample {sample_idx} {module}",
            )
        rows = contributions[contributions["sample_idx"] == sample_idx]
        for name in ("self_norm", "cross_norm", "signed_diff"):
            got = rows.sort_values(["layer", "step"])[name].to_numpy().reshape(reference.self_norm.shape)
            np.testing.assert_allclose(got, getattr(reference, name), rtol=TOLERANCE, atol=TOLERANCE,
                                       err_msg=f"sample {sample_idx} {name}")


def test_greedy_matches_step_by_step(greedy_artifact, test_dataset):
    loaded, dataset = test_dataset
    check_against_step_by_step(greedy_artifact, loaded, dataset, "greedy")


def test_beam_matches_step_by_step(beam_artifact, test_dataset):
    loaded, dataset = test_dataset
    check_against_step_by_step(beam_artifact, loaded, dataset, "beam")


def test_hypotheses_vary_in_length(greedy_artifact):
    # guards the coverage of the step-by-step comparison: padded decoder input in a batch
    lengths = greedy_artifact.samples()["n_hypothesis"]
    assert lengths.nunique() >= 2


def test_samples_metadata(greedy_artifact, test_dataset):
    _, dataset = test_dataset
    samples = greedy_artifact.samples()

    assert samples["id"].tolist() == [sample.id for sample in dataset.samples]
    assert samples["sample_idx"].tolist() == list(range(len(dataset)))
    assert (samples["split"] == "test").all()
    for row, sample, reference in zip(samples.itertuples(), dataset.samples, dataset.references, strict=True):
        assert row.signer == sample.signer
        assert row.repetition == sample.repetition
        assert row.sentence_group == sample.sentence_group
        assert list(row.reference_tokens) == reference
        assert row.reference == " ".join(reference)
        assert row.hypothesis == " ".join(row.hypothesis_tokens)
        assert row.n_frames == sample.n_frames
        assert row.fps == pytest.approx(30.0)
        assert [list(span) for span in row.gold_spans] == [list(span) for span in sample.gloss_spans]
        assert row.n_positions == len(row.frame_index)


def test_sample_scores(greedy_artifact):
    samples = greedy_artifact.samples()
    references = [list(tokens) for tokens in samples["reference_tokens"]]
    hypotheses = [list(tokens) for tokens in samples["hypothesis_tokens"]]
    expected = translation_metrics(references, hypotheses)

    for row, scores in zip(samples.itertuples(), expected["per_sample"], strict=True):
        assert row.sentence_bleu == pytest.approx(scores["sentence_bleu"])
        assert row.wer == pytest.approx(scores["wer"])
        assert row.exact_match == scores["exact_match"]
    summary = greedy_artifact.run["summary"]
    assert summary["bleu_4"] == pytest.approx(expected["bleu_4"])
    assert summary["wer"] == pytest.approx(expected["wer"])
    assert "per_sample" not in summary


def test_artifact_stores_poses(greedy_artifact, tiny_run):
    corpus_dir, _ = tiny_run
    corpus = Corpus.open(corpus_dir)
    samples = greedy_artifact.samples(columns=["id", "n_frames"])
    first = samples.iloc[0]
    stored = greedy_artifact.pose(int(first["sample_idx"]))
    raw = corpus.load_pose(first["id"])

    assert stored.shape == (first["n_frames"], 543, 2)
    body = slice(0, 33)
    np.testing.assert_allclose(stored[:, body], raw[:, body, :2], atol=1e-3, equal_nan=True)


def test_corpus_path_absolute_without_shared_parent():
    assert portable_path(Path("/corpus-a"), Path("/artifacts-b/run")) == "/corpus-a"
    assert portable_path(Path("/data/corpus"), Path("/data/artifacts/run")) == "../../corpus"


def test_run_info(greedy_artifact, tiny_run):
    corpus_dir, run_dir = tiny_run
    run = greedy_artifact.run
    digest = hashlib.sha256((run_dir / "best.pt").read_bytes()).hexdigest()

    assert run["checkpoint_sha256"] == digest
    assert run["corpus"]["name"] == "tiny"
    # the corpus path is stored relative to the artifact folder when they share a parent
    assert not Path(run["corpus"]["path"]).is_absolute()
    assert (greedy_artifact.path / run["corpus"]["path"]).resolve() == corpus_dir.resolve()
    assert run["split"] == "test"
    assert run["decoding"]["method"] == "greedy"
    assert run["decoding"]["max_len"] == TINY_CONFIG.max_tokens + 1
    assert run["vocabulary"][:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert run["training_config"]["d_model"] == 16
    assert run["model"]["nhead"] == 2


def test_metrics_per_layer_and_head(greedy_artifact):
    metrics = greedy_artifact.metrics()
    # 2 decoder layers, the head average (-1) and 2 heads per sample
    assert len(metrics) == greedy_artifact.n_samples * 2 * 3
    assert sorted(metrics["head"].unique().tolist()) == [-1, 0, 1]


def test_batch_size_leaves_weights_unchanged(greedy_artifact, tiny_run, tmp_path):
    _, run_dir = tiny_run
    one_by_one = run_extract(run_dir, tmp_path / "single", batch_size=1)
    for sample_idx in range(greedy_artifact.n_samples):
        batched = greedy_artifact.attention(sample_idx)
        alone = one_by_one.attention(sample_idx)
        assert batched.tokens == alone.tokens
        for module in ("encoder_self", "decoder_self", "cross"):
            np.testing.assert_allclose(batched.module(module), alone.module(module), rtol=0, atol=TOLERANCE)


def test_cut_hypotheses_listed(tiny_run, tmp_path):
    _, run_dir = tiny_run
    artifact = run_extract(run_dir, tmp_path / "short", max_len=1)
    samples = artifact.samples()
    cut = samples.loc[samples["n_hypothesis"] == 1, "sample_idx"].tolist()

    assert cut, "the tiny model should emit at least one gloss, so max_len=1 cuts its hypothesis"
    assert samples["n_hypothesis"].max() <= 1
    assert artifact.run["decoding"]["cut_at_max_len"] == cut
    assert samples["ends_with_eos"].tolist() == (samples["n_hypothesis"] == 0).tolist()
    last_steps = artifact.contributions().groupby(["sample_idx", "layer"]).tail(1)
    for row in last_steps.itertuples():
        assert row.is_eos == (row.sample_idx not in cut)


def test_limit_takes_first_samples(tiny_run, tmp_path):
    _, run_dir = tiny_run
    artifact = run_extract(run_dir, tmp_path / "limited", limit=2)
    assert artifact.n_samples == 2
    assert artifact.samples()["sample_idx"].tolist() == [0, 1]


def test_existing_folder_needs_force(tiny_run, tmp_path):
    _, run_dir = tiny_run
    out = tmp_path / "twice"
    run_extract(run_dir, out, limit=1)
    with pytest.raises(ArtifactError, match="already exists"):
        run_extract(run_dir, out, limit=1)
    assert run_extract(run_dir, out, limit=2, force=True).n_samples == 2


def test_missing_corpus_reference(tiny_run, tmp_path):
    _, run_dir = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "corpus.json").unlink()
    with pytest.raises(FileNotFoundError, match="--corpus"):
        run_extract(copy, tmp_path / "out")


def test_imported_run_needs_corpus_flag(tiny_run, tmp_path):
    _, run_dir = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "corpus.json").write_text(json.dumps({"name": None, "path": None}), encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="names no corpus"):
        run_extract(copy, tmp_path / "out")


def test_corpus_flag_overrides_reference(tiny_run, tmp_path):
    corpus_dir, run_dir = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "corpus.json").unlink()
    assert run_extract(copy, tmp_path / "out", corpus_dir=corpus_dir, limit=1).n_samples == 1


def test_invalid_settings_listed(tmp_path):
    with pytest.raises(ValueError, match="decode 'sample' is invalid") as error:
        ExtractionConfig(run_dir=tmp_path, out_dir=tmp_path / "out", decode="sample", batch_size=0)
    assert "batch_size must be an integer >= 1, got 0" in str(error.value)


def test_cli_writes_artifact(tiny_run, tmp_path):
    _, run_dir = tiny_run
    out = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, "extract.py", "--run", str(run_dir), "--split", "test", "--out", str(out),
         "--device", "cpu", "--limit", "2", "--quiet"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert Artifact.open(out).n_samples == 2


def test_cli_reports_bad_split(tiny_run, tmp_path):
    _, run_dir = tiny_run
    result = subprocess.run(
        [sys.executable, "extract.py", "--run", str(run_dir), "--split", "dev2", "--out", str(tmp_path / "x"),
         "--device", "cpu", "--quiet"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "split 'dev2' is invalid; accepted: train, val, test" in result.stderr


def test_dev_split_recorded_as_val(tiny_run, tmp_path):
    _, run_dir = tiny_run
    config = ExtractionConfig(run_dir=run_dir, out_dir=tmp_path / "dev", split="Dev", device="cpu")
    assert config.split == "val"


def test_two_processes_match_one(greedy_artifact, tiny_run, tmp_path):
    _, run_dir = tiny_run
    out = tmp_path / "sharded"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "extract.py", "--run-dir", str(run_dir), "--out", str(out), "--device", "cpu",
         "--batch-size", "3", "--quiet"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    sharded = Artifact.open(out)
    assert sorted(sharded.files["attention"]) == [out / "attention-part-00000.parquet", out / "attention-part-00001.parquet"]
    assert sharded.n_samples == greedy_artifact.n_samples

    location = ["attention_file", "attention_row_group"]
    single_samples = greedy_artifact.samples().drop(columns=location)
    sharded_samples = sharded.samples().drop(columns=location)
    assert sharded_samples.drop(columns=["frame_index", "gold_spans", "reference_tokens", "hypothesis_tokens"]).equals(
        single_samples.drop(columns=["frame_index", "gold_spans", "reference_tokens", "hypothesis_tokens"])
    )
    for sample_idx in range(sharded.n_samples):
        one, two = greedy_artifact.attention(sample_idx), sharded.attention(sample_idx)
        assert one.tokens == two.tokens
        np.testing.assert_array_equal(one.frame_index, two.frame_index)
        for module in ("encoder_self", "decoder_self", "cross"):
            np.testing.assert_allclose(one.module(module), two.module(module), rtol=0, atol=TOLERANCE)

    single_metrics, sharded_metrics = greedy_artifact.metrics(), sharded.metrics()
    assert single_metrics[["sample_idx", "layer", "head"]].equals(sharded_metrics[["sample_idx", "layer", "head"]])
    np.testing.assert_allclose(
        sharded_metrics.drop(columns=["sample_idx", "layer", "head"]).to_numpy(dtype=float),
        single_metrics.drop(columns=["sample_idx", "layer", "head"]).to_numpy(dtype=float),
        rtol=1e-4, atol=1e-5,
    )
    assert sharded.run["summary"]["bleu_4"] == pytest.approx(greedy_artifact.run["summary"]["bleu_4"])


def test_force_keeps_run_folder(tiny_run, tmp_path):
    _, run_dir = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)

    # --out mistyped as the run folder itself
    with pytest.raises(ArtifactError, match="not an artifact folder"):
        run_extract(copy, copy, force=True, limit=1)
    assert sorted(path.name for path in copy.iterdir()) == sorted(path.name for path in run_dir.iterdir())
    assert load_run(copy).info["epoch"] == 1


def test_eos_first_hypotheses_written(tiny_run, tmp_path):
    _, run_dir = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    payload = torch.load(copy / "best.pt", weights_only=True)
    payload["state_dict"]["generator.bias"][EOS_ID] += 100.0  # EOS wins every step
    torch.save(payload, copy / "best.pt")

    artifact = run_extract(copy, tmp_path / "out", decode="beam", beam_size=2)
    samples = artifact.samples()
    assert (samples["n_hypothesis"] == 0).all()
    assert samples["ends_with_eos"].all()
    assert (samples["hypothesis"] == "").all()

    stored = artifact.attention(0)
    assert stored.tokens == ["<eos>"]
    assert stored.decoder_self.shape == (2, 2, 1, 1)
    assert stored.cross.shape[2] == 1
    metrics = artifact.metrics()
    assert (metrics["n_glosses"] == 0).all()
    assert metrics.drop(columns=["sample_idx", "layer", "head", "n_glosses"]).isna().all().all()
    assert artifact.contributions()["is_eos"].all()


def test_corpus_flag_overrides_damaged_reference(tiny_run, tmp_path):
    corpus_dir, run_dir = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "corpus.json").write_text("{not json", encoding="utf-8")

    assert run_extract(copy, tmp_path / "out", corpus_dir=corpus_dir, limit=1).n_samples == 1
    with pytest.raises(ValueError, match="corpus.json is not valid JSON"):
        run_extract(copy, tmp_path / "other")


def test_cli_reports_unwritable_out(tiny_run, tmp_path, capsys):
    from extract import main

    _, run_dir = tiny_run
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")

    code = main(["--run", str(run_dir), "--out", str(blocker / "artifact"), "--device", "cpu", "--limit", "1", "--quiet"])

    assert code == 2
    error = capsys.readouterr().err
    assert "extract.py: error:" in error
    assert "Not a directory" in error
