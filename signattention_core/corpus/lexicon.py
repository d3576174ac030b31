"""Isolated-sign lexicons and continuous sentences composed from them.

Continuous corpora with annotated gloss boundaries are rare. Concatenating
real isolated signs gives sentences whose gold spans are exact, because the
composer records where each sign starts and ends. Two lexicon layouts are read:

- a JSON lexicon: `metadata.json` (with `signs` and `face_indices`) and
  `signs/<gloss>.json`, each holding `fps` and `frames[]` of
  `{pose: 33, face: reduced, left_hand: 21, right_hand: 21}` points as
  `[x, y, z]` in 0-1 image coordinates, `null` where a part was not detected;
- a `.pose` lexicon: `.pose` files, listed in `index.csv` (`path`, `glosses`)
  when there is one, otherwise named after their gloss.

Gloss labels are upper-cased, and spaces inside a label become `_`
(`thank you` reads as `THANK_YOU`), because a gloss is one token.

`compose_sentences` resamples every sign to one frame rate, aligns signers'
shoulders, varies speed and movement amplitude per rendition, and
interpolates transitions between signs. `write_concat_corpus` writes the
result as a corpus folder with gold spans.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from signattention_core import holistic
from signattention_core.corpus.importers import imported_metadata
from signattention_core.corpus.layout import CorpusError, Sample, write_corpus
from signattention_core.text import normalize_text

logger = logging.getLogger(__name__)

_LEFT_SHOULDER = holistic.point_index("body", "LEFT_SHOULDER")
_RIGHT_SHOULDER = holistic.point_index("body", "RIGHT_SHOULDER")

# points whose movement the amplitude factor scales: arms and both hands
_MOVING_POINTS = np.array(
    [holistic.point_index("body", name) for name in holistic.BODY_NAMES[13:23]]
    + list(range(holistic.COMPONENTS["left_hand"].start, holistic.N_POINTS))
)


@dataclass(frozen=True)
class LexiconSign:
    """One isolated sign: its gloss and pose."""

    gloss: str  # normalised gloss label
    pose: np.ndarray  # (F, 543, 3) float32, NaN where not detected, x and y in 0-1
    fps: float  # frames per second of the recording
    source: str  # file the sign was read from


@dataclass(frozen=True)
class ConcatConfig:
    """Settings for composing sentences from isolated signs."""

    seed: int = 0  # seeds the choice of signs, speeds, amplitudes and transitions
    n_sentences: int = 40  # distinct sentences (gloss sequences) to compose
    min_length: int = 2  # minimum number of glosses in a sentence
    max_length: int = 5  # maximum number of glosses in a sentence
    renditions: int = 4  # performances of each sentence, each with its own speed and amplitude
    fps: float = 30.0  # frame rate every sign is resampled to
    speed_range: tuple[float, float] = (0.8, 1.25)  # playback speed factor per sign and rendition
    amplitude_range: tuple[float, float] = (0.85, 1.15)  # scale of arm and hand movement per rendition
    transition_frames: tuple[int, int] = (4, 10)  # interpolated frames between two signs, inclusive range
    rest_frames: int = 3  # frames holding the first and last pose at each end

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError(f"sentence length range {self.min_length}-{self.max_length} is invalid; "
                             "use 1 <= min_length <= max_length, e.g. 2-5")
        if self.n_sentences < 1 or self.renditions < 1:
            raise ValueError(f"n_sentences {self.n_sentences} and renditions {self.renditions} must be at least 1")
        if not 0 < self.speed_range[0] <= self.speed_range[1]:
            raise ValueError(f"speed_range {self.speed_range} must be positive and increasing, e.g. (0.8, 1.25)")
        if not 0 < self.amplitude_range[0] <= self.amplitude_range[1]:
            raise ValueError(f"amplitude_range {self.amplitude_range} must be positive and increasing")
        if not 0 <= self.transition_frames[0] <= self.transition_frames[1]:
            raise ValueError(f"transition_frames {self.transition_frames} must be a non-negative range")
        if self.fps <= 0:
            raise ValueError(f"fps {self.fps} must be positive")


# ---------------------------------------------------------------- reading lexicons


def gloss_label(name: str) -> str:
    """Return the gloss of a sign name: normalised, upper-cased, with inner spaces as `_`."""
    return normalize_text(name).upper().replace(" ", "_")


def read_json_sign(path: Path, face_indices: list[int], gloss: str | None = None) -> LexiconSign:
    """Read one sign of a JSON lexicon into the Holistic layout."""
    try:
        content = json.loads(path.read_text(encoding="utf-8-sig"))
        frames = content["frames"]
        fps = float(content.get("fps") or 30.0)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorpusError(f"{path} is not a readable sign file ({exc}); expected JSON with 'fps' and 'frames'") from exc
    if not frames:
        raise CorpusError(f"{path} has no frames; remove it from the lexicon")

    pose = np.full((len(frames), holistic.N_POINTS, 3), np.nan, dtype=np.float32)
    face_targets = holistic.COMPONENTS["face"].start + np.asarray(face_indices, dtype=np.int64)
    parts = {
        "pose": np.arange(holistic.COMPONENTS["body"].start, holistic.COMPONENTS["body"].stop),
        "face": face_targets,
        "left_hand": np.arange(holistic.COMPONENTS["left_hand"].start, holistic.COMPONENTS["left_hand"].stop),
        "right_hand": np.arange(holistic.COMPONENTS["right_hand"].start, holistic.COMPONENTS["right_hand"].stop),
    }
    for index, frame in enumerate(frames):
        for part, targets in parts.items():
            points = frame.get(part)
            if not points:
                continue
            if len(points) != len(targets):
                raise CorpusError(f"{path}: frame {index}: part {part!r} has {len(points)} points, "
                                  f"expected {len(targets)}")
            values = np.array([p if p is not None else [np.nan] * 3 for p in points], dtype=np.float32)
            pose[index, targets] = values
    return LexiconSign(gloss_label(gloss or content.get("sign") or path.stem), pose, fps, str(path))


def read_json_lexicon(folder: Path) -> list[LexiconSign]:
    """Read a JSON lexicon folder (`metadata.json` and `signs/*.json`)."""
    metadata_path = folder / "metadata.json"
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusError(f"{metadata_path} is not readable JSON ({exc})") from exc
    face_indices = metadata.get("face_indices")
    if not isinstance(face_indices, list) or not all(isinstance(i, int) and 0 <= i < holistic.N_FACE
                                                     for i in face_indices):
        raise CorpusError(f"{metadata_path}: 'face_indices' must list the face-mesh index (0-467) of each "
                          "reduced face point")
    names = sorted(metadata.get("signs") or [p.stem for p in (folder / "signs").glob("*.json")])
    signs = []
    for name in names:
        path = folder / "signs" / f"{name}.json"
        if not path.is_file():
            raise CorpusError(f"{metadata_path} lists sign {name!r} but {path} does not exist")
        signs.append(read_json_sign(path, face_indices, gloss=name))
    return signs


def read_pose_lexicon(folder: Path) -> list[LexiconSign]:
    """Read a lexicon of `.pose` files, glossed by `index.csv` or by file name."""
    from signattention_core.corpus.importers import pose_file_info
    from signattention_core.corpus.poses import read_pose

    index_path = folder / "index.csv"
    entries: list[tuple[Path, str]] = []
    if index_path.is_file():
        rows = list(csv.DictReader(io.StringIO(index_path.read_text(encoding="utf-8-sig"), newline="")))
        for line, row in enumerate(rows, start=2):
            relative, gloss = (row.get("path") or "").strip(), (row.get("glosses") or row.get("gloss") or "").strip()
            if not relative or not gloss:
                raise CorpusError(f"{index_path}: line {line} needs 'path' and 'glosses' values")
            # index paths may carry the lexicon's own folder name as a prefix
            candidates = [folder / relative, folder / Path(relative).name]
            path = next((c for c in candidates if c.is_file()), None)
            if path is None:
                raise CorpusError(f"{index_path}: line {line}: pose file {relative!r} not found in {folder}")
            entries.append((path, gloss))
    else:
        entries = [(path, path.stem) for path in sorted(folder.glob("*.pose"))]
    signs = []
    for path, gloss in entries:
        _, fps = pose_file_info(path)
        signs.append(LexiconSign(gloss_label(gloss), read_pose(path), fps, str(path)))
    return signs


def read_lexicon(folder: str | Path) -> list[LexiconSign]:
    """Read an isolated-sign lexicon in either layout; raise CorpusError when it is neither."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"lexicon folder {folder} not found; pass the folder with the sign files")
    if (folder / "signs").is_dir() and (folder / "metadata.json").is_file():
        signs = read_json_lexicon(folder)
    elif any(folder.glob("*.pose")):
        signs = read_pose_lexicon(folder)
    else:
        raise CorpusError(f"{folder} is not a lexicon: expected metadata.json with signs/*.json, "
                          "or .pose files (optionally with index.csv)")
    glosses = [sign.gloss for sign in signs]
    repeated = sorted({g for g in glosses if glosses.count(g) > 1})
    if repeated:
        raise CorpusError(f"{folder}: gloss(es) {', '.join(repeated)} appear more than once; keep one sign per gloss")
    if not signs:
        raise CorpusError(f"{folder} contains no signs")
    return signs


# ---------------------------------------------------------------- composing


def resample_frames(pose: np.ndarray, n_out: int) -> np.ndarray:
    """Resample (F, K, C) to `n_out` frames by linear interpolation in time.

    A point missing (NaN) in either neighbouring frame takes the nearer
    frame's value, so missing detections stay missing instead of being
    invented.
    """
    n_in = pose.shape[0]
    if n_in == 1 or n_out == 1:
        return np.repeat(pose[:1], n_out, axis=0)
    times = np.linspace(0.0, n_in - 1, n_out)
    lower = np.floor(times).astype(np.int64)
    upper = np.minimum(lower + 1, n_in - 1)
    weight = (times - lower)[:, None, None].astype(np.float32)
    blended = (1 - weight) * pose[lower] + weight * pose[upper]  # (n_out, K, C)
    nearest = np.where(weight < 0.5, pose[lower], pose[upper])
    return np.where(np.isnan(blended), nearest, blended).astype(np.float32)


def _shoulder_frame(pose: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Return the median shoulder midpoint (x, y) and width over frames where both shoulders were detected."""
    left, right = pose[:, _LEFT_SHOULDER, :2], pose[:, _RIGHT_SHOULDER, :2]
    valid = ~(np.isnan(left).any(axis=1) | np.isnan(right).any(axis=1))
    if not valid.any():
        return None
    centre = np.median((left[valid] + right[valid]) / 2, axis=0)
    width = float(np.median(np.linalg.norm(left[valid] - right[valid], axis=1)))
    return (centre, width) if width > 0 else None


def align_to_reference(pose: np.ndarray, reference: tuple[np.ndarray, float] | None) -> np.ndarray:
    """Translate and scale x, y so the sign's shoulders match the reference midpoint and width."""
    own = _shoulder_frame(pose)
    if reference is None or own is None:
        return pose
    aligned = pose.copy()
    scale = reference[1] / own[1]
    aligned[..., :2] = (pose[..., :2] - own[0]) * scale + reference[0]
    aligned[..., 2] = pose[..., 2] * scale
    return aligned


def _scale_movement(pose: np.ndarray, amplitude: float) -> np.ndarray:
    """Scale arm and hand movement about each point's mean position over the sign."""
    scaled = pose.copy()
    moving = pose[:, _MOVING_POINTS, :2]  # (F, M, 2)
    with warnings.catch_warnings():
        # a point never detected in the sign has no mean and stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmean(moving, axis=0, keepdims=True)  # (1, M, 2)
    scaled[:, _MOVING_POINTS, :2] = centre + amplitude * (moving - centre)
    return scaled


def _transition(last: np.ndarray, first: np.ndarray, n_frames: int) -> np.ndarray:
    """Interpolate linearly between two poses over `n_frames` frames, endpoints excluded."""
    if n_frames == 0:
        return np.empty((0, *last.shape), dtype=np.float32)
    weights = (np.arange(1, n_frames + 1) / (n_frames + 1))[:, None, None].astype(np.float32)
    frames = (1 - weights) * last + weights * first
    # a point missing at either end stays missing through the transition
    return frames.astype(np.float32)


def compose_sentences(signs: list[LexiconSign], config: ConcatConfig) -> list[dict]:
    """Compose renditions of random sentences from isolated signs.

    Returns one dict per rendition with keys `sentence` (index), `rendition`,
    `glosses`, `pose` (F, 543, 3) and `spans` ([start, end) frames per gloss).
    """
    if len(signs) < config.min_length:
        raise CorpusError(f"the lexicon has {len(signs)} signs, fewer than the minimum sentence length "
                          f"{config.min_length}")
    rng = np.random.default_rng(config.seed)
    reference = _shoulder_frame(signs[0].pose)
    resampled = [align_to_reference(sign.pose, reference) for sign in signs]

    sentences: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    max_length = min(config.max_length, len(signs))
    attempts = 0
    while len(sentences) < config.n_sentences:
        attempts += 1
        if attempts > 100 * config.n_sentences:
            raise CorpusError(f"could not draw {config.n_sentences} distinct sentences from {len(signs)} signs; "
                              "lower n_sentences or widen the length range")
        length = int(rng.integers(config.min_length, max_length + 1))
        choice = tuple(int(i) for i in rng.choice(len(signs), size=length, replace=False))
        if choice not in seen:
            seen.add(choice)
            sentences.append(choice)

    renditions = []
    for sentence_index, choice in enumerate(sentences):
        for rendition in range(config.renditions):
            amplitude = float(rng.uniform(*config.amplitude_range))
            pieces: list[np.ndarray] = []
            spans: list[tuple[int, int]] = []
            cursor = 0
            for position, sign_index in enumerate(choice):
                sign = signs[sign_index]
                speed = float(rng.uniform(*config.speed_range))
                n_out = max(2, int(round(sign.pose.shape[0] * config.fps / sign.fps / speed)))
                frames = _scale_movement(resample_frames(resampled[sign_index], n_out), amplitude)
                if position == 0:
                    rest = np.repeat(frames[:1], config.rest_frames, axis=0)
                    pieces.append(rest)
                    cursor += rest.shape[0]
                else:
                    n_transition = int(rng.integers(config.transition_frames[0], config.transition_frames[1] + 1))
                    bridge = _transition(pieces[-1][-1], frames[0], n_transition)
                    pieces.append(bridge)
                    cursor += bridge.shape[0]
                pieces.append(frames)
                spans.append((cursor, cursor + frames.shape[0]))
                cursor += frames.shape[0]
            pieces.append(np.repeat(pieces[-1][-1:], config.rest_frames, axis=0))
            renditions.append({
                "sentence": sentence_index,
                "rendition": rendition,
                "glosses": [signs[i].gloss for i in choice],
                "pose": np.concatenate(pieces).astype(np.float32),
                "spans": spans,
            })
    return renditions


def rendition_split(rendition: int, n_renditions: int) -> str:
    """Return a rendition's split: the last is test, the one before it val (with 3 or more), the rest train."""
    if n_renditions >= 2 and rendition == n_renditions - 1:
        return "test"
    if n_renditions >= 3 and rendition == n_renditions - 2:
        return "val"
    return "train"


def write_concat_corpus(lexicon_dir: str | Path, out_dir: str | Path, config: ConcatConfig,
                        name: str | None = None, overwrite: bool = False) -> list[Sample]:
    """Compose sentences from a lexicon and write them as a corpus folder with exact gold spans."""
    lexicon_dir, out_dir = Path(lexicon_dir), Path(out_dir)
    signs = read_lexicon(lexicon_dir)
    renditions = compose_sentences(signs, config)
    samples: list[Sample] = []
    poses: dict[str, np.ndarray] = {}
    for item in renditions:
        sample_id = f"sentence{item['sentence']:04d}_rendition{item['rendition'] + 1}"
        samples.append(Sample(
            id=sample_id,
            split=rendition_split(item["rendition"], config.renditions),
            gloss=" ".join(item["glosses"]),
            signer=lexicon_dir.name,
            repetition=item["rendition"] + 1,
            sentence_group=f"sentence{item['sentence']:04d}",
            fps=config.fps,
            n_frames=int(item["pose"].shape[0]),
            gloss_spans=tuple(item["spans"]),
        ))
        poses[sample_id] = item["pose"]
    metadata = imported_metadata(out_dir, name, ["gloss"],
                                 f"sentences composed from the isolated signs in {lexicon_dir.name}")
    metadata |= {
        "concat": {
            "seed": config.seed, "n_sentences": config.n_sentences, "lengths": [config.min_length, config.max_length],
            "renditions": config.renditions, "fps": config.fps, "speed_range": list(config.speed_range),
            "amplitude_range": list(config.amplitude_range), "transition_frames": list(config.transition_frames),
        },
    }
    write_corpus(out_dir, metadata, samples, poses, overwrite=overwrite)
    logger.info("composed %d renditions of %d sentences from %d signs", len(samples), config.n_sentences, len(signs))
    return samples
