"""Tests for the training configuration."""

import json
from pathlib import Path

import pytest

from signattention_core.config import STUDY_TRANSFORMS, ConfigError, TrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

STUDY_KEYS = {
    "INPUT_MODE": "pose",
    "OUTPUT_MODE": "gloss",
    "BATCH_SIZE": 64,
    "MAX_FRAMES": 220,
    "SAMPLE_RATE": 3,
    "MAX_TOKENS": 20,
    "LANDMARKS_USED": ["body", "lhand", "rhand"],
    "USE_3D": False,
    "TRANSFORMS": list(STUDY_TRANSFORMS),
    "D_MODEL": 16,
    "DROPOUT": 0.2,
    "NUM_ENCODER_LAYERS": 1,
    "NUM_DECODER_LAYERS": 1,
    "USE_CLASS_WEIGHTS": False,
    "LR": 0.001,
}


def test_study_keys_give_defaults():
    config = TrainConfig.from_dict(STUDY_KEYS)
    assert config == TrainConfig()
    assert config.nhead == 8
    assert config.dim_feedforward == 2048
    assert config.patience == 30


def test_lower_case_keys_accepted():
    config = TrainConfig.from_dict({"d_model": 32, "nhead": 4, "epochs": 5})
    assert config.d_model == 32
    assert config.nhead == 4
    assert config.epochs == 5


def test_unknown_key_is_named():
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({"D_MODLE": 16})
    message = str(caught.value)
    assert "'D_MODLE'" in message
    assert "did you mean 'D_MODEL'" in message
    assert "accepted keys" in message
    assert "USE_CLASS_WEIGHTS" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("OUTPUT_MODE", "video", "accepted: gloss, text"),
        ("INPUT_MODE", "rgb", "accepted: pose"),
        ("BATCH_SIZE", 0, "expected an integer >= 1"),
        ("BATCH_SIZE", 2.5, "expected an integer >= 1"),
        ("USE_3D", "yes", "expected true or false"),
        ("DROPOUT", 1.0, "expected a probability in [0, 1)"),
        ("LR", 0, "expected a positive learning rate"),
        ("LANDMARKS_USED", ["body", "hands"], "accepted: body, face, lhand, rhand"),
        ("LANDMARKS_USED", "body", "expected a list of names"),
        ("TRANSFORMS", ["FilterLandmarks", "Jitter"], "unknown transforms ['Jitter']"),
        ("TRANSFORMS", ["FilterLandmarks", "FlattenKeypoints"], "missing transforms"),
        ("NORMALIZE", "zscore", "accepted: none, shoulders"),
        ("PATIENCE", -1, "expected an integer >= 1"),
    ],
)
def test_bad_value_names_key_and_accepted(key, value, expected):
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({key: value})
    message = str(caught.value)
    assert f"{key}:" in message
    assert expected in message


def test_every_problem_listed_at_once():
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({"LR": -1, "BATCH_SIZE": "big", "COLOUR": "red"})
    message = str(caught.value)
    assert "LR:" in message
    assert "BATCH_SIZE:" in message
    assert "'COLOUR'" in message


def test_duplicate_spellings_rejected():
    with pytest.raises(ConfigError, match="both set 'lr'"):
        TrainConfig.from_dict({"LR": 0.1, "lr": 0.2})


def test_heads_must_divide_width():
    with pytest.raises(ConfigError, match="D_MODEL 20 is not divisible by NHEAD 8"):
        TrainConfig.from_dict({"D_MODEL": 20})


def test_sample_rate_needs_sampler():
    transforms = [name for name in STUDY_TRANSFORMS if name != "RandomSampleFrames"]
    with pytest.raises(ConfigError, match="SAMPLE_RATE 3 has no effect"):
        TrainConfig.from_dict({"TRANSFORMS": transforms})
    config = TrainConfig.from_dict({"TRANSFORMS": transforms, "SAMPLE_RATE": 1})
    assert config.transform_config().sample_rate == 1


def test_optional_limits_accept_null():
    config = TrainConfig.from_dict({"MAX_TOKENS": None, "PATIENCE": None})
    assert config.max_tokens is None
    assert config.patience is None


def test_dict_round_trip():
    config = TrainConfig(d_model=32, nhead=4, landmarks_used=("body", "rhand"), seed=7)
    data = config.to_dict()
    assert data["landmarks_used"] == ["body", "rhand"]
    assert json.loads(json.dumps(data)) == data
    assert TrainConfig.from_dict(data) == config


def test_replace_validates():
    config = TrainConfig().replace(epochs=3)
    assert config.epochs == 3
    with pytest.raises(ConfigError, match="epochs: expected an integer >= 1, got 0"):
        TrainConfig().replace(epochs=0)


def test_yaml_and_json_files(tmp_path):
    yaml_path = tmp_path / "run.yaml"
    yaml_path.write_text("# tiny run\nD_MODEL: 32\nNHEAD: 4\nLANDMARKS_USED: [body, lhand]\n")
    config = TrainConfig.from_file(yaml_path)
    assert config.d_model == 32
    assert config.landmarks_used == ("body", "lhand")

    json_path = tmp_path / "run.json"
    json_path.write_text(json.dumps({"EPOCHS": 4}))
    assert TrainConfig.from_file(json_path).epochs == 4


def test_file_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{ D_MODEL: 16 ")
    with pytest.raises(ConfigError, match="broken.json: not valid JSON"):
        TrainConfig.from_file(broken)

    bad_key = tmp_path / "bad.json"
    bad_key.write_text(json.dumps({"HEADS": 4}))
    with pytest.raises(ConfigError, match=r"(?s)bad.json: .*unknown key 'HEADS'; did you mean 'NHEAD'"):
        TrainConfig.from_file(bad_key)

    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.from_file(tmp_path / "missing.json")

    toml = tmp_path / "run.toml"
    toml.write_text("D_MODEL = 16")
    with pytest.raises(ConfigError, match="use .json, .yaml or .yml"):
        TrainConfig.from_file(toml)


def test_transform_config_maps_landmarks():
    transform = TrainConfig(use_3d=True, sample_rate=2, max_frames=50).transform_config()
    assert transform.landmarks == ("body", "left_hand", "right_hand")
    assert transform.use_3d is True
    assert transform.sample_rate == 2
    assert transform.max_frames == 50


@pytest.mark.parametrize("name", ["study_gsl.json", "demo.json"])
def test_shipped_configs_load(name):
    config = TrainConfig.from_file(CONFIGS / name)
    assert config.input_mode == "pose"


def test_study_config_matches_study():
    config = TrainConfig.from_file(CONFIGS / "study_gsl.json")
    assert config == TrainConfig.from_dict(STUDY_KEYS).replace(epochs=config.epochs, seed=config.seed)
