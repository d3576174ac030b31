"""Pose file readers that return the canonical (F, 543, 3) array.

Every reader returns float32 (F, 543, 3): F frames, the 543 MediaPipe
Holistic points in `holistic` order, and x, y, z with x and y in 0-1 image
coordinates. NaN marks a point that was not detected or that the file does not
carry.

`.npy` files already hold that layout, as (F, 1, 543, 3) or (F, 543, 3).

`.pose` files (pose-format) are mapped into it by component and point name:
POSE_LANDMARKS, FACE_LANDMARKS, LEFT_HAND_LANDMARKS and RIGHT_HAND_LANDMARKS
are placed by point name, and other components (POSE_WORLD_LANDMARKS, for
example) are skipped. So a reduced 178-point file fills its 178 places and
leaves the rest NaN. Masked or zero-confidence points become NaN. Pixel
coordinates are divided by the header's width (x) and height (y). z is divided
by the width too, because MediaPipe scales its own z like x. Only the first
person is kept.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from signattention_core import holistic

logger = logging.getLogger(__name__)

# (component, point names) already warned about, so a corpus of such files warns once, not once per read
_warned_unknown_points: set[tuple[str, tuple[str, ...]]] = set()


class PoseReadError(ValueError):
    """A pose file cannot be read or does not have the expected layout."""


def read_pose(path: str | Path, start_ms: float | None = None, end_ms: float | None = None) -> np.ndarray:
    """Read a `.npy` or `.pose` file as (F, 543, 3) float32.

    `start_ms` and `end_ms` select a segment of a `.pose` file by time. An
    `end_ms` of 0 or None means the end of the file, and negative values mean
    unset. Because the segment is found with the `.pose` header's frame rate,
    `.npy` files reject them.
    """
    path = Path(path)
    if path.suffix == ".npy":
        if (start_ms is not None and start_ms > 0) or (end_ms is not None and end_ms > 0):
            raise PoseReadError(f"{path}: start/end times need a .pose file with a frame rate; "
                                "crop the .npy array instead and leave start and end empty")
        return read_npy(path)
    if path.suffix == ".pose":
        return read_pose_file(path, start_ms=start_ms, end_ms=end_ms)
    raise PoseReadError(f"{path}: unknown pose file type {path.suffix!r}; expected .npy or .pose")


def read_npy(path: str | Path) -> np.ndarray:
    """Read a canonical `.npy` pose array (F, 1, 543, 3) or (F, 543, 3) as (F, 543, 3) float32."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise PoseReadError(f"{path}: cannot be read as a .npy array ({exc}); re-export the pose") from exc
    return check_pose_array(array, str(path))


def check_pose_array(array: np.ndarray, label: str) -> np.ndarray:
    """Check a canonical pose array and return it as (F, 543, 3) float32.

    Accepts (F, 543, 3) and (F, people, 543, 3); of several people only the
    first is kept.
    """
    expected = f"expected (F, 1, {holistic.N_POINTS}, 3) or (F, {holistic.N_POINTS}, 3) floats"
    given_shape = getattr(array, "shape", None)
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.floating):
        raise PoseReadError(f"{label}: dtype {getattr(array, 'dtype', type(array))} is not a float type; {expected}")
    if array.ndim == 4:
        if array.shape[1] == 0:
            raise PoseReadError(f"{label}: shape {array.shape} contains no person; {expected}")
        if array.shape[1] > 1:
            logger.info("%s contains %d people; keeping the first", label, array.shape[1])
        array = array[:, 0]
    if array.ndim != 3 or array.shape[1:] != (holistic.N_POINTS, 3):
        raise PoseReadError(f"{label}: shape {given_shape} is not a Holistic pose; {expected}")
    if array.shape[0] == 0:
        raise PoseReadError(f"{label}: the array has no frames; re-export the pose or remove the sample")
    return np.ascontiguousarray(array, dtype=np.float32)


def read_pose_file(path: str | Path, start_ms: float | None = None, end_ms: float | None = None) -> np.ndarray:
    """Read a pose-format `.pose` file into (F, 543, 3) float32; see the module docstring."""
    path = Path(path)
    pose = read_pose_format(path)
    array = pose_to_holistic(pose, str(path))
    return crop_by_time(array, float(pose.body.fps), start_ms, end_ms, str(path))


def read_pose_format(path: str | Path):
    """Read a `.pose` file as a pose-format `Pose`, rejecting files that end before their last frame.

    Raises:
        PoseReadError: naming the file when it cannot be read, is not a
            `.pose` file, or is truncated.
    """
    from pose_format import Pose

    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise PoseReadError(f"{path}: cannot be read ({exc})") from exc
    try:
        _check_complete(content, str(path))
        return Pose.read(content)
    except PoseReadError:
        raise
    except Exception as exc:  # pose-format raises assorted errors (struct.error, ValueError, ...) on bad bytes
        raise PoseReadError(f"{path}: not a valid .pose file ({type(exc).__name__}: {exc}); "
                            "re-export it with pose-format") from exc


def _check_complete(content: bytes, label: str) -> None:
    """Raise PoseReadError when a `.pose` file contains fewer bytes than its frames need.

    pose-format 0.15 reads a truncated version 0.1 file without an error: it
    derives the frame count from the bytes left and then reads confidences
    from the middle of the coordinates. So the body size is checked here.
    """
    from pose_format.pose_header import PoseHeader
    from pose_format.utils.reader import BufferReader, ConstStructs

    reader = BufferReader(content)
    header = PoseHeader.read(reader)
    version = round(float(header.version), 3)
    if version == 0.1:
        _, stored_frames = reader.unpack(ConstStructs.double_ushort)  # fps, frames
    elif version == 0.2:
        reader.unpack(ConstStructs.float)  # fps
        stored_frames = reader.unpack(ConstStructs.uint)
    else:
        return
    people = reader.unpack(ConstStructs.ushort)
    points = sum(len(component.points) for component in header.components)
    frame_bytes = people * points * (header.num_dims() + 1) * 4  # float32 coordinates plus a confidence
    available = reader.bytes_left()
    if frame_bytes == 0:
        return

    if version == 0.1:
        # the 16-bit frame count wraps for long recordings, so the bytes must hold whole frames
        # and agree with the count modulo 2**16
        complete = available % frame_bytes == 0 and (available // frame_bytes) % 2**16 == stored_frames
    else:
        complete = available >= stored_frames * frame_bytes
    if not complete:
        raise PoseReadError(f"{label}: the file is truncated: its header announces {stored_frames} frames "
                            f"({stored_frames * frame_bytes} bytes of frame data) but {available} bytes follow "
                            "the header; copy or export the file again")


def pose_to_holistic(pose, label: str) -> np.ndarray:
    """Map a pose-format `Pose` into the canonical (F, 543, 3) float32 array by point name."""
    header = pose.header
    width = float(header.dimensions.width)
    height = float(header.dimensions.height)
    if not width > 0 or not height > 0:
        raise PoseReadError(f"{label}: header dimensions {width}x{height} are not positive; "
                            "the pixel coordinates cannot be normalised")

    data = pose.body.data  # (F, people, points, dims), masked
    confidence = np.asarray(pose.body.confidence)  # (F, people, points)
    if data.ndim != 4:
        raise PoseReadError(f"{label}: pose body has shape {data.shape}; expected (frames, people, points, dims)")
    n_frames, n_people, n_file_points, n_dims = data.shape
    if n_frames == 0:
        raise PoseReadError(f"{label}: the file has no frames; re-export the pose or remove the sample")
    if n_people == 0:
        raise PoseReadError(f"{label}: the file contains no person")
    if n_people > 1:
        logger.info("%s contains %d people; keeping the first", label, n_people)
    if n_dims < 2:
        raise PoseReadError(f"{label}: points have {n_dims} coordinate(s); expected at least x and y")

    values = np.ma.getdata(data)[:, 0].astype(np.float32)  # (F, points, dims)
    mask = np.ma.getmaskarray(data)[:, 0].any(axis=-1)  # (F, points)
    mask |= confidence[:, 0] <= 0
    values[mask] = np.nan

    source_index, target_index = _point_mapping(header, label)
    if len(source_index) and max(source_index) >= n_file_points:
        raise PoseReadError(f"{label}: header names {max(source_index) + 1} points but the body has {n_file_points}")
    out = np.full((n_frames, holistic.N_POINTS, 3), np.nan, dtype=np.float32)  # (F, 543, 3)
    dims = min(n_dims, 3)
    out[:, target_index, :dims] = values[:, source_index, :dims]
    out[..., 0] /= width
    out[..., 1] /= height
    if dims == 3:
        out[..., 2] /= width
    return out


def _point_mapping(header, label: str) -> tuple[list[int], list[int]]:
    """Return matching (file point index, canonical index) lists for a pose-format header."""
    source_index: list[int] = []
    target_index: list[int] = []
    offset = 0
    skipped: list[str] = []
    for component in header.components:
        canonical = holistic.POSE_COMPONENT_NAMES.get(component.name)
        if canonical is None:
            skipped.append(component.name)
        else:
            unknown = []
            for i, point in enumerate(component.points):
                index = holistic.point_index(canonical, str(point))
                if index is None:
                    unknown.append(str(point))
                    continue
                source_index.append(offset + i)
                target_index.append(index)
            if unknown:
                key = (component.name, tuple(unknown))
                level = logging.DEBUG if key in _warned_unknown_points else logging.WARNING
                _warned_unknown_points.add(key)
                logger.log(level, "%s: %d point name(s) of %s have no Holistic place and are skipped: %s "
                           "(reported once per layout)", label, len(unknown), component.name, ", ".join(unknown[:5]))
        offset += len(component.points)
    if skipped:
        logger.debug("%s: skipped components %s", label, ", ".join(skipped))
    if not source_index:
        names = ", ".join(component.name for component in header.components)
        raise PoseReadError(f"{label}: no component matches MediaPipe Holistic (found {names}; expected "
                            f"{', '.join(holistic.POSE_COMPONENT_NAMES)})")
    if len(set(target_index)) != len(target_index):
        raise PoseReadError(f"{label}: the header names the same Holistic point twice")
    return source_index, target_index


def crop_by_time(array: np.ndarray, fps: float, start_ms: float | None, end_ms: float | None,
                 label: str) -> np.ndarray:
    """Keep the frames from `start_ms` up to `end_ms` (0, None or negative: to the end)."""
    start_ms = start_ms if start_ms is not None and start_ms > 0 else 0.0
    end_ms = end_ms if end_ms is not None and end_ms > 0 else 0.0
    if start_ms == 0 and end_ms == 0:
        return array
    if not fps > 0:
        raise PoseReadError(f"{label}: frame rate {fps} is not positive, so start/end times cannot be applied")
    first = int(round(start_ms * fps / 1000.0))
    last = int(round(end_ms * fps / 1000.0)) if end_ms else array.shape[0]
    cropped = array[first:last]
    if cropped.shape[0] == 0:
        raise PoseReadError(f"{label}: segment {start_ms:g}-{end_ms:g} ms selects no frame of "
                            f"{array.shape[0]} frames at {fps:g} fps; correct start and end")
    return cropped
