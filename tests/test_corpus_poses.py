"""Tests for the `.npy` and `.pose` readers."""

import io
import logging

import numpy as np
import numpy.ma as ma
import pytest
from pose_format import Pose
from pose_format.numpy.pose_body import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

from signattention_core import holistic
from signattention_core.corpus.poses import (
    PoseReadError,
    pose_to_holistic,
    read_npy,
    read_pose,
    read_pose_file,
)

PHOENIX = "phoenix14t-pose/25October_2010_Monday_tagesschau-17.pose"
SGG = "sgg-lexicon/essen.pose"
SIGNBRIDGE = "signbridge-asl-sentences/chair-black-tall-k/capture.pose"


def _raw(path):
    return Pose.read(path.read_bytes())


def test_phoenix_543_points_map_in_order(real_data):
    path = real_data / PHOENIX
    pose = read_pose(path)  # (F, 543, 3)
    assert pose.shape == (86, 543, 3)
    assert pose.dtype == np.float32

    raw = _raw(path)
    data = np.ma.getdata(raw.body.data)[:, 0]  # (F, 543, 3) pixels
    detected = ~np.ma.getmaskarray(raw.body.data)[:, 0].any(-1) & (raw.body.confidence[:, 0] > 0)
    scale = np.array([210, 260, 210], dtype=np.float32)
    np.testing.assert_allclose(pose[detected], data[detected] / scale, rtol=1e-6)
    assert np.isnan(pose[~detected]).all()


def test_sgg_178_points_fill_their_places(real_data):
    path = real_data / SGG
    pose = read_pose(path)
    assert pose.shape == (73, 543, 3)

    raw = _raw(path)
    header = raw.header
    offsets = np.cumsum([0] + [len(c.points) for c in header.components])
    data = np.ma.getdata(raw.body.data)[:, 0]  # (F, 178, 3)
    body = header.components[0]
    assert body.name == "POSE_LANDMARKS"
    shoulder = offsets[0] + body.points.index("LEFT_SHOULDER")
    np.testing.assert_allclose(pose[:, holistic.point_index("body", "LEFT_SHOULDER"), :2],
                               data[:, shoulder, :2] / np.array([640, 480]), rtol=1e-6)

    face = header.components[1]
    face_point = offsets[1] + face.points.index("13")
    np.testing.assert_allclose(pose[:, 33 + 13, 0], data[:, face_point, 0] / 640, rtol=1e-6)

    ever_detected = ~np.isnan(pose).any(-1).all(0)  # (543,)
    assert ever_detected.sum() == 178
    assert np.isnan(pose[:, holistic.point_index("body", "NOSE")]).all()


def test_signbridge_skips_world_landmarks_and_masks_hands(real_data):
    path = real_data / SIGNBRIDGE
    raw = _raw(path)
    assert raw.body.data.shape[2] == 576
    assert "POSE_WORLD_LANDMARKS" in [c.name for c in raw.header.components]

    pose = read_pose(path)
    assert pose.shape == (211, 543, 3)
    masked = np.ma.getmaskarray(raw.body.data)[:, 0, 501:543].any(-1)  # hands come after body and face
    assert masked.any()
    assert np.isnan(pose[:, 501:543][masked]).all()
    # x and y are image fractions; body points may lie outside the frame
    hands = pose[:, 501:543, :2]
    assert np.nanmin(hands) >= 0
    assert np.nanmax(hands) <= 1


def _write_pose_file(path, data, confidence, components, width=100, height=50):
    header = PoseHeader(0.1, PoseHeaderDimensions(width, height, width), components)
    body = NumPyPoseBody(fps=10, data=data, confidence=confidence)
    buffer = io.BytesIO()
    Pose(header, body).write(buffer)
    path.write_bytes(buffer.getvalue())


def _component(name, points):
    return PoseHeaderComponent(name, points, [], [(0, 0, 0)] * len(points), "XYZC")


def test_zero_confidence_and_second_person(tmp_path, caplog):
    # 2 frames, 2 people, 2 hand points and 1 point of another component
    values = np.arange(2 * 2 * 3 * 3, dtype=np.float32).reshape(2, 2, 3, 3) + 1
    confidence = np.ones((2, 2, 3), dtype=np.float32)
    confidence[1, 0, 0] = 0
    components = [_component("RIGHT_HAND_LANDMARKS", ["WRIST", "THUMB_TIP"]), _component("EXTRA", ["X"])]
    path = tmp_path / "two.pose"
    _write_pose_file(path, ma.masked_array(values), confidence, components)

    with caplog.at_level(logging.INFO):
        pose = read_pose_file(path)
    assert "contains 2 people; keeping the first" in caplog.text
    wrist = holistic.point_index("right_hand", "WRIST")
    thumb = holistic.point_index("right_hand", "THUMB_TIP")
    np.testing.assert_allclose(pose[0, wrist], values[0, 0, 0] / np.array([100, 50, 100]))
    assert np.isnan(pose[1, wrist]).all()  # zero confidence
    np.testing.assert_allclose(pose[1, thumb], values[1, 0, 1] / np.array([100, 50, 100]))
    assert np.isnan(np.delete(pose, [wrist, thumb], axis=1)).all()


def test_masked_points_become_nan():
    values = np.ones((1, 1, 2, 3), dtype=np.float32)
    mask = np.zeros(values.shape, dtype=bool)
    mask[0, 0, 1, 2] = True  # one masked coordinate hides the point
    header = PoseHeader(0.1, PoseHeaderDimensions(10, 10, 10), [_component("LEFT_HAND_LANDMARKS", ["WRIST", "PINKY_TIP"])])
    body = NumPyPoseBody(fps=10, data=ma.masked_array(values, mask=mask), confidence=np.ones((1, 1, 2), np.float32))
    pose = pose_to_holistic(Pose(header, body), "in memory")
    np.testing.assert_allclose(pose[0, holistic.point_index("left_hand", "WRIST")], [0.1, 0.1, 0.1])
    assert np.isnan(pose[0, holistic.point_index("left_hand", "PINKY_TIP")]).all()


def test_pose_without_holistic_component(tmp_path):
    path = tmp_path / "other.pose"
    _write_pose_file(path, ma.masked_array(np.ones((1, 1, 1, 3), np.float32)), np.ones((1, 1, 1), np.float32),
                     [_component("BODY_135", ["A"])])
    with pytest.raises(PoseReadError, match="no component matches MediaPipe Holistic \\(found BODY_135"):
        read_pose(path)


def test_truncated_pose_file(tmp_path, real_data):
    path = tmp_path / "cut.pose"
    path.write_bytes((real_data / SGG).read_bytes()[:300])
    with pytest.raises(PoseReadError, match="not a valid .pose file"):
        read_pose(path)


def test_npy_shapes(tmp_path):
    pose = np.zeros((4, 543, 3), dtype=np.float64)
    np.save(tmp_path / "three.npy", pose)
    np.save(tmp_path / "four.npy", np.stack([pose, pose + 1], axis=1))
    assert read_npy(tmp_path / "three.npy").dtype == np.float32
    two_people = read_npy(tmp_path / "four.npy")
    assert two_people.shape == (4, 543, 3)
    assert (two_people == 0).all()


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((4, 1, 75, 3), np.float32), "shape \\(4, 1, 75, 3\\) is not a Holistic pose"),
        (np.zeros((4, 543, 2), np.float32), "shape \\(4, 543, 2\\) is not a Holistic pose"),
        (np.zeros((0, 1, 543, 3), np.float32), "the array has no frames"),
        (np.zeros((4, 543, 3), np.int64), "dtype int64 is not a float type"),
    ],
    ids=["points", "coordinates", "frames", "dtype"],
)
def test_npy_rejects_bad_arrays(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(PoseReadError, match=message):
        read_npy(tmp_path / "bad.npy")


def test_npy_rejects_start_end(tmp_path):
    np.save(tmp_path / "p.npy", np.zeros((4, 543, 3), np.float32))
    with pytest.raises(PoseReadError, match="start/end times need a .pose file"):
        read_pose(tmp_path / "p.npy", start_ms=100)


def test_segment_outside_recording(real_data):
    with pytest.raises(PoseReadError, match="selects no frame of 73 frames at 24 fps"):
        read_pose(real_data / SGG, start_ms=60_000, end_ms=0)


@pytest.mark.parametrize("name", [SGG, SIGNBRIDGE, PHOENIX])
@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.999])
def test_pose_file_cut_inside_frames_is_rejected(tmp_path, real_data, name, fraction):
    content = (real_data / name).read_bytes()
    path = tmp_path / "cut.pose"
    path.write_bytes(content[: int(len(content) * fraction)])
    with pytest.raises(PoseReadError, match="cut.pose: the file is truncated"):
        read_pose(path)


def test_pose_file_cut_at_frame_boundary_is_rejected(tmp_path, real_data):
    # a version 0.1 file stores x, y, z of every frame, then the confidences
    content = (real_data / SGG).read_bytes()
    frame_bytes = 178 * 4 * 4  # points * (3 coordinates + 1 confidence) * float32
    path = tmp_path / "cut.pose"
    path.write_bytes(content[: len(content) - 10 * frame_bytes])
    with pytest.raises(PoseReadError, match="the file is truncated"):
        read_pose(path)


def test_pose_file_without_frames(tmp_path):
    path = tmp_path / "empty.pose"
    _write_pose_file(path, ma.masked_array(np.zeros((0, 1, 1, 3), np.float32)), np.zeros((0, 1, 1), np.float32),
                     [_component("POSE_LANDMARKS", ["NOSE"])])
    with pytest.raises(PoseReadError, match="empty.pose: the file has no frames"):
        read_pose(path)


def test_iris_points_are_skipped_with_one_warning(tmp_path, caplog):
    # MediaPipe's refined face mesh adds iris points 468-477, which Holistic's 468-point face lacks
    names = [str(i) for i in range(478)]
    values = np.full((2, 1, 478, 3), 20.0, np.float32)
    paths = [tmp_path / "first.pose", tmp_path / "second.pose"]
    for path in paths:
        _write_pose_file(path, ma.masked_array(values), np.ones((2, 1, 478), np.float32),
                         [_component("FACE_LANDMARKS", names)])

    with caplog.at_level(logging.WARNING):
        poses = [read_pose(path) for path in paths for _ in range(3)]
    warnings = [record for record in caplog.records if "have no Holistic place" in record.getMessage()]
    assert len(warnings) == 1
    assert "10 point name(s) of FACE_LANDMARKS" in warnings[0].getMessage()
    assert "first.pose" in warnings[0].getMessage()
    face = holistic.COMPONENTS["face"]
    assert all(np.isfinite(pose[:, face]).all() for pose in poses)
