"""Training configuration: one frozen dataclass read from JSON or YAML.

The file may use the study's upper-case keys (``D_MODEL``, ``LR``, ...) or the
lower-case field names below; both map to the same field. Unknown keys and
invalid values raise :class:`ConfigError`, which lists every problem together
with the accepted keys or values.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# landmark groups as the study names them, mapped to holistic.COMPONENTS names
LANDMARK_COMPONENTS = {
    "body": "body",
    "face": "face",
    "lhand": "left_hand",
    "rhand": "right_hand",
}

# transform pipeline of the study, in the order it applies them
STUDY_TRANSFORMS = (
    "FilterLandmarks",
    "RandomSampleFrames",
    "PadTruncateFrames",
    "ReplaceNansWithZeros",
    "FlattenKeypoints",
)

# the model needs selected landmarks, a bounded number of positions, no NaN and flat
# features, so the frame sampler is the only optional step
REQUIRED_TRANSFORMS = (
    "FilterLandmarks",
    "PadTruncateFrames",
    "ReplaceNansWithZeros",
    "FlattenKeypoints",
)

INPUT_MODES = ("pose",)
OUTPUT_MODES = ("gloss", "text")
NORMALIZE_MODES = ("none", "shoulders")


class ConfigError(ValueError):
    """Invalid training configuration; the message lists every problem found."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run.

    Defaults are the study's GSL setting. The study does not state its epoch
    limit, so ``epochs`` is this package's cap.
    """

    # model input; only pose keypoints are supported
    input_mode: str = "pose"
    # model output: "gloss" (the gloss column) or "text" (the text column as words and punctuation)
    output_mode: str = "gloss"
    # samples per optimisation step, summed over all processes of a distributed run
    batch_size: int = 64
    # maximum number of positions after frame sampling; longer samples are truncated
    max_frames: int = 220
    # one frame is kept per window of this many frames
    sample_rate: int = 3
    # samples with more output tokens than this are dropped from every split; None keeps all
    max_tokens: int | None = 20
    # landmark groups fed to the model: any of "body", "face", "lhand", "rhand"
    landmarks_used: tuple[str, ...] = ("body", "lhand", "rhand")
    # keep the z coordinate (3 features per keypoint instead of 2)
    use_3d: bool = False
    # the study's pose transforms in its order; only RandomSampleFrames may be left out
    transforms: tuple[str, ...] = STUDY_TRANSFORMS
    # model width D
    d_model: int = 16
    # dropout probability in the Transformer layers
    dropout: float = 0.2
    # number of encoder layers
    num_encoder_layers: int = 1
    # number of decoder layers
    num_decoder_layers: int = 1
    # attention heads H per layer; must divide d_model
    nhead: int = 8
    # width of the feed-forward block in each layer
    dim_feedforward: int = 2048
    # weight the loss with scikit-learn's "balanced" class weights of the training tokens
    use_class_weights: bool = False
    # Adam learning rate
    lr: float = 1e-3
    # maximum number of epochs; early stopping usually ends training sooner
    epochs: int = 300
    # epochs without a new best validation token accuracy before training stops; None turns
    # early stopping off
    patience: int | None = 30
    # seed for PyTorch, NumPy, Python's random module and the data order
    seed: int = 0
    # keypoint normalisation: "none" (raw 0-1 image coordinates) or "shoulders"
    normalize: str = "none"
    # DataLoader worker processes per training process; 0 loads in the main process
    num_workers: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> TrainConfig:
        """Build a config from upper- or lower-case keys; missing keys keep their defaults.

        Raises:
            ConfigError: lists unknown or duplicate keys, invalid values and the accepted ones.
        """
        where = f"{source}: " if source else ""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"{where}expected a mapping of configuration keys, got {type(data).__name__}"
            )

        fields = {field.name: field for field in dataclasses.fields(cls)}
        problems: list[str] = []
        values: dict[str, Any] = {}
        seen_as: dict[str, str] = {}
        for key, value in data.items():
            name = str(key).lower()
            if name not in fields:
                close = difflib.get_close_matches(name, fields, n=1)
                hint = f"; did you mean {close[0].upper()!r}?" if close else ""
                problems.append(f"unknown key {key!r}{hint}")
                continue
            if name in seen_as:
                problems.append(f"keys {seen_as[name]!r} and {key!r} both set {name!r}; keep one")
                continue
            seen_as[name] = str(key)
            try:
                values[name] = _coerce(name, value)
            except ValueError as error:
                problems.append(f"{key}: {error}")

        if not problems:
            merged = {**{name: getattr(_DEFAULTS, name) for name in fields}, **values}
            problems.extend(_check_combination(merged))

        if problems:
            message = f"{where}invalid training configuration:\n  - " + "\n  - ".join(problems)
            if any(problem.startswith("unknown key") for problem in problems):
                accepted = ", ".join(sorted(name.upper() for name in fields))
                message += f"\naccepted keys (upper or lower case): {accepted}"
            raise ConfigError(message)
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """Read a config from a .json, .yaml or .yml file."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"configuration file not found: {path}")
        text = path.read_text(encoding="utf-8")
        suffix = path.suffix.lower()
        if suffix == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{path}: not valid JSON: {error}") from error
        elif suffix in (".yaml", ".yml"):
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as error:
                raise ConfigError(f"{path}: not valid YAML: {error}") from error
        else:
            raise ConfigError(
                f"{path}: unsupported configuration format {suffix or '(no suffix)'!r}; "
                "use .json, .yaml or .yml"
            )
        return cls.from_dict(data if data is not None else {}, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Return lower-case keys and JSON types (lists for tuples)."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    def replace(self, **changes: Any) -> TrainConfig:
        """Return a copy with some fields changed, validated like from_dict."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    def transform_config(self):
        """Return the TransformConfig that turns poses into model inputs for this run."""
        from signattention_core.transforms import TransformConfig

        sample_rate = self.sample_rate if "RandomSampleFrames" in self.transforms else 1
        return TransformConfig(
            landmarks=tuple(LANDMARK_COMPONENTS[name] for name in self.landmarks_used),
            use_3d=self.use_3d,
            sample_rate=sample_rate,
            max_frames=self.max_frames,
            normalize=self.normalize,
        )


_DEFAULTS = TrainConfig()


def _coerce(name: str, value: Any) -> Any:
    """Check one value's type and range; return it in the field's canonical type."""
    if name in ("input_mode", "output_mode", "normalize"):
        choices = {"input_mode": INPUT_MODES, "output_mode": OUTPUT_MODES, "normalize": NORMALIZE_MODES}[name]
        if not isinstance(value, str) or value.lower() not in choices:
            raise ValueError(f"invalid value {value!r}; accepted: {', '.join(choices)}")
        return value.lower()

    if name in ("use_3d", "use_class_weights"):
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value

    if name in ("batch_size", "max_frames", "sample_rate", "d_model", "num_encoder_layers",
                "num_decoder_layers", "nhead", "dim_feedforward", "epochs"):
        return _integer(value, minimum=1)
    if name in ("max_tokens", "patience"):
        return None if value is None else _integer(value, minimum=1)
    if name == "seed":
        return _integer(value, minimum=0)
    if name == "num_workers":
        return _integer(value, minimum=0)

    if name == "dropout":
        number = _number(value)
        if not 0.0 <= number < 1.0:
            raise ValueError(f"expected a probability in [0, 1), got {value!r}")
        return number
    if name == "lr":
        number = _number(value)
        if number <= 0.0:
            raise ValueError(f"expected a positive learning rate, got {value!r}")
        return number

    if name == "landmarks_used":
        names = _string_list(value)
        unknown = [item for item in names if item not in LANDMARK_COMPONENTS]
        if unknown:
            raise ValueError(
                f"unknown landmark groups {unknown}; accepted: {', '.join(LANDMARK_COMPONENTS)}"
            )
        if not names:
            raise ValueError(f"expected at least one of {', '.join(LANDMARK_COMPONENTS)}")
        if len(set(names)) != len(names):
            raise ValueError(f"landmark groups are repeated in {names}; list each once")
        return tuple(names)
    if name == "transforms":
        names = _string_list(value)
        unknown = [item for item in names if item not in STUDY_TRANSFORMS]
        if unknown:
            raise ValueError(f"unknown transforms {unknown}; accepted: {', '.join(STUDY_TRANSFORMS)}")
        missing = [item for item in REQUIRED_TRANSFORMS if item not in names]
        if missing:
            raise ValueError(
                f"missing transforms {missing}; the model needs {', '.join(REQUIRED_TRANSFORMS)} "
                "and RandomSampleFrames is optional"
            )
        if list(names) != [item for item in STUDY_TRANSFORMS if item in names]:
            raise ValueError(f"transforms must follow the order {', '.join(STUDY_TRANSFORMS)}")
        return tuple(names)

    raise AssertionError(f"no check for field {name!r}")


def _check_combination(values: Mapping[str, Any]) -> list[str]:
    """Return problems that involve more than one field."""
    problems = []
    if values["d_model"] % values["nhead"] != 0:
        problems.append(
            f"D_MODEL {values['d_model']} is not divisible by NHEAD {values['nhead']}; "
            "choose a head count that divides the model width"
        )
    if "RandomSampleFrames" not in values["transforms"] and values["sample_rate"] != 1:
        problems.append(
            f"SAMPLE_RATE {values['sample_rate']} has no effect without RandomSampleFrames; "
            "set SAMPLE_RATE to 1 or add RandomSampleFrames to TRANSFORMS"
        )
    return problems


def _integer(value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"expected an integer >= {minimum}, got {value!r}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a list of names, got {value!r}")
    if not all(isinstance(item, str) for item in value):
        raise ValueError(f"expected a list of names, got {value!r}")
    return list(value)
