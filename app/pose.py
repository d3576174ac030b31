"""Poses and video frames for the sample page's pose player.

The player draws the body and hand points the extraction stored in the
artifact's poses table. When the artifact stores none (`extract.py
--no-poses`), it reads the pose from the corpus folder named in run.json
(`corpus.path`) through `signattention_core.corpus`, which reads `.npy` with
numpy and `.pose` with pose-format and never imports torch. Videos always
come from the corpus (`videos/<id>.mp4`).
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app import data
from app.data import RunRef
from app.runs import REPO_ROOT
from signattention_core import holistic
from signattention_core.corpus import Corpus, CorpusError

logger = logging.getLogger(__name__)

# skeleton parts drawn by the player: (component, edges within it)
DRAWN_PARTS: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("body", holistic.BODY_EDGES),
    ("left_hand", holistic.HAND_EDGES),
    ("right_hand", holistic.HAND_EDGES),
)


@dataclass(frozen=True)
class PoseSource:
    """A sample's pose (or why there is none), where it came from, and its video path."""

    pose: np.ndarray | None  # (F, 543, C) float32 with C = 2 or 3, NaN where a point is missing
    origin: str  # where the pose came from, for the caption
    video: Path | None  # videos/<id>.mp4 or similar, None when the corpus has no video
    message: str | None  # why the pose is missing; None when `pose` is set


def resolve_corpus(path: str, artifact_dir: str) -> Path | None:
    """Find the corpus folder named in run.json.

    The extraction records a path relative to the artifact folder when the
    two share a parent, so a relative path is tried against the artifact
    folder first, then the working directory and the repository.
    """
    if Path(path).is_absolute():
        candidates = [Path(path)]
    else:
        candidates = [Path(artifact_dir) / path, Path.cwd() / path, REPO_ROOT / path]
    return next((candidate.resolve() for candidate in candidates if candidate.is_dir()), None)


@st.cache_resource(show_spinner="Opening the corpus…", max_entries=4)
def open_corpus(path: str, artifact_dir: str) -> Corpus | str:
    """Open the corpus named in run.json, or return the reason it cannot be opened."""
    if not path:
        return "run.json names no corpus folder."
    folder = resolve_corpus(path, artifact_dir)
    if folder is None:
        return f"The corpus folder {path} named in run.json is not on this machine."
    try:
        return Corpus.open(folder)
    except CorpusError as error:
        logger.warning("cannot open corpus %s: %s", folder, error)
        return f"The corpus at {folder} cannot be opened: {error}"


def load(ref: RunRef, sample_idx: int, sample_id: str) -> PoseSource:
    """Return one sample's pose: from the artifact's poses table, else from the corpus."""
    return data.guarded(_load, ref.path, ref.stamp, str(ref.run.get("corpus", {}).get("path", "")),
                        sample_idx, sample_id)


@st.cache_resource(show_spinner="Reading the pose…", max_entries=32)
def _load(artifact_dir: str, stamp: int, corpus_path: str, sample_idx: int, sample_id: str) -> PoseSource:
    stored = data.artifact_pose(artifact_dir, stamp, sample_idx)
    corpus = open_corpus(corpus_path, artifact_dir)
    video = None if isinstance(corpus, str) else corpus.video_path(sample_id)
    if stored is not None:
        return PoseSource(stored, "the artifact (body and hands, float16)", video, None)

    if isinstance(corpus, str):
        return PoseSource(None, "", None, f"The artifact stores no pose for this sample, and {corpus}")
    try:
        corpus.by_id(sample_id)
    except KeyError:
        return PoseSource(None, "", None, f"Sample {sample_id!r} is not in the corpus at {corpus.root}.")
    try:
        pose = corpus.load_pose(sample_id)
    except CorpusError as error:
        return PoseSource(None, "", video, f"The pose of {sample_id!r} cannot be read: {error}")
    return PoseSource(pose, f"the corpus at {corpus.root}", video, None)


def skeleton_frame(pose: np.ndarray, frame: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the points and edges of one frame for drawing, without missing points.

    Points have part, x, y; edges have part, x, y, x2, y2. Coordinates are 0-1
    image coordinates (y grows downwards).
    """
    points, edges = [], []
    current = pose[frame]  # (543, 3)
    for part, part_edges in DRAWN_PARTS:
        block = current[holistic.COMPONENTS[part]]  # (points of the part, 3)
        present = np.isfinite(block[:, :2]).all(axis=1)
        for index in np.flatnonzero(present):
            points.append((part, float(block[index, 0]), float(block[index, 1])))
        for start, end in part_edges:
            if present[start] and present[end]:
                edges.append((part, float(block[start, 0]), float(block[start, 1]),
                              float(block[end, 0]), float(block[end, 1])))
    return (
        pd.DataFrame(points, columns=["part", "x", "y"]),
        pd.DataFrame(edges, columns=["part", "x", "y", "x2", "y2"]),
    )


def extent(pose: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Return x and y ranges covering every drawn point over all frames, with a margin."""
    drawn = np.concatenate([pose[:, holistic.COMPONENTS[part], :2] for part, _ in DRAWN_PARTS], axis=1)
    finite = drawn[np.isfinite(drawn).all(axis=-1)]  # (points, 2)
    if finite.size == 0:
        return (0.0, 1.0), (0.0, 1.0)
    low = np.minimum(finite.min(axis=0), 0.0)
    high = np.maximum(finite.max(axis=0), 1.0)
    return (float(low[0]), float(high[0])), (float(low[1]), float(high[1]))


@st.cache_data(show_spinner=False, max_entries=256)
def video_frame(path: str, frame: int) -> np.ndarray | None:
    """Return one RGB video frame, or None when the video cannot be read at that frame."""
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            return None
        capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, image = capture.read()
    finally:
        capture.release()
    if not ok:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
