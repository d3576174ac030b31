"""Tests of the synthetic demo corpus: determinism, layout, kinematics, grammar and split."""

import itertools
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from signattention_core import holistic
from signattention_core.corpus import Corpus, synthetic
from signattention_core.text import normalize_text

BODY = {name: index for index, name in enumerate(holistic.BODY_NAMES)}
LEFT_HAND = holistic.COMPONENTS["left_hand"]
RIGHT_HAND = holistic.COMPONENTS["right_hand"]


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def _pixels(points: np.ndarray) -> np.ndarray:
    """Undo the normalisation of x, y and z to pixels of the virtual camera."""
    return points * np.array([synthetic.FRAME_WIDTH, synthetic.FRAME_HEIGHT, synthetic.FRAME_WIDTH])


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "seed0"
    synthetic.write_demo_corpus(root, seed=0, size="small")
    return root


@pytest.fixture(scope="module")
def small_samples():
    return synthetic.generate_demo_samples(seed=0, size="small")


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_files(small_corpus, tmp_path):
    again = tmp_path / "again"
    synthetic.write_demo_corpus(again, seed=0, size="small")
    first, second = _files(small_corpus), _files(again)
    assert list(first) == list(second)
    different = [name for name in first if first[name] != second[name]]
    assert different == []


def test_different_seed_gives_different_files(small_corpus, tmp_path):
    other = tmp_path / "seed1"
    synthetic.write_demo_corpus(other, seed=1, size="small")
    first, second = _files(small_corpus), _files(other)
    assert first["annotations.csv"] != second["annotations.csv"]
    assert first["metadata.json"] != second["metadata.json"]
    shared_poses = [name for name in first if name.startswith("poses/") and name in second]
    assert all(first[name] != second[name] for name in shared_poses)


def test_in_memory_poses_match_written_ones(small_corpus, small_samples):
    metadata, samples, poses = small_samples
    corpus = Corpus.open(small_corpus)
    assert corpus.metadata == json.loads(json.dumps(metadata))
    assert [sample.id for sample in corpus.samples] == [sample.id for sample in samples]
    for sample in samples[:10]:
        np.testing.assert_array_equal(corpus.load_pose(sample.id), poses[sample.id])


def test_existing_folder_is_rejected(small_corpus):
    with pytest.raises(ValueError, match="already exists"):
        synthetic.write_demo_corpus(small_corpus, seed=0, size="small")


# ---------------------------------------------------------------- layout and annotations


def test_written_corpus_passes_validation(small_corpus):
    corpus = Corpus.open(small_corpus, check_poses=True)
    assert len(corpus) == 72  # 3 signers x 12 sentences x 2 repetitions
    assert corpus.metadata["split_type"] == "signer_independent"
    assert corpus.metadata["input_language"] == "gsl-synthetic"
    assert corpus.metadata["input_types"] == ["pose"]
    assert corpus.metadata["output_types"] == ["gloss", "text"]
    for key in ("name", "id", "url", "output_language"):
        assert key in corpus.metadata


def test_pose_shape_and_frame_count(small_samples):
    _, samples, poses = small_samples
    for sample in samples:
        pose = poses[sample.id]
        assert pose.dtype == np.float32
        assert pose.shape == (sample.n_frames, holistic.N_POINTS, 3)
        assert sample.fps == 30.0


def test_written_pose_has_person_axis(small_corpus):
    corpus = Corpus.open(small_corpus)
    sample = corpus.samples[0]
    raw = np.load(corpus.pose_path(sample.id))
    assert raw.shape == (sample.n_frames, 1, holistic.N_POINTS, 3)
    assert raw.dtype == np.float32


def test_gloss_spans_are_ordered_and_inside(small_samples):
    _, samples, _ = small_samples
    for sample in samples:
        spans = sample.gloss_spans
        assert len(spans) == len(sample.glosses)
        assert spans[0][0] > 0, "a rest comes before the first sign"
        assert spans[-1][1] < sample.n_frames, "a rest comes after the last sign"
        for (_, end), (next_start, _) in zip(spans, spans[1:]):
            assert next_start - end >= 2, f"{sample.id}: no transition between {spans}"
        for start, end in spans:
            assert end - start >= 6


def test_annotation_fields(small_samples):
    _, samples, _ = small_samples
    for sample in samples:
        assert sample.sentence_group.startswith("s")
        assert sample.text
        assert sample.text == normalize_text(sample.text)
        assert sample.signer in {"signer1", "signer2", "signer3"}
        assert sample.id == f"{sample.extras['scenario']}_{sample.signer}_rep{sample.repetition}/{sample.sentence_group}"


def test_sentence_group_has_one_gloss_sequence(small_samples):
    _, samples, _ = small_samples
    glosses_by_group: dict[str, set[str]] = {}
    for sample in samples:
        glosses_by_group.setdefault(sample.sentence_group, set()).add(sample.gloss)
    assert len(glosses_by_group) == 12
    assert all(len(glosses) == 1 for glosses in glosses_by_group.values())


# ---------------------------------------------------------------- split


def test_split_holds_out_signer3():
    _, performances = synthetic.plan_demo_corpus(seed=0, size="default")
    samples = [performance.sample for performance in performances]
    by_split = {name: [s for s in samples if s.split == name] for name in ("train", "val", "test")}
    assert {s.signer for s in by_split["train"]} == {f"signer{k}" for k in (1, 2, 4, 5, 6, 7)}
    assert {s.signer for s in by_split["val"]} == {"signer3"}
    assert {s.signer for s in by_split["test"]} == {"signer3"}
    assert {s.repetition for s in by_split["val"]} == {1, 2}
    assert {s.repetition for s in by_split["test"]} == {3, 4, 5}


def test_every_test_sentence_is_trained():
    _, performances = synthetic.plan_demo_corpus(seed=0, size="default")
    train_groups = {p.sample.sentence_group for p in performances if p.sample.split == "train"}
    test_groups = {p.sample.sentence_group for p in performances if p.sample.split == "test"}
    assert test_groups <= train_groups


def test_default_size_counts():
    _, performances = synthetic.plan_demo_corpus(seed=0, size="default")
    samples = [performance.sample for performance in performances]
    assert 1500 <= len(samples) <= 2500
    assert len({s.sentence_group for s in samples}) == 54
    repetitions = Counter((s.signer, s.sentence_group) for s in samples)
    assert set(repetitions.values()) <= {3, 4, 5}
    frames = np.array([s.n_frames for s in samples])
    assert 85 <= frames.mean() <= 115


# ---------------------------------------------------------------- grammar and lexicon


def test_sentence_lengths_cover_one_to_eight():
    _, performances = synthetic.plan_demo_corpus(seed=0, size="default")
    lengths = {len(p.sentence.glosses) for p in performances}
    assert lengths == set(range(1, 9))


def test_vocabulary_is_greek_gsl_style():
    vocabulary = synthetic.VOCABULARY
    assert 30 <= len(vocabulary) <= 60
    for gloss in ("ΕΓΩ(1)", "ΕΣΥ", "ΘΕΛΩ", "ΠΟΙΟΣ;", "ΤΙ;", "ΕΝΟΧΛΩ_ΕΣΕΝΑ", "ΠΟΥ;", "ΠΟΤΕ;", "ΕΥΧΑΡΙΣΤΩ"):
        assert gloss in vocabulary
    for gloss in vocabulary:
        assert gloss == gloss.upper()
        assert any("\u0391" <= char <= "\u03a9" for char in gloss), gloss


def test_every_grammar_gloss_has_a_sign():
    for _, glosses, _ in synthetic.grammar_sentences():
        for gloss in glosses:
            assert gloss in synthetic.LEXICON


def test_signs_differ_pairwise():
    for first, second in itertools.combinations(synthetic.LEXICON.values(), 2):
        assert first.differences(second) >= 2, (first.gloss, second.gloss)


def test_sign_definition_depends_on_gloss_only():
    assert synthetic.sign_definition("ΤΡΑΠΕΖΑ") == synthetic.sign_definition("ΤΡΑΠΕΖΑ")
    assert synthetic.sign_definition("ΤΡΑΠΕΖΑ") != synthetic.sign_definition("ΛΕΦΤΑ")
    _, first = synthetic.plan_demo_corpus(seed=0, size="small")
    _, second = synthetic.plan_demo_corpus(seed=5, size="small")
    signs = {sign.gloss: sign for p in first + second for sign in p.signs}
    assert all(sign == synthetic.LEXICON[gloss] for gloss, sign in signs.items())


def test_lexicon_values_are_known():
    for sign in synthetic.LEXICON.values():
        assert sign.hands in synthetic.HAND_ARRANGEMENTS
        assert sign.handshape in synthetic.HANDSHAPES
        assert sign.end_handshape in synthetic.HANDSHAPES
        assert sign.orientation in synthetic.ORIENTATIONS
        assert sign.movement in synthetic.MOVEMENTS
        assert (sign.location == "base") == (sign.hands == "base")
        assert 12 <= sign.frames <= 30


# ---------------------------------------------------------------- kinematics


def test_body_and_face_always_present(small_samples):
    _, _, poses = small_samples
    for pose in poses.values():
        assert not np.isnan(pose[:, holistic.COMPONENTS["body"]]).any()
        assert not np.isnan(pose[:, holistic.COMPONENTS["face"]]).any()


def test_upper_body_inside_frame(small_samples):
    _, _, poses = small_samples
    upper = [BODY[name] for name in ("NOSE", "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_WRIST", "RIGHT_WRIST")]
    for pose in poses.values():
        xy = pose[:, upper, :2]
        assert (xy > 0.0).all()
        assert (xy < 1.0).all()
        assert np.abs(pose[:, :, 2][~np.isnan(pose[:, :, 2])]).max() < 0.5


def test_arm_lengths_stay_constant(small_samples):
    _, samples, poses = small_samples
    for sample in samples[:20]:
        body = _pixels(poses[sample.id][:, holistic.COMPONENTS["body"]].astype(np.float64))
        for side in ("LEFT", "RIGHT"):
            upper = np.linalg.norm(body[:, BODY[f"{side}_SHOULDER"]] - body[:, BODY[f"{side}_ELBOW"]], axis=-1)
            lower = np.linalg.norm(body[:, BODY[f"{side}_ELBOW"]] - body[:, BODY[f"{side}_WRIST"]], axis=-1)
            # keypoint noise of about 1 pixel per coordinate is all that varies
            assert upper.std() < 3.0, (sample.id, side, upper.std())
            assert lower.std() < 3.0, (sample.id, side, lower.std())
            assert upper.mean() > 90.0
            assert lower.mean() > 80.0


def test_hand_wrist_matches_body_wrist(small_samples):
    _, samples, poses = small_samples
    checked = 0
    for sample in samples[:20]:
        pose = _pixels(poses[sample.id].astype(np.float64))
        for hand, wrist in ((LEFT_HAND, "LEFT_WRIST"), (RIGHT_HAND, "RIGHT_WRIST")):
            seen = ~np.isnan(pose[:, hand.start, 0])
            gap = np.linalg.norm(pose[seen, hand.start, :2] - pose[seen, BODY[wrist], :2], axis=-1)
            assert (gap < 10.0).all(), (sample.id, wrist)
            checked += int(seen.sum())
    assert checked > 1000


def test_hands_are_hand_sized(small_samples):
    _, samples, poses = small_samples
    pose = _pixels(poses[samples[0].id].astype(np.float64))
    seen = ~np.isnan(pose[:, RIGHT_HAND.start, 0])
    # wrist to middle finger MCP is about 0.45 of a 75-pixel hand in 3D
    palm = np.linalg.norm(pose[seen, RIGHT_HAND.start + 9] - pose[seen, RIGHT_HAND.start], axis=-1)
    assert 25.0 < np.median(palm) < 45.0


def test_hands_rise_during_signs(small_samples):
    _, samples, poses = small_samples
    index = BODY["RIGHT_INDEX"]  # the small corpus has right-handed signers only
    for sample in samples:
        y = poses[sample.id][:, index, 1] * synthetic.FRAME_HEIGHT
        rest = y[0]
        for start, end in sample.gloss_spans:
            assert y[start:end].mean() < rest - 40.0, (sample.id, start, end)


def test_left_handed_signer_signs_with_left_hand():
    size = synthetic.DemoSize(n_signers=4, n_sentences=4, repetitions=(2, 2), val_repetitions=1, duration_scale=0.5)
    metadata, samples, poses = synthetic.generate_demo_samples(seed=0, size=size)
    assert metadata["generator"]["left_handed_signers"] == ["signer4"]
    for sample in samples:
        pose = poses[sample.id]
        travel = {
            side: np.abs(np.diff(pose[:, BODY[f"{side}_WRIST"], :2], axis=0)).sum()
            for side in ("LEFT", "RIGHT")
        }
        dominant, other = ("LEFT", "RIGHT") if sample.signer == "signer4" else ("RIGHT", "LEFT")
        assert travel[dominant] > travel[other], (sample.id, sample.gloss, travel)


def test_hand_dropouts_come_in_runs(small_samples):
    _, samples, poses = small_samples
    missing = np.concatenate([np.isnan(poses[s.id][:, RIGHT_HAND.start, 0]) for s in samples])
    assert 0.05 < missing.mean() < 0.5
    # a missed hand is missed as a whole
    for sample in samples:
        hand = np.isnan(poses[sample.id][:, RIGHT_HAND])
        assert (hand.all(axis=(1, 2)) == hand.any(axis=(1, 2))).all()


def test_dropouts_more_likely_at_rest(small_samples):
    _, samples, poses = small_samples
    at_rest, signing = [], []
    for sample in samples:
        missing = np.isnan(poses[sample.id][:, RIGHT_HAND.start, 0])
        at_rest.append(missing[:2])
        for start, end in sample.gloss_spans:
            signing.append(missing[start:end])
    assert np.concatenate(at_rest).mean() > 2 * np.concatenate(signing).mean()


# ---------------------------------------------------------------- errors


def test_unknown_size_is_rejected():
    with pytest.raises(ValueError, match="accepted: default, small"):
        synthetic.plan_demo_corpus(seed=0, size="huge")


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_invalid_seed_is_rejected(seed):
    with pytest.raises(ValueError, match="seed"):
        synthetic.plan_demo_corpus(seed=seed, size="small")


def test_size_without_heldout_signer_is_rejected():
    size = synthetic.DemoSize(n_signers=2, n_sentences=4, repetitions=(2, 2), val_repetitions=1, duration_scale=1.0)
    with pytest.raises(ValueError, match="signer3"):
        synthetic.plan_demo_corpus(seed=0, size=size)


def test_size_without_test_repetitions_is_rejected():
    size = synthetic.DemoSize(n_signers=3, n_sentences=4, repetitions=(2, 2), val_repetitions=2, duration_scale=1.0)
    with pytest.raises(ValueError, match="val_repetitions"):
        synthetic.plan_demo_corpus(seed=0, size=size)


# ---------------------------------------------------------------- command line


def test_demo_cli_takes_out_option_and_positional(small_corpus, tmp_path, capsys):
    from signattention_core.corpus.__main__ import main

    assert main(["demo", "--out", str(tmp_path / "option"), "--size", "small"]) == 0
    assert main(["demo", str(tmp_path / "positional"), "--size", "small"]) == 0
    assert _files(tmp_path / "option") == _files(small_corpus)
    assert _files(tmp_path / "positional") == _files(small_corpus)
    capsys.readouterr()

    assert main(["demo", "--out", str(tmp_path / "option"), "--size", "small", "--seed", "1"]) == 1
    assert "(--overwrite on the command line)" in capsys.readouterr().err
    assert _files(tmp_path / "option") == _files(small_corpus)
    assert main(["demo", "--out", str(tmp_path / "option"), "--size", "small", "--seed", "1", "--overwrite"]) == 0
    assert json.loads((tmp_path / "option" / "metadata.json").read_text(encoding="utf-8"))["generator"]["seed"] == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["option", "positional"]


def test_demo_cli_rejects_two_output_folders(tmp_path, capsys):
    from signattention_core.corpus.__main__ import main

    with pytest.raises(SystemExit) as info:
        main(["demo", str(tmp_path / "a"), "--out", str(tmp_path / "b")])
    assert info.value.code == 2
    assert "either as DIR or as --out DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["demo"])
    assert info.value.code == 2
    assert list(tmp_path.iterdir()) == []


def test_demo_cli_interrupted_writes_nothing(small_corpus, tmp_path, capsys, monkeypatch):
    from signattention_core.corpus.__main__ import main

    render = synthetic.render_performance
    calls = []

    def interrupted(performance, seed):
        # Ctrl-C while the third pose is being written
        calls.append(performance.sample.id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return render(performance, seed)

    monkeypatch.setattr(synthetic, "render_performance", interrupted)
    assert main(["demo", "--out", str(tmp_path / "new"), "--size", "small"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

    existing = tmp_path / "existing"
    shutil.copytree(small_corpus, existing)
    calls.clear()
    assert main(["demo", "--out", str(existing), "--size", "small", "--seed", "1", "--overwrite"]) == 130
    assert _files(existing) == _files(small_corpus)
    assert [path.name for path in tmp_path.iterdir()] == ["existing"]
