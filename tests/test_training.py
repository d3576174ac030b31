"""Tests for the training loop, the run folder and the command line."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from signattention_core.checkpoint import load_run
from signattention_core.config import ConfigError
from signattention_core.corpus import Corpus, write_corpus
from signattention_core.corpus.synthetic import write_demo_corpus
from signattention_core.evaluation import TRANSLATION_COLUMNS, evaluate_run
from signattention_core.model import SignTransformer
from signattention_core.tokenizer import split_text
from signattention_core.training import (
    METRIC_COLUMNS,
    RunFolderError,
    balanced_class_weights,
    fit,
    state_dict_digest,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "D_MODEL": 16,
    "NHEAD": 2,
    "DIM_FEEDFORWARD": 32,
    "BATCH_SIZE": 8,
    "DROPOUT": 0.1,
    "EPOCHS": 2,
    "SEED": 3,
}


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """The "small" demo corpus: 48 train, 12 val and 12 test samples."""
    return write_demo_corpus(tmp_path_factory.mktemp("corpus") / "small", seed=0, size="small")


@pytest.fixture(scope="session")
def few_corpus(small_corpus, tmp_path_factory) -> Path:
    """Eight training samples (four sentences, two repetitions) and two validation samples."""
    corpus = Corpus.open(small_corpus)
    samples = corpus.split("train")[:8] + corpus.split("val")[:2]
    root = tmp_path_factory.mktemp("corpus") / "few"
    write_corpus(root, corpus.metadata, samples, corpus.load_pose)
    return root


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def checkpoint_state(run_dir: Path, name: str = "checkpoint.pt") -> dict:
    return torch.load(run_dir / name, map_location="cpu", weights_only=True)


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_tiny_model_overfits_to_exact_match(few_corpus, tmp_path):
    config = {**TINY, "EPOCHS": 150, "DROPOUT": 0.0, "LR": 0.003, "PATIENCE": None}
    result = fit(few_corpus, config, tmp_path / "run", device="cpu", progress=False)
    assert result.history[-1]["train_token_accuracy"] == 1.0

    metrics = evaluate_run(tmp_path / "run", split="train", which="last", progress=False)
    assert metrics["n_samples"] == 8
    assert metrics["exact_match"] == 1.0
    assert metrics["bleu_4"] == pytest.approx(100.0)
    assert metrics["wer"] == 0.0
    assert (tmp_path / "run" / "metrics_train_greedy.json").is_file()


def test_same_seed_gives_same_weights(small_corpus, tmp_path):
    first = fit(small_corpus, TINY, tmp_path / "a", device="cpu", progress=False)
    second = fit(small_corpus, TINY, tmp_path / "b", device="cpu", progress=False)
    other_seed = fit(small_corpus, {**TINY, "SEED": 4}, tmp_path / "c", device="cpu", progress=False)

    weights_a = checkpoint_state(tmp_path / "a")["state_dict"]
    weights_b = checkpoint_state(tmp_path / "b")["state_dict"]
    for name, tensor in weights_a.items():
        assert torch.equal(tensor, weights_b[name]), name
    assert state_dict_digest(first.model) == state_dict_digest(second.model)
    assert state_dict_digest(first.model) != state_dict_digest(other_seed.model)
    assert [row["train_loss"] for row in first.history] == [row["train_loss"] for row in second.history]


def test_resume_matches_uninterrupted_run(small_corpus, tmp_path):
    config = {**TINY, "EPOCHS": 3}
    whole = fit(small_corpus, config, tmp_path / "whole", device="cpu", progress=False)

    fit(small_corpus, config, tmp_path / "split", device="cpu", progress=False, epochs=1)
    assert len(read_csv(tmp_path / "split" / "metrics.csv")) == 1
    resumed = fit(None, None, tmp_path / "split", device="cpu", progress=False, resume=True, epochs=3)

    assert state_dict_digest(resumed.model) == state_dict_digest(whole.model)
    rows = read_csv(tmp_path / "split" / "metrics.csv")
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    expected = read_csv(tmp_path / "whole" / "metrics.csv")
    for row, reference in zip(rows, expected, strict=True):
        assert row["train_loss"] == reference["train_loss"]
        assert row["val_loss"] == reference["val_loss"]
    assert json.loads((tmp_path / "split" / "config.json").read_text())["epochs"] == 3


def test_run_folder_contents(small_corpus, tmp_path):
    run = tmp_path / "run"
    result = fit(small_corpus, TINY, run, device="cpu", progress=False)

    expected_files = {
        "config.json", "vocab.json", "corpus.json", "checkpoint.pt", "best.pt",
        "metrics.csv", "metrics.json", "translations.csv",
    }
    assert {path.name for path in run.iterdir()} == expected_files

    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    assert config["d_model"] == 16
    assert config["nhead"] == 2
    corpus_record = json.loads((run / "corpus.json").read_text(encoding="utf-8"))
    assert corpus_record["path"] == str(small_corpus.resolve())
    assert Path(corpus_record["path"]).is_absolute()
    vocabulary = json.loads((run / "vocab.json").read_text(encoding="utf-8"))["tokens"]
    assert vocabulary[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]

    with open(run / "metrics.csv", encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert tuple(header) == METRIC_COLUMNS
    rows = read_csv(run / "metrics.csv")
    assert len(rows) == 2

    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["split"] == "test"
    assert metrics["n_samples"] == 12
    for key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "sentence_bleu", "wer",
                "exact_match", "token_accuracy", "tokenization", "bleu_signature"):
        assert key in metrics, key
    assert metrics == result.test_metrics

    translations = read_csv(run / "translations.csv")
    assert len(translations) == 12
    assert tuple(translations[0]) == TRANSLATION_COLUMNS


def test_checkpoint_round_trip(small_corpus, tmp_path):
    run = tmp_path / "run"
    result = fit(small_corpus, TINY, run, device="cpu", progress=False)

    last = checkpoint_state(run, "checkpoint.pt")
    best = checkpoint_state(run, "best.pt")
    assert last["epoch"] == 2
    assert last["tokens"] == json.loads((run / "vocab.json").read_text(encoding="utf-8"))["tokens"]
    assert last["config"]["dim_feedforward"] == 32
    assert "optimizer" in last
    assert "optimizer" not in best

    loaded = load_run(run, device="cpu", which="last")
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(tensor, loaded.model.state_dict()[name]), name

    # the reloaded model computes the same logits as the trained one
    torch.manual_seed(0)
    src = torch.randn(2, 7, loaded.model.n_features)  # (B, P, E)
    mask = torch.zeros(2, 7, dtype=torch.bool)
    mask[1, 5:] = True
    tgt = torch.tensor([[2, 5, 6], [2, 7, 0]])
    result.model.eval()
    with torch.no_grad():
        assert torch.allclose(result.model(src, mask, tgt), loaded.model(src, mask, tgt))


def test_best_checkpoint_has_lowest_val_loss(small_corpus, tmp_path):
    result = fit(small_corpus, {**TINY, "EPOCHS": 4, "LR": 0.01}, tmp_path / "run",
                 device="cpu", progress=False)
    val_losses = [row["val_loss"] for row in result.history]
    assert result.best_epoch == int(np.argmin(val_losses)) + 1
    assert checkpoint_state(tmp_path / "run", "best.pt")["epoch"] == result.best_epoch
    flagged = [row["epoch"] for row in result.history if row["best_checkpoint"]]
    assert flagged[-1] == result.best_epoch


def test_early_stopping_on_val_accuracy(small_corpus, tmp_path):
    # a learning rate this small leaves the weights, and so the validation accuracy, unchanged
    config = {**TINY, "EPOCHS": 20, "PATIENCE": 2, "LR": 1e-12, "DROPOUT": 0.0}
    result = fit(small_corpus, config, tmp_path / "run", device="cpu", progress=False)
    assert result.stopped_early
    assert len(result.history) == 3
    assert [row["epochs_without_improvement"] for row in result.history] == [0, 1, 2]


def test_class_weights_balanced():
    # predicted ids after BOS: 4 four times, 5 twice, EOS (3) three times
    targets = [[2, 4, 4, 5, 3], [2, 4, 5, 3], [2, 4, 3]]
    weights = balanced_class_weights(targets, vocab_size=7)
    n_tokens, n_classes = 9, 3
    assert weights.shape == (7,)
    assert weights[4].item() == pytest.approx(n_tokens / (n_classes * 4))
    assert weights[5].item() == pytest.approx(n_tokens / (n_classes * 2))
    assert weights[3].item() == pytest.approx(n_tokens / (n_classes * 3))
    assert weights[[0, 1, 2, 6]].tolist() == [1.0, 1.0, 1.0, 1.0]


def test_class_weighted_run_trains(small_corpus, tmp_path):
    result = fit(small_corpus, {**TINY, "USE_CLASS_WEIGHTS": True, "EPOCHS": 3, "LR": 0.01},
                 tmp_path / "run", device="cpu", progress=False)
    losses = [row["train_loss"] for row in result.history]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0]


def test_text_output_mode(small_corpus, tmp_path):
    result = fit(small_corpus, {**TINY, "OUTPUT_MODE": "text", "EPOCHS": 1}, tmp_path / "run",
                 device="cpu", progress=False)
    assert result.test_metrics["output_mode"] == "text"
    vocabulary = json.loads((tmp_path / "run" / "vocab.json").read_text(encoding="utf-8"))["tokens"]
    corpus = Corpus.open(small_corpus)
    first_words = split_text(corpus.split("train")[0].text)
    assert first_words
    assert all(word in vocabulary for word in first_words)


def test_existing_run_folder_rejected(small_corpus, tmp_path):
    run = tmp_path / "run"
    fit(small_corpus, {**TINY, "EPOCHS": 1}, run, device="cpu", progress=False)
    with pytest.raises(RunFolderError, match="--resume .* --force"):
        fit(small_corpus, {**TINY, "EPOCHS": 1}, run, device="cpu", progress=False)

    result = fit(small_corpus, {**TINY, "EPOCHS": 1, "SEED": 9}, run, device="cpu",
                 progress=False, force=True)
    assert json.loads((run / "config.json").read_text(encoding="utf-8"))["seed"] == 9
    assert len(result.history) == 1


def test_force_keeps_folders_that_are_not_runs(small_corpus, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "thesis.tex").write_text("draft")
    with pytest.raises(RunFolderError, match="replaces only run folders"):
        fit(small_corpus, TINY, folder, device="cpu", progress=False, force=True)
    assert (folder / "thesis.tex").read_text() == "draft"


def test_resume_needs_a_checkpoint(small_corpus, tmp_path):
    with pytest.raises(RunFolderError, match="cannot resume: .*checkpoint.pt not found"):
        fit(small_corpus, TINY, tmp_path / "empty", device="cpu", progress=False, resume=True)


def test_resume_rejects_changed_config(small_corpus, tmp_path):
    run = tmp_path / "run"
    fit(small_corpus, {**TINY, "EPOCHS": 1}, run, device="cpu", progress=False)
    with pytest.raises(ConfigError, match="D_MODEL 16 -> 32"):
        fit(small_corpus, {**TINY, "D_MODEL": 32}, run, device="cpu", progress=False, resume=True)


def test_missing_val_split_rejected(small_corpus, tmp_path):
    corpus = Corpus.open(small_corpus)
    root = tmp_path / "no_val"
    write_corpus(root, corpus.metadata, corpus.split("train")[:4], corpus.load_pose)
    with pytest.raises(ValueError, match="split 'val' .* has no usable samples"):
        fit(root, TINY, tmp_path / "run", device="cpu", progress=False)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), *args],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
    )


def test_cli_trains_and_evaluates(small_corpus, tmp_path):
    config_path = tmp_path / "tiny.json"
    config_path.write_text(json.dumps(TINY))
    run = tmp_path / "run"

    trained = run_cli("--corpus", str(small_corpus), "--config", str(config_path), "--out", str(run),
                      "--device", "cpu", "--epochs", "1", "--no-progress")
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.strip() == str(run)
    assert len(read_csv(run / "metrics.csv")) == 1

    evaluated = run_cli("evaluate", "--run", str(run), "--decode", "beam", "--beam-size", "2",
                        "--device", "cpu", "--no-progress")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "tokenize='none'" in evaluated.stdout
    metrics = json.loads((run / "metrics_test_beam2.json").read_text(encoding="utf-8"))
    assert metrics["decode"] == "beam"
    assert metrics["beam_size"] == 2


def test_cli_bad_config_names_key(small_corpus, tmp_path):
    config_path = tmp_path / "bad.json"
    config_path.write_text(json.dumps({**TINY, "LEARNING_RATE": 0.1}))
    completed = run_cli("--corpus", str(small_corpus), "--config", str(config_path),
                        "--out", str(tmp_path / "run"), "--device", "cpu")
    assert completed.returncode == 2
    assert "unknown key 'LEARNING_RATE'" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "run").exists()


class StudyVocabulary:
    """Stand-in for the study's tokenizer class, pickled into a Lightning-style checkpoint."""

    def __init__(self, words):
        specials = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3}
        self.token_to_idx = {**specials, **{word: index + 4 for index, word in enumerate(words)}}


def test_cli_imports_study_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = SignTransformer(n_features=150, vocab_size=6, d_model=16, nhead=8,
                            dim_feedforward=32, max_len=300)
    study_config = {"D_MODEL": 16, "NUM_ENCODER_LAYERS": 1, "NUM_DECODER_LAYERS": 1,
                    "DROPOUT": 0.2, "LR": 0.001, "OUTPUT_MODE": "gloss"}
    checkpoint = {
        "state_dict": {f"model.{name}": tensor for name, tensor in model.state_dict().items()},
        "hyper_parameters": {"config": study_config, "tokenizer": StudyVocabulary(["ΓΕΙΑ", "ΕΣΥ"])},
        "epoch": 41,
    }
    study_file = tmp_path / "study.ckpt"
    torch.save(checkpoint, study_file)

    completed = run_cli("import-checkpoint", str(study_file), "--out", str(tmp_path / "run"))
    assert completed.returncode == 0, completed.stderr
    loaded = load_run(tmp_path / "run", device="cpu")
    assert loaded.tokenizer.tokens[4:] == ["ΓΕΙΑ", "ΕΣΥ"]
    assert loaded.config.dim_feedforward == 32
    for name, tensor in model.state_dict().items():
        if not name.endswith("pe.pe"):
            assert torch.equal(tensor, loaded.model.state_dict()[name]), name


@pytest.mark.parametrize("output_mode", ["gloss", "text"])
def test_trains_on_real_phoenix_skeletons(real_data, tmp_path, output_mode):
    from signattention_core.corpus.importers import import_skels

    corpus_dir = tmp_path / "phoenix"
    import_skels(real_data / "phoenix14t-skels", corpus_dir, name="phoenix14t-skels")
    # German translations run past the study's 20-token limit, so no sample is dropped here
    config = {**TINY, "OUTPUT_MODE": output_mode, "MAX_TOKENS": None, "EPOCHS": 2, "LR": 0.01}
    result = fit(corpus_dir, config, tmp_path / "run", device="cpu", progress=False)

    assert all(np.isfinite(row["train_loss"]) for row in result.history)
    assert result.test_metrics["n_samples"] == 5

    translations = read_csv(tmp_path / "run" / "translations.csv")
    test_samples = Corpus.open(corpus_dir).split("test")
    for row, sample in zip(translations, test_samples, strict=True):
        assert row["id"] == sample.id
        if output_mode == "gloss":
            assert row["reference"] == sample.gloss
        else:
            assert row["reference"] == " ".join(split_text(sample.text))


@pytest.mark.slow
def test_demo_config_reaches_exact_match(tmp_path):
    # minutes on a CPU; benchmarks/bench_training.py --demo-run reports the time as well
    corpus_dir = write_demo_corpus(tmp_path / "demo", seed=0, size="default")
    result = fit(corpus_dir, REPO_ROOT / "configs" / "demo.json", tmp_path / "run",
                 device="cpu", progress=False)
    assert result.test_metrics["n_samples"] == len(Corpus.open(corpus_dir).split("test"))
    assert result.test_metrics["exact_match"] >= 0.6
