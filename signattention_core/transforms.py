"""Pose transforms that turn a raw pose into encoder input features.

Shape letters: F frames, P positions, K keypoints, C coordinates per keypoint,
E features (K * C after flattening).

Each transform takes and returns a `PoseSequence`. Besides the data, it
stores the raw frame index of every position (-1 at padding), a mask of
detected keypoints and the canonical MediaPipe Holistic index of every
keypoint. Every later stage can therefore map a position back to a video frame.

The study's pipeline, by its names, is FilterLandmarks, RandomSampleFrames,
PadTruncateFrames, ReplaceNansWithZeros, FlattenKeypoints. `transform_pose`
runs that pipeline from a `TransformConfig`, with two differences from the
study that keep figures reproducible:

- Without a random generator (evaluation), frame sampling is deterministic and
  keeps the first frame of each window. The study drew a random frame per
  window at test time as well.
- Padding is left to the batch collate function, which pads to the longest
  sample of the batch and builds the padding mask from lengths. The study
  padded every sample to MAX_FRAMES in the transform.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from signattention_core import holistic

logger = logging.getLogger(__name__)

NORMALIZE_MODES: tuple[str, ...] = ("none", "shoulders")

# the study's pipeline, in the order it applied the steps
STUDY_TRANSFORMS: tuple[str, ...] = (
    "FilterLandmarks",
    "RandomSampleFrames",
    "PadTruncateFrames",
    "ReplaceNansWithZeros",
    "FlattenKeypoints",
)

# canonical Holistic indices of the shoulders (MediaPipe pose points 11 and 12)
LEFT_SHOULDER = holistic.point_index("body", "LEFT_SHOULDER")
RIGHT_SHOULDER = holistic.point_index("body", "RIGHT_SHOULDER")

# sample ids whose missing shoulders were already logged, so each is warned about once
_warned_unnormalized: set[str] = set()


@dataclass(frozen=True)
class TransformConfig:
    """Settings that turn a raw pose into encoder input features."""

    # components kept, in this order (the study's names "lhand" and "rhand" are accepted)
    landmarks: tuple[str, ...] = ("body", "left_hand", "right_hand")
    # keep z as well as x and y (3 coordinates per keypoint instead of 2)
    use_3d: bool = False
    # window length in frames, of which one frame is kept
    sample_rate: int = 3
    # maximum number of positions after sampling, beyond which positions are dropped
    max_frames: int = 220
    # "none", or "shoulders" to centre on the shoulder midpoint and divide by shoulder width
    normalize: str = "none"

    def __post_init__(self) -> None:
        landmarks = (self.landmarks,) if isinstance(self.landmarks, str) else tuple(self.landmarks)
        if not landmarks:
            raise ValueError(f"landmarks is empty; choose one or more of {', '.join(holistic.COMPONENTS)}")
        canonical = tuple(holistic.canonical_component(name) for name in landmarks)
        if len(set(canonical)) != len(canonical):
            raise ValueError(f"landmarks {landmarks} name a component twice; list each component once")
        object.__setattr__(self, "landmarks", canonical)

        if not isinstance(self.use_3d, bool):
            raise ValueError(f"use_3d must be True or False, got {self.use_3d!r}")
        for name in ("sample_rate", "max_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.normalize not in NORMALIZE_MODES:
            raise ValueError(f"invalid normalize {self.normalize!r}; accepted: {', '.join(NORMALIZE_MODES)}")


@dataclass
class PoseSequence:
    """A pose on its way through the transforms.

    `data` is (P, K, C) until FlattenKeypoints makes it (P, K * C).
    """

    data: np.ndarray  # (P, K, C) float32, NaN where a keypoint is missing until ReplaceNansWithZeros
    frame_index: np.ndarray  # (P,) int64, raw frame index of each position, -1 at padding
    keypoint_mask: np.ndarray  # (P, K) bool, True where the keypoint was detected
    point_index: np.ndarray  # (K,) int64, canonical Holistic index (0-542) of each keypoint
    sample_id: str | None = None  # named in log messages and errors when known

    @classmethod
    def from_pose(cls, pose: np.ndarray, sample_id: str | None = None) -> PoseSequence:
        """Wrap a raw pose (F, 543, C) or (F, 1, 543, C) with C >= 2.

        A keypoint counts as detected when its x and y are finite.

        Raises:
            ValueError: if the shape is not one of the above or F is 0.
        """
        where = f" of sample {sample_id!r}" if sample_id else ""
        pose = np.asarray(pose)
        if pose.ndim == 4:
            if pose.shape[1] != 1:
                raise ValueError(f"pose{where} has {pose.shape[1]} people (shape {pose.shape}); "
                                 "only single-signer poses are supported, so keep one person")
            pose = pose[:, 0]
        if pose.ndim != 3 or pose.shape[1] != holistic.N_POINTS or pose.shape[2] < 2:
            raise ValueError(f"pose{where} has shape {pose.shape}; expected (F, {holistic.N_POINTS}, C) "
                             f"or (F, 1, {holistic.N_POINTS}, C) in MediaPipe Holistic order with C >= 2")
        if pose.shape[0] == 0:
            raise ValueError(f"pose{where} has no frames; remove the sample or re-extract its keypoints")

        data = pose.astype(np.float32, copy=False)
        n_frames = data.shape[0]
        return cls(
            data=data,
            frame_index=np.arange(n_frames, dtype=np.int64),
            keypoint_mask=_finite_points(data[:, :, :2]),
            point_index=np.arange(holistic.N_POINTS, dtype=np.int64),
            sample_id=sample_id,
        )

    @property
    def is_flat(self) -> bool:
        """True once FlattenKeypoints has run."""
        return self.data.ndim == 2

    def _describe(self) -> str:
        return f"sample {self.sample_id!r}" if self.sample_id else "pose"

    def _require_keypoint_axis(self, step: str) -> None:
        if self.is_flat:
            raise ValueError(f"{step} needs (P, K, C) data but the {self._describe()} is already flat; "
                             "place FlattenKeypoints last in the pipeline")


class Transform(Protocol):
    """Pipeline step, called with `rng` None in evaluation and a generator in training."""

    def __call__(self, pose: PoseSequence, rng: np.random.Generator | None = None) -> PoseSequence: ...


@dataclass
class TransformedPose:
    """Encoder input of one sample, produced by `transform_pose`."""

    features: np.ndarray  # (P, E) float32, NaN replaced by 0
    frame_index: np.ndarray  # (P,) int64, raw frame index of each position, -1 at padding
    keypoint_mask: np.ndarray  # (P, K) bool, True where the keypoint was detected
    point_index: np.ndarray | None = None  # (K,) int64, canonical Holistic index of each keypoint


# ---------------------------------------------------------------- the study's steps


@dataclass(frozen=True)
class FilterLandmarks:
    """Keep the keypoints of the given components, in the given order, and x, y (and z if 3D)."""

    landmarks: tuple[str, ...] = ("body", "left_hand", "right_hand")  # ours or the study's names
    use_3d: bool = False  # keep z as the third coordinate

    def __post_init__(self) -> None:
        names = (self.landmarks,) if isinstance(self.landmarks, str) else tuple(self.landmarks)
        object.__setattr__(self, "landmarks", tuple(holistic.canonical_component(name) for name in names))

    def __call__(self, pose: PoseSequence, rng: np.random.Generator | None = None) -> PoseSequence:
        pose._require_keypoint_axis("FilterLandmarks")
        n_coords = 3 if self.use_3d else 2
        if pose.data.shape[2] < n_coords:
            raise ValueError(f"FilterLandmarks needs {n_coords} coordinates but the {pose._describe()} "
                             f"has {pose.data.shape[2]}; set use_3d to False or supply 3D keypoints")

        # find where each requested canonical point sits in the current keypoint axis
        points = _component_points(self.landmarks)
        column_of = np.full(holistic.N_POINTS, -1, dtype=np.int64)
        column_of[pose.point_index] = np.arange(len(pose.point_index))
        columns = column_of[points]
        if (columns < 0).any():
            raise ValueError(f"FilterLandmarks cannot keep {self.landmarks} because {int((columns < 0).sum())} "
                             "of their points were removed by an earlier step; filter once, or filter to a "
                             "superset first")

        # np.take on the keypoint axis, then the coordinate slice, is about twice as fast as one fancy index
        data = np.take(pose.data, columns, axis=1)[:, :, :n_coords]  # (P, K, C)
        mask = pose.keypoint_mask[:, columns] & _finite_points(data)  # (P, K)
        return PoseSequence(data, pose.frame_index, mask, pose.point_index[columns], pose.sample_id)


@dataclass(frozen=True)
class RandomSampleFrames:
    """Keep one frame per window of `sample_rate` consecutive positions.

    Windows start at positions 0, k, 2k and so on, and the last one may be
    shorter. With a generator (training) the kept frame is drawn uniformly
    within each window. Without one (evaluation) it is the window's first
    frame. Either way P = ceil(F / k).
    """

    sample_rate: int = 3  # window length k in positions

    def __post_init__(self) -> None:
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int) or self.sample_rate < 1:
            raise ValueError(f"sample_rate must be an integer >= 1, got {self.sample_rate!r}")

    def __call__(self, pose: PoseSequence, rng: np.random.Generator | None = None) -> PoseSequence:
        n_positions = len(pose.frame_index)
        starts = np.arange(0, n_positions, self.sample_rate, dtype=np.int64)
        if rng is None or self.sample_rate == 1:
            picks = starts
        else:
            widths = np.minimum(self.sample_rate, n_positions - starts)
            picks = starts + rng.integers(0, widths)
        return _take_positions(pose, picks)


@dataclass(frozen=True)
class PadTruncateFrames:
    """Drop positions beyond `max_frames`, and with `pad` fill shorter sequences up to it.

    Padding positions have data 0, no detected keypoint and frame index -1.
    """

    max_frames: int = 220  # maximum number of positions kept
    pad: bool = True  # pad to exactly max_frames, as the study did

    def __post_init__(self) -> None:
        if isinstance(self.max_frames, bool) or not isinstance(self.max_frames, int) or self.max_frames < 1:
            raise ValueError(f"max_frames must be an integer >= 1, got {self.max_frames!r}")

    def __call__(self, pose: PoseSequence, rng: np.random.Generator | None = None) -> PoseSequence:
        n_positions = len(pose.frame_index)
        if n_positions > self.max_frames:
            logger.debug("%s: truncated %d positions to %d", pose._describe(), n_positions, self.max_frames)
            return _take_positions(pose, np.arange(self.max_frames, dtype=np.int64))
        if not self.pad or n_positions == self.max_frames:
            return pose

        n_pad = self.max_frames - n_positions
        data = np.concatenate([pose.data, np.zeros((n_pad, *pose.data.shape[1:]), dtype=pose.data.dtype)])
        frame_index = np.concatenate([pose.frame_index, np.full(n_pad, -1, dtype=np.int64)])
        mask_pad = np.zeros((n_pad, pose.keypoint_mask.shape[1]), dtype=bool)
        mask = np.concatenate([pose.keypoint_mask, mask_pad])
        return PoseSequence(data, frame_index, mask, pose.point_index, pose.sample_id)


@dataclass(frozen=True)
class ReplaceNansWithZeros:
    """Replace every non-finite coordinate (NaN or infinity) with 0, leaving the keypoint mask as the record."""

    def __call__(self, pose: PoseSequence, rng: np.random.Generator | None = None) -> PoseSequence:
        data = np.where(np.isfinite(pose.data), pose.data, np.float32(0)).astype(np.float32, copy=False)
        return PoseSequence(data, pose.frame_index, pose.keypoint_mask, pose.point_index, pose.sample_id)


@dataclass(frozen=True)
class FlattenKeypoints:
    """Reshape (P, K, C) to (P, K * C) features, keypoint by keypoint: x0, y0, x1, y1, ..."""

    def __call__(self, pose: PoseSequence, rng: np.random.Generator | None = None) -> PoseSequence:
        pose._require_keypoint_axis("FlattenKeypoints")
        n_positions = pose.data.shape[0]
        data = pose.data.reshape(n_positions, -1)  # (P, E)
        return PoseSequence(data, pose.frame_index, pose.keypoint_mask, pose.point_index, pose.sample_id)


# ---------------------------------------------------------------- normalisation steps


@dataclass(frozen=True)
class CenterOnKeypoint:
    """Subtract one keypoint's coordinates from every detected keypoint.

    With `per_frame` the reference is the keypoint in the same frame, and in
    frames where it is missing, its median over the frames where it was
    detected. Without `per_frame` the median is used throughout. Missing
    keypoints and padding positions are left as they are. When the keypoint
    is never detected, the pose is returned unchanged and a warning is logged.
    """

    point: int | str = 0  # canonical index 0-542, or "component.NAME" such as "body.NOSE"
    per_frame: bool = True  # centre each frame on its own reference point

    def __post_init__(self) -> None:
        object.__setattr__(self, "point", _resolve_point(self.point))

    def __call__(self, pose: PoseSequence, rng: np.random.Generator | None = None) -> PoseSequence:
        pose._require_keypoint_axis("CenterOnKeypoint")
        column = _column_of(pose, int(self.point), "CenterOnKeypoint")
        real = pose.frame_index >= 0
        detected = pose.keypoint_mask[:, column] & real  # (P,)
        if not detected.any():
            _warn_unnormalized(pose, f"keypoint {self.point} is never detected")
            return pose

        reference = pose.data[:, column, :]  # (P, C)
        median = np.median(reference[detected], axis=0)
        if self.per_frame:
            reference = np.where(detected[:, None], reference, median)
        else:
            reference = np.broadcast_to(median, reference.shape)
        return _shift_and_scale(pose, reference, scale=1.0)


@dataclass(frozen=True)
class NormalizeShoulders:
    """Centre on the shoulder midpoint and divide by the shoulder width, once per sample.

    Uses MediaPipe body points 11 and 12. Over the frames where both shoulders
    were detected, the centre is the median shoulder midpoint and the width is
    the median shoulder distance in the x-y plane. All coordinates, z included,
    are shifted by the centre and divided by the width. Missing keypoints and
    padding positions are left as they are. When the shoulders are never both
    detected, the pose is returned unnormalised and a warning is logged.
    """

    def __call__(self, pose: PoseSequence, rng: np.random.Generator | None = None) -> PoseSequence:
        pose._require_keypoint_axis("NormalizeShoulders")
        left = _column_of(pose, LEFT_SHOULDER, "NormalizeShoulders")
        right = _column_of(pose, RIGHT_SHOULDER, "NormalizeShoulders")
        both = pose.keypoint_mask[:, left] & pose.keypoint_mask[:, right] & (pose.frame_index >= 0)  # (P,)
        if not both.any():
            _warn_unnormalized(pose, "the shoulders are never both detected")
            return pose

        left_xyz = pose.data[both, left, :]  # (P', C)
        right_xyz = pose.data[both, right, :]  # (P', C)
        centre = np.median((left_xyz + right_xyz) / 2, axis=0)  # (C,)
        width = float(np.median(np.linalg.norm(left_xyz[:, :2] - right_xyz[:, :2], axis=1)))
        if not np.isfinite(width) or width <= 0:
            _warn_unnormalized(pose, f"the shoulder width is {width}")
            return pose

        reference = np.broadcast_to(centre, (pose.data.shape[0], centre.shape[0]))
        return _shift_and_scale(pose, reference, scale=width)


# ---------------------------------------------------------------- pipelines


# step names a configuration may list, ours and the study's
TRANSFORM_NAMES: tuple[str, ...] = (*STUDY_TRANSFORMS, "NormalizeShoulders")


@dataclass(frozen=True)
class Compose:
    """Transforms applied in order."""

    steps: tuple[Transform, ...]

    def __call__(self, pose: PoseSequence, rng: np.random.Generator | None = None) -> PoseSequence:
        for step in self.steps:
            pose = step(pose, rng)
        return pose


def build_pipeline(names: Iterable[str], config: TransformConfig, pad: bool = False) -> Compose:
    """Build the steps named in `names`, in that order, with their settings from `config`.

    Names are those of the study's TRANSFORMS list plus "NormalizeShoulders".
    When `config.normalize` is "shoulders" and the list does not name
    NormalizeShoulders, it runs first, before landmarks are filtered.
    PadTruncateFrames always truncates to `config.max_frames` and pads only when
    `pad` is True (the study's behaviour); the batch collate function pads otherwise.

    Raises:
        ValueError: for an unknown or repeated name (listing the accepted
            names), or for NormalizeShoulders listed with normalize "none".
    """
    names = [names] if isinstance(names, str) else list(names)
    unknown = [name for name in names if name not in TRANSFORM_NAMES]
    if unknown:
        raise ValueError(f"unknown transforms {unknown}; accepted: {', '.join(TRANSFORM_NAMES)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"transforms {repeated} are listed more than once; list each step once")
    if "NormalizeShoulders" in names and config.normalize != "shoulders":
        raise ValueError(f"NormalizeShoulders is listed but normalize is {config.normalize!r}; "
                         "set normalize to 'shoulders' or remove the step")
    if config.normalize == "shoulders" and "NormalizeShoulders" not in names:
        names.insert(0, "NormalizeShoulders")

    steps: list[Transform] = []
    for name in names:
        if name == "FilterLandmarks":
            steps.append(FilterLandmarks(config.landmarks, config.use_3d))
        elif name == "RandomSampleFrames":
            steps.append(RandomSampleFrames(config.sample_rate))
        elif name == "PadTruncateFrames":
            steps.append(PadTruncateFrames(config.max_frames, pad=pad))
        elif name == "ReplaceNansWithZeros":
            steps.append(ReplaceNansWithZeros())
        elif name == "FlattenKeypoints":
            steps.append(FlattenKeypoints())
        else:
            steps.append(NormalizeShoulders())
    return Compose(tuple(steps))


@functools.lru_cache(maxsize=32)
def default_pipeline(config: TransformConfig) -> Compose:
    """Return the study's pipeline for `config`, without padding."""
    return build_pipeline(STUDY_TRANSFORMS, config, pad=False)


def transform_pose(
    pose: np.ndarray,
    config: TransformConfig,
    rng: np.random.Generator | None = None,
    sample_id: str | None = None,
) -> TransformedPose:
    """Turn a raw pose (F, 543, C) or (F, 1, 543, C) into encoder input features.

    Runs the study's pipeline (see the module docstring) without padding, so
    P = min(ceil(F / sample_rate), max_frames). `rng` None means deterministic
    evaluation sampling (first frame of each window); a generator means a
    random frame within each window (training). `sample_id` only labels log
    messages and errors.
    """
    sequence = default_pipeline(config)(PoseSequence.from_pose(pose, sample_id), rng)
    return TransformedPose(
        features=np.ascontiguousarray(sequence.data, dtype=np.float32),
        frame_index=sequence.frame_index,
        keypoint_mask=sequence.keypoint_mask,
        point_index=sequence.point_index,
    )


def n_keypoints(config: TransformConfig) -> int:
    """Return K, the number of keypoints kept by `config.landmarks`."""
    return len(_component_points(config.landmarks))


def n_features(config: TransformConfig) -> int:
    """Return E, e.g. 75 keypoints * 2 coordinates = 150 for the study's setting."""
    return n_keypoints(config) * (3 if config.use_3d else 2)


# ---------------------------------------------------------------- helpers


def _finite_points(data: np.ndarray) -> np.ndarray:
    """Return (P, K) True where every coordinate of (P, K, C) `data` is finite."""
    # far faster than `.all(axis=2)` over a short last axis (about 40x at (100, 543, 2), numpy 2.4)
    finite = np.isfinite(data[:, :, 0])
    for coordinate in range(1, data.shape[2]):
        finite &= np.isfinite(data[:, :, coordinate])
    return finite


@functools.lru_cache(maxsize=64)
def _component_points(landmarks: tuple[str, ...]) -> np.ndarray:
    """Return the canonical indices of the components, in the given component order."""
    ranges = []
    for name in landmarks:
        part = holistic.COMPONENTS[holistic.canonical_component(name)]
        ranges.append(np.arange(part.start, part.stop, dtype=np.int64))
    points = np.concatenate(ranges)
    points.flags.writeable = False  # the cache shares this array between callers
    return points


def _take_positions(pose: PoseSequence, picks: np.ndarray) -> PoseSequence:
    return PoseSequence(
        data=pose.data[picks],
        frame_index=pose.frame_index[picks],
        keypoint_mask=pose.keypoint_mask[picks],
        point_index=pose.point_index,
        sample_id=pose.sample_id,
    )


def _resolve_point(point: int | str) -> int:
    """Return the canonical index of a point given as an index or as "component.NAME"."""
    if isinstance(point, str):
        component, _, name = point.partition(".")
        index = holistic.point_index(component, name) if name else None
        if index is None:
            raise ValueError(f"unknown keypoint {point!r}; use 'component.NAME' such as 'body.NOSE' "
                             "or 'left_hand.WRIST', or a canonical index 0-542")
        return index
    if isinstance(point, bool) or not isinstance(point, (int, np.integer)) or not 0 <= point < holistic.N_POINTS:
        raise ValueError(f"keypoint index {point!r} is out of range; expected 0-{holistic.N_POINTS - 1}")
    return int(point)


def _column_of(pose: PoseSequence, point: int, step: str) -> int:
    columns = np.flatnonzero(pose.point_index == point)
    if len(columns) == 0:
        raise ValueError(f"{step} needs keypoint {point} but an earlier step removed it from the "
                         f"{pose._describe()}; run {step} before FilterLandmarks or keep that component")
    return int(columns[0])


def _shift_and_scale(pose: PoseSequence, reference: np.ndarray, scale: float) -> PoseSequence:
    """Subtract `reference` (P, C) from detected keypoints of real positions and divide by `scale`."""
    keep = pose.keypoint_mask & (pose.frame_index >= 0)[:, None]  # (P, K)
    moved = (pose.data - reference[:, None, :]) / np.float32(scale)  # (P, K, C)
    data = np.where(keep[:, :, None], moved, pose.data).astype(np.float32, copy=False)
    return PoseSequence(data, pose.frame_index, pose.keypoint_mask, pose.point_index, pose.sample_id)


def _warn_unnormalized(pose: PoseSequence, reason: str) -> None:
    """Log once per sample id (every time for anonymous poses) that normalisation was skipped."""
    key = pose.sample_id
    if key is not None and key in _warned_unnormalized:
        logger.debug("%s left unnormalised: %s", pose._describe(), reason)
        return
    if key is not None:
        _warned_unnormalized.add(key)
    logger.warning("%s left unnormalised because %s in its %d positions", pose._describe(), reason,
                   len(pose.frame_index))
