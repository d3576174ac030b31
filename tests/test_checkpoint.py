"""Tests for run-folder checkpoints, study checkpoint import and device choice."""

import io
import json
import os
import pickle

import pytest
import torch

from signattention_core.checkpoint import (
    CheckpointError,
    PickledObject,
    _RestrictedUnpickler,
    build_model,
    choose_device,
    import_study_checkpoint,
    load_checkpoint,
    load_run,
    save_checkpoint,
)
from signattention_core.config import TrainConfig
from signattention_core.model import SignTransformer, sinusoidal_table
from signattention_core.tokenizer import Tokenizer

# the study's setting: body and both hands, x and y, so 75 keypoints * 2
N_FEATURES = 150
WORDS = ["ΕΓΩ(1)", "ΠΟΙΟΣ;", "ΕΝΟΧΛΩ_ΕΣΕΝΑ", "ΚΑΤΩ(2)", "ΝΑΙ"]

# calls that an unpickled study object would make if its code ran
CODE_RAN: list[str] = []


def record_call(name: str) -> str:
    CODE_RAN.append(name)
    return name


class StudyTokenizer:
    """Stand-in for the study's word tokenizer: a plain class with token_to_idx."""

    def __init__(self, words):
        self.token_to_idx = {"<pad>": 0, "<unk>": 1, "<sos>": 2, "<eos>": 3}
        for word in words:
            self.token_to_idx[word] = len(self.token_to_idx)
        self.idx_to_token = {index: token for token, index in self.token_to_idx.items()}

    def __setstate__(self, state):
        CODE_RAN.append("StudyTokenizer.__setstate__")
        self.__dict__.update(state)


class SideEffect:
    """An object whose unpickling would call ``record_call``."""

    def __reduce__(self):
        return (record_call, ("SideEffect.__reduce__",))


class StudyHparams(dict):
    """A dict subclass like Lightning's AttributeDict."""


class StudyNamespace:
    """A config object like argparse.Namespace, its fields in __dict__."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


@pytest.fixture(autouse=True)
def clear_code_ran():
    CODE_RAN.clear()
    yield
    CODE_RAN.clear()


def tiny_model(vocab_size: int, nhead: int = 2, seed: int = 0) -> SignTransformer:
    torch.manual_seed(seed)
    return SignTransformer(
        N_FEATURES, vocab_size, d_model=16, nhead=nhead, num_encoder_layers=1,
        num_decoder_layers=1, dim_feedforward=32, dropout=0.2,
    ).eval()


def tiny_config(**changes) -> TrainConfig:
    return TrainConfig.from_dict({"d_model": 16, "nhead": 2, "dim_feedforward": 32, **changes})


def sample_batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    src = torch.randn(3, 10, N_FEATURES, generator=generator)  # (B, P, E)
    mask = torch.zeros(3, 10, dtype=torch.bool)  # (B, P)
    mask[1, 6:] = True
    mask[2, 3:] = True
    tgt = torch.tensor([[2, 4, 5, 6], [2, 7, 3, 0], [2, 8, 4, 3]])  # (B, N)
    return src, mask, tgt


def logits(model, batch):
    with torch.no_grad():
        return model(*batch)


def write_run(run_dir, model, config, tokenizer, which=("best.pt", "checkpoint.pt")):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict()), encoding="utf-8")
    tokenizer.save(run_dir / "vocab.json")
    (run_dir / "corpus.json").write_text(json.dumps({"name": "demo", "path": "corpora/demo"}))
    for name in which:
        save_checkpoint(run_dir / name, model, config, tokenizer, epoch=5, extra={"val_loss": 1.25})


# ---------------------------------------------------------------- save and load


def test_checkpoint_round_trip(tmp_path):
    tokenizer = Tokenizer.fit([WORDS])
    model = tiny_model(len(tokenizer))
    config = tiny_config()
    path = tmp_path / "checkpoint.pt"

    save_checkpoint(path, model, config, tokenizer, epoch=3, extra={"val_loss": 0.5})
    payload = torch.load(path, weights_only=True)
    restored = build_model(payload)

    assert set(payload) >= {"state_dict", "epoch", "config", "tokens", "n_features", "package_version"}
    assert payload["epoch"] == 3
    assert payload["tokens"] == tokenizer.tokens
    assert payload["n_features"] == N_FEATURES
    assert payload["config"] == config.to_dict()
    assert payload["val_loss"] == 0.5
    assert not restored.training
    for key, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key
    torch.testing.assert_close(logits(restored, sample_batch()), logits(model, sample_batch()), atol=0, rtol=0)


def test_checkpoint_write_is_atomic(tmp_path):
    tokenizer = Tokenizer.fit([WORDS])
    model = tiny_model(len(tokenizer))
    path = tmp_path / "best.pt"

    save_checkpoint(path, model, tiny_config(), tokenizer, epoch=1)
    save_checkpoint(path, model, tiny_config(), tokenizer, epoch=2)

    assert [item.name for item in tmp_path.iterdir()] == ["best.pt"]
    assert load_checkpoint(path)["epoch"] == 2


def test_save_rejects_pickled_extra(tmp_path):
    tokenizer = Tokenizer.fit([WORDS])
    model = tiny_model(len(tokenizer))

    with pytest.raises(CheckpointError, match=r"extra\['history'\]\[0\] is a set"):
        save_checkpoint(tmp_path / "c.pt", model, tiny_config(), tokenizer, 1, extra={"history": [{1}]})
    with pytest.raises(CheckpointError, match="extra key 'tokens' is reserved"):
        save_checkpoint(tmp_path / "c.pt", model, tiny_config(), tokenizer, 1, extra={"tokens": []})
    assert not (tmp_path / "c.pt").exists()


def test_save_rejects_vocabulary_mismatch(tmp_path):
    tokenizer = Tokenizer.fit([WORDS])
    model = tiny_model(len(tokenizer) + 1)

    with pytest.raises(CheckpointError, match="vocabulary has 9 tokens but the model's generator has 10"):
        save_checkpoint(tmp_path / "c.pt", model, tiny_config(), tokenizer, epoch=1)


def test_save_rejects_config_mismatch(tmp_path):
    tokenizer = Tokenizer.fit([WORDS])
    model = tiny_model(len(tokenizer))

    with pytest.raises(CheckpointError, match="nhead 4 in the config but 2 in the model"):
        save_checkpoint(tmp_path / "c.pt", model, tiny_config(nhead=4), tokenizer, epoch=1)


def test_save_accepts_plain_dict_and_token_list(tmp_path):
    tokens = ["<pad>", "<unk>", "<bos>", "<eos>", "A", "B"]
    model = tiny_model(len(tokens))

    save_checkpoint(tmp_path / "c.pt", model, {"d_model": 16}, tokens, epoch=0)

    assert load_checkpoint(tmp_path / "c.pt")["tokens"] == tokens


def test_load_checkpoint_rejects_pickles(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"state_dict": {}, "tokenizer": StudyTokenizer(WORDS)}, path)

    with pytest.raises(CheckpointError, match="import-checkpoint"):
        load_checkpoint(path)
    assert CODE_RAN == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"could not be read as a PyTorch file \(EOFError"),
        (b"garbage\n", "is not a PyTorch checkpoint file"),
    ],
)
def test_load_checkpoint_damaged_file(tmp_path, content, message):
    path = tmp_path / "best.pt"
    path.write_bytes(content)

    with pytest.raises(CheckpointError, match=message) as error:
        load_checkpoint(path)
    # torch's advice to retry with weights_only=False must not reach the user
    assert "weights_only` set to `False" not in str(error.value)


def test_load_checkpoint_truncated_file(tmp_path):
    tokenizer = Tokenizer.fit([WORDS])
    path = save_checkpoint(tmp_path / "best.pt", tiny_model(len(tokenizer)), tiny_config(), tokenizer, epoch=1)
    path.write_bytes(path.read_bytes()[:3000])

    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load_checkpoint(path)


def test_load_run_rejects_nan_weights(tmp_path):
    tokenizer = Tokenizer.fit([WORDS])
    model = tiny_model(len(tokenizer))
    with torch.no_grad():
        model.generator.weight[0, 0] = float("nan")
    write_run(tmp_path / "run", model, tiny_config(), tokenizer)

    with pytest.raises(CheckpointError, match=r"weights \['generator.weight'\] contain NaN or infinite"):
        load_run(tmp_path / "run")


def test_load_run_reads_folder(tmp_path):
    tokenizer = Tokenizer.fit([WORDS])
    model = tiny_model(len(tokenizer))
    config = tiny_config()
    write_run(tmp_path / "run", model, config, tokenizer)

    run = load_run(tmp_path / "run")

    assert run.config == config
    assert run.tokenizer == tokenizer
    assert run.transform == config.transform_config()
    assert run.info["epoch"] == 5
    assert run.info["val_loss"] == 1.25
    assert run.info["corpus"] == {"name": "demo", "path": "corpora/demo"}
    assert run.info["device"] == "cpu"
    assert not run.model.training
    torch.testing.assert_close(logits(run.model, sample_batch()), logits(model, sample_batch()), atol=0, rtol=0)


def test_load_run_missing_best_names_last(tmp_path):
    tokenizer = Tokenizer.fit([WORDS])
    write_run(tmp_path / "run", tiny_model(len(tokenizer)), tiny_config(), tokenizer, which=("checkpoint.pt",))

    with pytest.raises(CheckpointError, match="choose which='last'"):
        load_run(tmp_path / "run")
    assert load_run(tmp_path / "run", which="last").info["epoch"] == 5


def test_load_run_rejects_changed_vocab(tmp_path):
    tokenizer = Tokenizer.fit([WORDS])
    write_run(tmp_path / "run", tiny_model(len(tokenizer)), tiny_config(), tokenizer)
    Tokenizer.fit([list(reversed(WORDS))]).save(tmp_path / "run" / "vocab.json")

    with pytest.raises(CheckpointError, match="vocab.json does not match"):
        load_run(tmp_path / "run")


def test_load_run_rejects_feature_mismatch(tmp_path):
    tokenizer = Tokenizer.fit([WORDS])
    write_run(tmp_path / "run", tiny_model(len(tokenizer)), tiny_config(use_3d=True), tokenizer)

    with pytest.raises(CheckpointError, match="150 features per position but the config's transform gives 225"):
        load_run(tmp_path / "run")


def test_load_run_invalid_choice(tmp_path):
    with pytest.raises(CheckpointError, match="accepted: best, last"):
        load_run(tmp_path, which="final")


# ---------------------------------------------------------------- study checkpoint import


STUDY_CONFIG = {
    "INPUT_MODE": "pose",
    "OUTPUT_MODE": "gloss",
    "BATCH_SIZE": 64,
    "MAX_FRAMES": 220,
    "SAMPLE_RATE": 3,
    "MAX_TOKENS": 20,
    "LANDMARKS_USED": ["body", "lhand", "rhand"],
    "USE_3D": False,
    "TRANSFORMS": [
        "FilterLandmarks", "RandomSampleFrames", "PadTruncateFrames",
        "ReplaceNansWithZeros", "FlattenKeypoints",
    ],
    "D_MODEL": 16,
    "DROPOUT": 0.2,
    "NUM_ENCODER_LAYERS": 1,
    "NUM_DECODER_LAYERS": 1,
    "USE_CLASS_WEIGHTS": False,
    "LR": 0.001,
    "DATASET_PATH": "/data/gsl",
}


def study_checkpoint(path, model, config=None, tokenizer=None, hyper_parameters=None):
    """Write a Lightning-style checkpoint as the study's training did, with regular pickle.

    The positional tables are cut to 230 and 22 rows, lengths the study sized by its data.
    """
    state_dict = {f"model.{key}": value.clone() for key, value in model.state_dict().items()}
    state_dict["model.src_pe.pe"] = sinusoidal_table(230, 16)
    state_dict["model.tgt_pe.pe"] = sinusoidal_table(22, 16)
    state_dict["criterion.weight"] = torch.ones(model.vocab_size)
    if hyper_parameters is None:
        hyper_parameters = {
            "config": dict(STUDY_CONFIG if config is None else config),
            "tokenizer": tokenizer if tokenizer is not None else StudyTokenizer(WORDS),
        }
    checkpoint = {
        "epoch": 41,
        "global_step": 5700,
        "pytorch-lightning_version": "2.2.1",
        "state_dict": state_dict,
        "hyper_parameters": hyper_parameters,
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.001, "params": [0, 1]}]}],
        "callbacks": {"EarlyStopping{'monitor': 'val_acc'}": {"wait_count": 3, "best_score": torch.tensor(0.8)}},
        "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 41}}}},
    }
    torch.save(checkpoint, path)
    return path


def test_study_checkpoint_needs_restricted_unpickler(tmp_path):
    path = study_checkpoint(tmp_path / "study.ckpt", tiny_model(9, nhead=8))

    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_study_state_dict_keys_load(tmp_path):
    study_model = tiny_model(9, nhead=8, seed=3)
    path = study_checkpoint(tmp_path / "study.ckpt", study_model)

    out = import_study_checkpoint(path, tmp_path / "runs" / "study")
    run = load_run(out)

    assert out == tmp_path / "runs" / "study"
    assert run.model.model_args["nhead"] == 8
    assert run.config.nhead == 8
    assert run.config.d_model == 16
    assert run.config.dim_feedforward == 32
    assert run.config.landmarks_used == ("body", "lhand", "rhand")
    assert run.model.src_pe.pe.shape == (1, 1024, 16)
    torch.testing.assert_close(
        logits(run.model, sample_batch()), logits(study_model, sample_batch()), atol=0, rtol=0
    )
    assert CODE_RAN == []


def test_study_import_keeps_token_ids(tmp_path):
    study_tokenizer = StudyTokenizer(WORDS)
    path = study_checkpoint(tmp_path / "study.ckpt", tiny_model(9, nhead=8), tokenizer=study_tokenizer)

    run = load_run(import_study_checkpoint(path, tmp_path / "run"))

    for word, index in study_tokenizer.token_to_idx.items():
        if index >= 4:
            assert run.tokenizer.tokens[index] == word
    assert run.tokenizer.tokens[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert len(run.tokenizer) == 9


def test_study_import_writes_run_files(tmp_path):
    path = study_checkpoint(tmp_path / "study.ckpt", tiny_model(9, nhead=8))

    out = import_study_checkpoint(path, tmp_path / "run")

    assert sorted(item.name for item in out.iterdir()) == [
        "best.pt", "checkpoint.pt", "config.json", "corpus.json", "import.json", "vocab.json"
    ]
    assert json.loads((out / "corpus.json").read_text()) == {"name": None, "path": None}
    record = json.loads((out / "import.json").read_text())
    assert record["dropped_config_keys"] == ["DATASET_PATH"]
    assert record["nhead_source"] == "nn.Transformer default"
    assert record["tokenizer_class"].endswith("StudyTokenizer")
    assert record["lightning_epoch"] == 41
    config = json.loads((out / "config.json").read_text())
    assert config["d_model"] == 16
    payload = torch.load(out / "best.pt", weights_only=True)
    assert payload["epoch"] == 42
    assert payload["imported_from"]["sha256"] == record["sha256"]
    assert not list(tmp_path.glob(".run*"))


def test_study_import_reads_nhead_from_config(tmp_path):
    study_model = tiny_model(9, nhead=2, seed=5)
    path = study_checkpoint(tmp_path / "study.ckpt", study_model, config={**STUDY_CONFIG, "NHEAD": 2})

    run = load_run(import_study_checkpoint(path, tmp_path / "run"))

    assert run.model.model_args["nhead"] == 2
    torch.testing.assert_close(
        logits(run.model, sample_batch()), logits(study_model, sample_batch()), atol=0, rtol=0
    )


def test_study_import_nhead_argument(tmp_path):
    study_model = tiny_model(9, nhead=4, seed=6)
    path = study_checkpoint(tmp_path / "study.ckpt", study_model)

    run = load_run(import_study_checkpoint(path, tmp_path / "run", nhead=4))

    assert run.config.nhead == 4
    torch.testing.assert_close(
        logits(run.model, sample_batch()), logits(study_model, sample_batch()), atol=0, rtol=0
    )


def test_study_import_runs_no_pickled_code(tmp_path):
    hyper_parameters = StudyHparams(
        config=dict(STUDY_CONFIG), tokenizer=StudyTokenizer(WORDS), hook=SideEffect()
    )
    path = study_checkpoint(tmp_path / "study.ckpt", tiny_model(9, nhead=8), hyper_parameters=hyper_parameters)

    # the dict subclass arrives as a stand-in that keeps its items
    run = load_run(import_study_checkpoint(path, tmp_path / "run"))

    assert run.tokenizer.words == WORDS
    assert CODE_RAN == []


class OsSystemCall:
    """Pickles as a call to os.system, as a malicious checkpoint would."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_study_import_never_runs_os_system(tmp_path):
    marker = tmp_path / "code-ran"
    hyper_parameters = {
        "config": dict(STUDY_CONFIG),
        "tokenizer": StudyTokenizer(WORDS),
        "callback": OsSystemCall(f"touch {marker}"),
    }
    path = study_checkpoint(tmp_path / "study.ckpt", tiny_model(9, nhead=8), hyper_parameters=hyper_parameters)

    run = load_run(import_study_checkpoint(path, tmp_path / "run"))

    assert not marker.exists()
    assert run.tokenizer.words == WORDS
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(path)
    assert not marker.exists()


def test_study_checkpoint_top_level_call_rejected(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "study.ckpt"
    torch.save(OsSystemCall(f"touch {marker}"), path)

    with pytest.raises(CheckpointError, match=r"contains a (posix|nt)\.system, not a Lightning checkpoint dict"):
        import_study_checkpoint(path, tmp_path / "run")
    assert not marker.exists()


def test_study_checkpoint_truncated(tmp_path):
    path = study_checkpoint(tmp_path / "study.ckpt", tiny_model(9, nhead=8))
    data = path.read_bytes()

    for size in (0, 100, len(data) // 2):
        path.write_bytes(data[:size])
        with pytest.raises(CheckpointError, match="could not be read as a PyTorch Lightning checkpoint"):
            import_study_checkpoint(path, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_unpickler_stands_in_for_unknown_globals():
    # protocol 0: os.system('echo unsafe')
    data = b"cos\nsystem\n(S'echo unsafe'\ntR."

    result = _RestrictedUnpickler(io.BytesIO(data)).load()

    assert isinstance(result, PickledObject)
    assert result.qualified_name == "os.system"
    assert result.call_args == ("echo unsafe",)


@pytest.mark.parametrize("cls", ["collections\nOrderedDict", "torch.storage\nTypedStorage"])
def test_unpickler_rejects_build_on_class(cls):
    # protocol 0: BUILD with slot state (None, {"x": 1}) applied to the class object itself
    data = f"c{cls}\n(N(dS'x'\nI1\nstb.".encode()

    with pytest.raises(pickle.UnpicklingError, match="rejected BUILD"):
        _RestrictedUnpickler(io.BytesIO(data)).load()


def test_study_import_finds_nested_tokenizer(tmp_path):
    hyper_parameters = {
        "config": dict(STUDY_CONFIG),
        "data": {"tokenizer": StudyTokenizer(WORDS), "hook": SideEffect()},
    }
    path = study_checkpoint(tmp_path / "study.ckpt", tiny_model(9, nhead=8), hyper_parameters=hyper_parameters)

    run = load_run(import_study_checkpoint(path, tmp_path / "run"))

    assert run.tokenizer.words == WORDS
    assert CODE_RAN == []


def test_study_import_config_as_object(tmp_path):
    hyper_parameters = {"config": StudyNamespace(**STUDY_CONFIG, NHEAD=2), "tokenizer": StudyTokenizer(WORDS)}
    study_model = tiny_model(9, nhead=2, seed=8)
    path = study_checkpoint(tmp_path / "study.ckpt", study_model, hyper_parameters=hyper_parameters)

    run = load_run(import_study_checkpoint(path, tmp_path / "run"))

    assert run.config.nhead == 2
    assert run.config.max_tokens == 20
    torch.testing.assert_close(
        logits(run.model, sample_batch()), logits(study_model, sample_batch()), atol=0, rtol=0
    )


def test_study_import_config_disagrees(tmp_path):
    path = study_checkpoint(tmp_path / "study.ckpt", tiny_model(9, nhead=8), config={**STUDY_CONFIG, "D_MODEL": 32})

    with pytest.raises(CheckpointError, match="D_MODEL is 32 but the weights have 16"):
        import_study_checkpoint(path, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_study_import_feature_mismatch(tmp_path):
    path = study_checkpoint(tmp_path / "study.ckpt", tiny_model(9, nhead=8), config={**STUDY_CONFIG, "USE_3D": True})

    with pytest.raises(CheckpointError, match="150 features per position"):
        import_study_checkpoint(path, tmp_path / "run")


def test_study_import_wrong_special_ids(tmp_path):
    tokenizer = StudyTokenizer(WORDS)
    tokenizer.token_to_idx = {"<sos>": 0, "<unk>": 1, "<pad>": 2, "<eos>": 3,
                              **{word: index + 4 for index, word in enumerate(WORDS)}}
    path = study_checkpoint(tmp_path / "study.ckpt", tiny_model(9, nhead=8), tokenizer=tokenizer)

    with pytest.raises(CheckpointError, match="id 0 is '<sos>', expected PAD"):
        import_study_checkpoint(path, tmp_path / "run")


def test_study_import_vocab_size_mismatch(tmp_path):
    path = study_checkpoint(tmp_path / "study.ckpt", tiny_model(10, nhead=8))

    with pytest.raises(CheckpointError, match="generator has 10 outputs but token_to_idx has 9 tokens"):
        import_study_checkpoint(path, tmp_path / "run")


def test_study_import_rejects_other_positional_encoding(tmp_path):
    model = tiny_model(9, nhead=8)
    path = study_checkpoint(tmp_path / "study.ckpt", model)
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["state_dict"]["model.tgt_pe.pe"] = torch.randn(1, 22, 16)
    torch.save(checkpoint, path)

    with pytest.raises(CheckpointError, match="tgt_pe.pe is not the sinusoidal positional encoding"):
        import_study_checkpoint(path, tmp_path / "run")


def test_study_import_existing_folder(tmp_path):
    path = study_checkpoint(tmp_path / "study.ckpt", tiny_model(9, nhead=8))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("old")

    with pytest.raises(CheckpointError, match="already exists"):
        import_study_checkpoint(path, tmp_path / "run")
    assert (tmp_path / "run" / "keep.txt").exists()

    import_study_checkpoint(path, tmp_path / "run", overwrite=True)
    assert not (tmp_path / "run" / "keep.txt").exists()
    assert (tmp_path / "run" / "best.pt").is_file()


def test_study_import_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="study checkpoint not found"):
        import_study_checkpoint(tmp_path / "absent.ckpt", tmp_path / "run")


# ---------------------------------------------------------------- device choice


def test_choose_device_cpu_and_auto():
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device("auto").type in {"cuda", "mps", "cpu"}
    assert choose_device(None) == choose_device("auto")
    assert choose_device(torch.device("cpu")) == torch.device("cpu")


def test_choose_device_rejects_unknown():
    with pytest.raises(ValueError, match="accepted: auto, cuda, cuda:N, mps, cpu"):
        choose_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_choose_device_cuda_unavailable():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        choose_device("cuda:1")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_choose_device_plain_cuda_unavailable():
    with pytest.raises(ValueError, match="device 'cuda' is not available: PyTorch sees no CUDA GPU"):
        choose_device("cuda")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has Apple MPS")
def test_choose_device_mps_unavailable():
    with pytest.raises(ValueError, match="device 'mps' is not available"):
        choose_device("mps")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_choose_device_cuda_index():
    count = torch.cuda.device_count()

    assert choose_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match=f"has {count} CUDA GPU"):
        choose_device(f"cuda:{count}")
