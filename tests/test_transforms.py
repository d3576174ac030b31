"""Tests for signattention_core.transforms: index bookkeeping, masks and normalisation."""

import logging
import math

import numpy as np
import pytest

from signattention_core import holistic
from signattention_core.transforms import (
    STUDY_TRANSFORMS,
    CenterOnKeypoint,
    Compose,
    FilterLandmarks,
    FlattenKeypoints,
    NormalizeShoulders,
    PadTruncateFrames,
    PoseSequence,
    RandomSampleFrames,
    ReplaceNansWithZeros,
    TransformConfig,
    build_pipeline,
    n_features,
    transform_pose,
)

BODY = holistic.COMPONENTS["body"]
LEFT_HAND = holistic.COMPONENTS["left_hand"]
RIGHT_HAND = holistic.COMPONENTS["right_hand"]
LEFT_SHOULDER = holistic.point_index("body", "LEFT_SHOULDER")
RIGHT_SHOULDER = holistic.point_index("body", "RIGHT_SHOULDER")
NOSE = holistic.point_index("body", "NOSE")


def make_pose(n_frames: int, seed: int = 0) -> np.ndarray:
    """Random pose (F, 543, 3) whose x coordinate encodes the frame and y the keypoint."""
    rng = np.random.default_rng(seed)
    pose = rng.random((n_frames, holistic.N_POINTS, 3), dtype=np.float32)
    pose[:, :, 0] = np.arange(n_frames, dtype=np.float32)[:, None]
    pose[:, :, 1] = np.arange(holistic.N_POINTS, dtype=np.float32)[None, :]
    return pose


def study_points() -> np.ndarray:
    """Canonical indices of body, left hand and right hand, in that order."""
    return np.r_[BODY.start:BODY.stop, LEFT_HAND.start:LEFT_HAND.stop, RIGHT_HAND.start:RIGHT_HAND.stop]


# ---------------------------------------------------------------- frame sampling


def test_evaluation_sampling_first_frame_of_each_window():
    out = transform_pose(make_pose(10), TransformConfig(sample_rate=3), rng=None)

    assert out.frame_index.tolist() == [0, 3, 6, 9]
    assert out.frame_index.dtype == np.int64
    assert out.features.shape == (4, 150)
    assert out.features.dtype == np.float32
    assert out.keypoint_mask.shape == (4, 75)


def test_evaluation_sampling_is_deterministic():
    config = TransformConfig(sample_rate=4)
    first = transform_pose(make_pose(23), config, rng=None)
    second = transform_pose(make_pose(23), config, rng=None)

    assert np.array_equal(first.frame_index, second.frame_index)
    assert np.array_equal(first.features, second.features)


def test_training_sampling_stays_in_windows():
    n_frames, rate = 20, 3
    for seed in range(50):
        out = transform_pose(make_pose(n_frames), TransformConfig(sample_rate=rate), np.random.default_rng(seed))
        windows = out.frame_index // rate

        assert out.frame_index.shape == (math.ceil(n_frames / rate),)
        assert windows.tolist() == list(range(len(windows)))
        assert (out.frame_index < n_frames).all()


def test_training_sampling_uses_every_offset():
    offsets = set()
    for seed in range(40):
        out = transform_pose(make_pose(9), TransformConfig(sample_rate=3), np.random.default_rng(seed))
        offsets.update((out.frame_index % 3).tolist())

    assert offsets == {0, 1, 2}


def test_training_sampling_same_seed_same_frames():
    config = TransformConfig(sample_rate=5)
    first = transform_pose(make_pose(40), config, np.random.default_rng(7))
    second = transform_pose(make_pose(40), config, np.random.default_rng(7))

    assert np.array_equal(first.frame_index, second.frame_index)


def test_partial_last_window_stays_in_range():
    # 10 frames in windows of 4: [0, 4), [4, 8), [8, 10)
    for seed in range(30):
        out = transform_pose(make_pose(10), TransformConfig(sample_rate=4), np.random.default_rng(seed))

        assert out.frame_index.shape == (3,)
        assert 8 <= out.frame_index[-1] <= 9


def test_sample_rate_one_keeps_every_frame():
    out = transform_pose(make_pose(7), TransformConfig(sample_rate=1), np.random.default_rng(0))

    assert out.frame_index.tolist() == list(range(7))


def test_features_come_from_reported_frames():
    pose = make_pose(30, seed=3)
    out = transform_pose(pose, TransformConfig(sample_rate=3), np.random.default_rng(11))
    expected = pose[out.frame_index][:, study_points(), :2].reshape(len(out.frame_index), -1)  # (P, E)

    assert np.array_equal(out.features, expected)


def test_sampling_composes_index_bookkeeping():
    # two samplers in a row: the second picks among positions, frame_index stays in raw frames
    pose = PoseSequence.from_pose(make_pose(36))
    once = RandomSampleFrames(3)(pose, None)
    twice = RandomSampleFrames(2)(once, None)

    assert once.frame_index.tolist() == list(range(0, 36, 3))
    assert twice.frame_index.tolist() == list(range(0, 36, 6))
    assert np.array_equal(twice.data[:, 0, 0], twice.frame_index.astype(np.float32))


# ---------------------------------------------------------------- truncation and padding


def test_truncation_keeps_first_positions():
    out = transform_pose(make_pose(30), TransformConfig(sample_rate=3, max_frames=4), rng=None)

    assert out.frame_index.tolist() == [0, 3, 6, 9]
    assert out.features.shape == (4, 150)


def test_transform_pose_does_not_pad():
    out = transform_pose(make_pose(5), TransformConfig(sample_rate=1, max_frames=220), rng=None)

    assert out.features.shape == (5, 150)
    assert (out.frame_index >= 0).all()


def test_study_pipeline_pads_to_max_frames():
    config = TransformConfig(sample_rate=3, max_frames=6)
    pipeline = build_pipeline(STUDY_TRANSFORMS, config, pad=True)
    out = pipeline(PoseSequence.from_pose(make_pose(10)), None)

    assert out.data.shape == (6, 150)
    assert out.frame_index.tolist() == [0, 3, 6, 9, -1, -1]
    assert (out.data[4:] == 0).all()
    assert not out.keypoint_mask[4:].any()
    assert out.keypoint_mask[:4].all()


def test_padding_length_equal_to_maximum_unchanged():
    pose = PoseSequence.from_pose(make_pose(4))
    out = PadTruncateFrames(4, pad=True)(pose, None)

    assert out.frame_index.tolist() == [0, 1, 2, 3]


def test_build_pipeline_without_pad_matches_transform_pose():
    config = TransformConfig(sample_rate=2, max_frames=8)
    pose = make_pose(25, seed=1)
    by_names = build_pipeline(list(STUDY_TRANSFORMS), config)(PoseSequence.from_pose(pose), np.random.default_rng(4))
    direct = transform_pose(pose, config, np.random.default_rng(4))

    assert np.array_equal(by_names.frame_index, direct.frame_index)
    assert np.array_equal(by_names.data, direct.features)


# ---------------------------------------------------------------- missing keypoints


def test_nans_become_zero_with_mask():
    pose = make_pose(6)
    pose[2, LEFT_HAND] = np.nan  # left hand not detected in frame 2
    pose[4, 0, 1] = np.nan  # nose y missing in frame 4
    out = transform_pose(pose, TransformConfig(sample_rate=1), rng=None)
    features = out.features.reshape(6, 75, 2)  # (P, K, C)

    assert np.isfinite(out.features).all()
    assert (features[2, 33:54] == 0).all()
    assert not out.keypoint_mask[2, 33:54].any()
    assert out.keypoint_mask[2, :33].all()
    assert out.keypoint_mask[2, 54:].all()
    assert not out.keypoint_mask[4, 0]
    assert features[4, 0, 1] == 0
    assert features[4, 0, 0] == 4  # x was detected and stays
    assert out.keypoint_mask.sum() == 6 * 75 - 21 - 1


def test_infinity_replaced_with_zero():
    pose = PoseSequence.from_pose(make_pose(3))
    pose.data[1, 5, 0] = np.inf
    out = ReplaceNansWithZeros()(pose, None)

    assert out.data[1, 5, 0] == 0
    assert np.isfinite(out.data).all()


def test_missing_z_masks_only_in_3d():
    pose = make_pose(2)
    pose[0, 3, 2] = np.nan
    flat = transform_pose(pose, TransformConfig(sample_rate=1), rng=None)
    deep = transform_pose(pose, TransformConfig(sample_rate=1, use_3d=True), rng=None)

    assert flat.keypoint_mask[0, 3]
    assert not deep.keypoint_mask[0, 3]


# ---------------------------------------------------------------- landmark selection


def test_filter_keeps_given_component_order():
    pose = PoseSequence.from_pose(make_pose(2))
    out = FilterLandmarks(("rhand", "body"), use_3d=True)(pose, None)
    expected = np.r_[RIGHT_HAND.start:RIGHT_HAND.stop, BODY.start:BODY.stop]

    assert out.data.shape == (2, 54, 3)
    assert np.array_equal(out.point_index, expected)
    assert np.array_equal(out.data[0, :, 1], expected.astype(np.float32))


def test_flatten_is_keypoint_major():
    pose = FilterLandmarks(("body",))(PoseSequence.from_pose(make_pose(3)), None)
    flat = FlattenKeypoints()(pose, None)

    assert flat.data.shape == (3, 66)
    assert np.array_equal(flat.data[1, 10:12], pose.data[1, 5])


@pytest.mark.parametrize(
    ("landmarks", "use_3d", "expected"),
    [
        (("body", "left_hand", "right_hand"), False, 150),
        (("body", "lhand", "rhand"), True, 225),
        (("face",), False, 936),
        (("left_hand",), True, 63),
    ],
)
def test_n_features_matches_output(landmarks, use_3d, expected):
    config = TransformConfig(landmarks=landmarks, use_3d=use_3d, sample_rate=1)
    out = transform_pose(make_pose(2), config, rng=None)

    assert n_features(config) == expected
    assert out.features.shape == (2, expected)


def test_config_accepts_study_landmark_names():
    config = TransformConfig(landmarks=("body", "lhand", "rhand"))

    assert config.landmarks == ("body", "left_hand", "right_hand")
    assert config == TransformConfig()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"landmarks": ("body", "hands")}, "unknown landmark component 'hands'"),
        ({"landmarks": ("lhand", "left_hand")}, "twice"),
        ({"landmarks": ()}, "landmarks is empty"),
        ({"sample_rate": 0}, "sample_rate must be an integer >= 1"),
        ({"max_frames": 2.5}, "max_frames must be an integer >= 1"),
        ({"normalize": "wrist"}, "accepted: none, shoulders"),
        ({"use_3d": "yes"}, "use_3d must be True or False"),
    ],
)
def test_config_rejects_invalid_values(changes, message):
    with pytest.raises(ValueError, match=message):
        TransformConfig(**changes)


def test_build_pipeline_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown transforms \\['Mirror'\\]; accepted: FilterLandmarks"):
        build_pipeline(["FilterLandmarks", "Mirror"], TransformConfig())


def test_build_pipeline_rejects_repeated_name():
    with pytest.raises(ValueError, match="more than once"):
        build_pipeline(["FlattenKeypoints", "FlattenKeypoints"], TransformConfig())


def test_build_pipeline_adds_normalisation_first():
    pipeline = build_pipeline(STUDY_TRANSFORMS, TransformConfig(normalize="shoulders"))

    assert isinstance(pipeline.steps[0], NormalizeShoulders)
    assert len(pipeline.steps) == 6


def test_build_pipeline_rejects_normalisation_when_off():
    with pytest.raises(ValueError, match="normalize is 'none'"):
        build_pipeline(["NormalizeShoulders", *STUDY_TRANSFORMS], TransformConfig())


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((5, 75, 3), "expected \\(F, 543, C\\)"),
        ((5, 2, 543, 3), "2 people"),
        ((0, 543, 3), "no frames"),
        ((5, 543, 1), "C >= 2"),
    ],
)
def test_pose_shape_errors_name_sample(shape, message):
    with pytest.raises(ValueError, match=message) as error:
        transform_pose(np.zeros(shape, dtype=np.float32), TransformConfig(), None, sample_id="s/7")

    assert "'s/7'" in str(error.value)


def test_corpus_layout_with_people_axis_accepted():
    pose = make_pose(6)
    with_people = transform_pose(pose[:, None], TransformConfig(), rng=None)
    without = transform_pose(pose, TransformConfig(), rng=None)

    assert np.array_equal(with_people.features, without.features)


def test_3d_filter_needs_three_coordinates():
    pose = make_pose(3)[:, :, :2]
    with pytest.raises(ValueError, match="set use_3d to False"):
        transform_pose(pose, TransformConfig(use_3d=True), rng=None)


def test_flatten_twice_rejected():
    pipeline = Compose((FlattenKeypoints(), FilterLandmarks()))
    with pytest.raises(ValueError, match="place FlattenKeypoints last"):
        pipeline(PoseSequence.from_pose(make_pose(2)), None)


# ---------------------------------------------------------------- normalisation


def shoulder_pose(n_frames: int = 6) -> np.ndarray:
    """Pose with shoulders at x 0.6 (left) and 0.4 (right), y 0.5, z 0: centre (0.5, 0.5, 0), width 0.2."""
    pose = make_pose(n_frames, seed=5) * 0.01 + 0.3
    pose[:, LEFT_SHOULDER] = (0.6, 0.5, 0.0)
    pose[:, RIGHT_SHOULDER] = (0.4, 0.5, 0.0)
    return pose


def test_shoulder_normalisation_centres_and_scales():
    pose = shoulder_pose()
    config = TransformConfig(sample_rate=1, normalize="shoulders", use_3d=True)
    out = transform_pose(pose, config, rng=None)
    points = out.features.reshape(6, 75, 3)  # (P, K, C)

    assert np.allclose(points[:, LEFT_SHOULDER], (0.5, 0.0, 0.0), atol=1e-5)
    assert np.allclose(points[:, RIGHT_SHOULDER], (-0.5, 0.0, 0.0), atol=1e-5)
    wrist = 33  # first left-hand keypoint after filtering
    expected = (pose[:, LEFT_HAND.start] - (0.5, 0.5, 0.0)) / 0.2
    assert np.allclose(points[:, wrist], expected, atol=1e-5)


def test_shoulder_normalisation_uses_median_over_detected_frames():
    pose = shoulder_pose(5)
    pose[0, LEFT_SHOULDER] = (0.9, 0.9, 0.0)  # an outlier frame
    pose[1, RIGHT_SHOULDER] = np.nan  # a frame with one shoulder missing
    pose[1, LEFT_SHOULDER] = (5.0, 5.0, 5.0)  # ignored because the other shoulder is missing
    out = NormalizeShoulders()(PoseSequence.from_pose(pose), None)

    assert np.allclose(out.data[2:, LEFT_SHOULDER], (0.5, 0.0, 0.0), atol=1e-5)
    assert np.isnan(out.data[1, RIGHT_SHOULDER]).all()


def test_shoulder_normalisation_skips_without_shoulders(caplog):
    pose = shoulder_pose(4)
    pose[:, RIGHT_SHOULDER] = np.nan
    with caplog.at_level(logging.WARNING, logger="signattention_core.transforms"):
        out = transform_pose(pose, TransformConfig(sample_rate=1, normalize="shoulders"), None, sample_id="no-shoulders")
    plain = transform_pose(pose, TransformConfig(sample_rate=1), None)

    assert np.array_equal(out.features, plain.features)
    assert "no-shoulders" in caplog.text
    assert "unnormalised" in caplog.text


def test_shoulder_normalisation_warns_once_per_sample(caplog):
    pose = shoulder_pose(3)
    pose[:, LEFT_SHOULDER] = np.nan
    config = TransformConfig(sample_rate=1, normalize="shoulders")
    with caplog.at_level(logging.WARNING, logger="signattention_core.transforms"):
        for _ in range(3):
            transform_pose(pose, config, None, sample_id="repeat-me")

    assert caplog.text.count("repeat-me") == 1


def test_normalisation_leaves_missing_and_padding():
    pose = shoulder_pose(3)
    pose[1, LEFT_HAND] = np.nan
    pipeline = Compose((
        FilterLandmarks(),
        PadTruncateFrames(5, pad=True),
        ReplaceNansWithZeros(),
        NormalizeShoulders(),
    ))
    out = pipeline(PoseSequence.from_pose(pose), None)

    assert (out.data[3:] == 0).all()
    assert (out.data[1, 33:54] == 0).all()
    assert np.allclose(out.data[:3, LEFT_SHOULDER, :2], (0.5, 0.0), atol=1e-5)


def test_normalisation_after_filter_without_body_fails():
    pipeline = Compose((FilterLandmarks(("left_hand",)), NormalizeShoulders()))
    with pytest.raises(ValueError, match="run NormalizeShoulders before FilterLandmarks"):
        pipeline(PoseSequence.from_pose(shoulder_pose()), None)


def test_center_on_keypoint_per_frame():
    pose = make_pose(4, seed=2)
    pose[2, NOSE] = np.nan
    out = CenterOnKeypoint("body.NOSE")(PoseSequence.from_pose(pose), None)
    median_nose = np.median(pose[[0, 1, 3], NOSE], axis=0)

    assert np.allclose(out.data[[0, 1, 3], NOSE], 0.0)
    assert np.allclose(out.data[2, 7], pose[2, 7] - median_nose, atol=1e-6)
    assert np.allclose(out.data[0, 40], pose[0, 40] - pose[0, NOSE], atol=1e-6)


def test_center_on_keypoint_whole_sample():
    pose = make_pose(5, seed=4)
    out = CenterOnKeypoint(NOSE, per_frame=False)(PoseSequence.from_pose(pose), None)
    median_nose = np.median(pose[:, NOSE], axis=0)

    assert np.allclose(out.data, pose - median_nose, atol=1e-6)


def test_center_on_unknown_keypoint_rejected():
    with pytest.raises(ValueError, match="unknown keypoint 'body.TAIL'"):
        CenterOnKeypoint("body.TAIL")


# ---------------------------------------------------------------- real recordings


def test_real_phoenix_pose_transforms(real_data):
    from signattention_core.corpus.poses import read_pose

    pose = read_pose(real_data / "phoenix14t-pose" / "25October_2010_Monday_tagesschau-17.pose")  # (F, 543, 3)
    n_frames = pose.shape[0]
    config = TransformConfig(normalize="shoulders")
    out = transform_pose(pose, config, rng=None, sample_id="phoenix")
    points = out.features.reshape(len(out.frame_index), 75, 2)  # (P, K, C)
    both = out.keypoint_mask[:, LEFT_SHOULDER] & out.keypoint_mask[:, RIGHT_SHOULDER]
    widths = np.linalg.norm(points[both, LEFT_SHOULDER] - points[both, RIGHT_SHOULDER], axis=1)

    assert out.frame_index.tolist() == list(range(0, n_frames, 3))
    assert np.isfinite(out.features).all()
    assert both.any()
    assert abs(float(np.median(widths)) - 1.0) < 0.05


def test_real_missing_hands_masked(real_data):
    from signattention_core.corpus.poses import read_pose

    pose = read_pose(real_data / "signbridge-asl-sentences" / "chair-black-tall-k" / "capture.pose")
    hands_missing = np.isnan(pose[:, LEFT_HAND, 0]).all(axis=1)  # (F,)
    out = transform_pose(pose, TransformConfig(sample_rate=1), rng=None)
    points = out.features.reshape(pose.shape[0], 75, 2)  # (P, K, C)

    assert hands_missing.any()
    assert not out.keypoint_mask[hands_missing, 33:54].any()
    assert (points[hands_missing, 33:54] == 0).all()
