"""Tests for corpus validation: one bad corpus per problem, and the command line."""

import json

import numpy as np
import pytest

from signattention_core.corpus import Corpus, CorpusError, Sample, write_corpus
from signattention_core.corpus.__main__ import main
from signattention_core.corpus.validate import validate_corpus

HEADER = "id,split,gloss,text,signer,repetition,sentence_group,fps,n_frames,gloss_spans\n"


def _pose(n_frames: int = 5) -> np.ndarray:
    return np.full((n_frames, 543, 3), 0.5, dtype=np.float32)  # (F, 543, 3)


@pytest.fixture()
def good_dir(tmp_path):
    root = tmp_path / "good"
    samples = [
        Sample("a", "train", "ΕΓΩ(1) ΠΟΙΟΣ;", "ποιος είμαι", signer="signer1", repetition=1,
               n_frames=5, gloss_spans=((0, 2), (2, 5))),
        Sample("b", "test", "ΝΑΙ", "ναι", signer="signer2", repetition=1),
        Sample("c", "val", "ΟΧΙ", "όχι", signer="signer2", repetition=2),
    ]
    metadata = {"name": "good", "id": "good", "url": "", "input_language": "gsl", "output_language": "el",
                "input_types": ["pose"], "output_types": ["gloss"], "split_type": "signer_independent"}
    write_corpus(root, metadata, samples, lambda sample_id: _pose())
    return root


def _annotations(root, text: str) -> None:
    (root / "annotations.csv").write_text(text, encoding="utf-8")


def _missing_pose(root):
    (root / "poses" / "b.npy").unlink()


def _unreadable_pose(root):
    (root / "poses" / "b.npy").write_bytes(b"not a numpy file")


def _wrong_shape(root):
    np.save(root / "poses" / "b.npy", np.zeros((5, 75, 3), np.float32))


def _no_detected_frame(root):
    np.save(root / "poses" / "b.npy", np.full((5, 1, 543, 3), np.nan, np.float32))


def _span_past_end(root):
    np.save(root / "poses" / "a.npy", _pose(4)[:, None])


def _empty_annotations(root):
    _annotations(root, "")


def _header_only(root):
    _annotations(root, HEADER)


def _not_utf8(root):
    (root / "annotations.csv").write_bytes(
        HEADER.encode() + "a,train,ΝΑΙ,,,,,,,\n".encode() + "b,test,NAI,caf\xe9,,,,,,\n".encode("latin-1"))


def _duplicate_id(root):
    _annotations(root, HEADER + "a,train,ΝΑΙ,,signer1,,,,,\nb,test,ΝΑΙ,,signer2,,,,,\nb,test,ΟΧΙ,,signer2,,,,,\n")


def _unknown_split(root):
    _annotations(root, HEADER + "a,train,ΝΑΙ,,signer1,,,,,\nb,holdout,ΝΑΙ,,signer2,,,,,\n")


def _empty_gloss(root):
    _annotations(root, HEADER + "a,train,ΝΑΙ,,signer1,,,,,\nb,test,\u00a0 ,,signer2,,,,,\n")


def _row_width(root):
    _annotations(root, HEADER + "a,train,ΝΑΙ,,signer1,,,,,\nb,test,ΝΑΙ,ναι, όχι,signer2,,,,,\n")


def _bad_number(root):
    _annotations(root, HEADER + "a,train,ΝΑΙ,,signer1,first,,,,\n")


def _bad_spans(root):
    _annotations(root, HEADER + 'a,train,ΝΑΙ ΟΧΙ,,signer1,,,,,"[[0,3]]"\n')


def _signer_overlap(root):
    _annotations(root, HEADER + "a,train,ΝΑΙ,,signer1,,,,,\nb,test,ΝΑΙ,,signer1,,,,,\nc,val,ΟΧΙ,,signer2,,,,,\n")


def _missing_signer(root):
    _annotations(root, HEADER + "a,train,ΝΑΙ,,signer1,,,,,\nb,test,ΝΑΙ,,,,,,,\nc,val,ΟΧΙ,,signer2,,,,,\n")


def _sentence_overlap(root):
    metadata = json.loads((root / "metadata.json").read_text(encoding="utf-8"))
    metadata["split_type"] = "sentence_independent"
    (root / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    _annotations(root, HEADER + "a,train,ΝΑΙ,,signer1,,,,,\nb,test,ΝΑΙ,,signer2,,,,,\nc,val,ΟΧΙ,,signer2,,,,,\n")


def _unknown_split_type(root):
    (root / "metadata.json").write_text(json.dumps({"name": "x", "split_type": "by_signer"}), encoding="utf-8")


def _missing_metadata(root):
    (root / "metadata.json").unlink()


def _invalid_metadata(root):
    (root / "metadata.json").write_text('{"name": "x",\n "id": }', encoding="utf-8")


# (case, mutation, problem code, file, location, message fragment)
ERROR_CASES = [
    ("missing pose", _missing_pose, "missing-pose", "poses/b.npy", "id b", "sample 'b' has no pose file"),
    ("unreadable pose", _unreadable_pose, "unreadable-pose", "poses/b.npy", "id b", "cannot be read as a .npy array"),
    ("wrong shape", _wrong_shape, "unreadable-pose", "poses/b.npy", "id b", "shape (5, 75, 3) is not a Holistic pose"),
    ("no detected frame", _no_detected_frame, "no-detected-frame", "poses/b.npy", "id b",
     "none of the 5 frames has a detected keypoint"),
    ("span past end", _span_past_end, "span-past-end", "poses/a.npy", "id a",
     "gloss_spans end at frame 5 but the pose has 4 frames"),
    ("empty annotations", _empty_annotations, "empty-annotations", "annotations.csv", "", "the file is empty"),
    ("header only", _header_only, "empty-annotations", "annotations.csv", "", "has a header but no sample rows"),
    ("not utf8", _not_utf8, "not-utf8", "annotations.csv", "line 3", "invalid UTF-8 byte 0xe9"),
    ("duplicate id", _duplicate_id, "duplicate-id", "annotations.csv", "line 4", "id 'b' already appears on line 3"),
    ("unknown split", _unknown_split, "unknown-split", "annotations.csv", "line 3", "unknown split 'holdout'"),
    ("empty gloss", _empty_gloss, "empty-gloss", "annotations.csv", "line 3", "sample 'b' has an empty gloss"),
    ("row width", _row_width, "row-width", "annotations.csv", "line 3", "11 fields where the header has 10"),
    ("bad number", _bad_number, "invalid-value", "annotations.csv", "line 2", "repetition 'first' is not an integer"),
    ("bad spans", _bad_spans, "invalid-gloss-spans", "annotations.csv", "line 2", "1 spans for 2 glosses"),
    ("signer overlap", _signer_overlap, "split-overlap", "annotations.csv", "id b",
     "split_type is signer_independent but signer 'signer1' is in train (e.g. 'a') and in test"),
    ("missing signer", _missing_signer, "missing-signer", "annotations.csv", "id b",
     "split_type is signer_independent but sample 'b' has no signer"),
    ("sentence overlap", _sentence_overlap, "split-overlap", "annotations.csv", "id b",
     "split_type is sentence_independent but sentence group 'ΝΑΙ' is in train"),
    ("unknown split type", _unknown_split_type, "unknown-split-type", "metadata.json", "split_type",
     "unknown split_type 'by_signer'"),
    ("missing metadata", _missing_metadata, "missing-metadata", "metadata.json", "", "not found"),
    ("invalid metadata", _invalid_metadata, "invalid-json", "metadata.json", "line 2", "invalid JSON"),
]


def test_good_corpus_is_usable(good_dir, capsys):
    report = validate_corpus(good_dir)
    assert report.problems == []
    assert report.ok
    assert main(["validate", str(good_dir)]) == 0
    assert "3 samples, 0 error(s), 0 warning(s): corpus is usable" in capsys.readouterr().out


@pytest.mark.parametrize(("case", "mutate", "code", "file", "location", "fragment"), ERROR_CASES,
                         ids=[case[0] for case in ERROR_CASES])
def test_bad_corpus_error(good_dir, capsys, case, mutate, code, file, location, fragment):
    mutate(good_dir)
    report = validate_corpus(good_dir)
    matching = [p for p in report.errors if p.code == code]
    assert len(matching) == 1, report.format()
    problem = matching[0]
    assert problem.file == file or problem.file.endswith(file)
    assert problem.location == location
    assert fragment in problem.message
    assert problem.fix
    assert not report.ok

    assert main(["validate", str(good_dir)]) == 1
    output = capsys.readouterr().out
    assert fragment in output
    assert "corpus is NOT usable" in output

    if code == "missing-pose":
        # the reader lets a dataset drop samples without poses
        assert len(Corpus.open(good_dir)) == 3
    elif code in ("unreadable-pose", "no-detected-frame", "span-past-end"):
        Corpus.open(good_dir)
        with pytest.raises(CorpusError, match="error"):
            Corpus.open(good_dir, check_poses=True)
    else:
        with pytest.raises(CorpusError) as info:
            Corpus.open(good_dir)
        assert fragment in str(info.value)


def test_extra_pose_is_a_warning(good_dir, capsys):
    np.save(good_dir / "poses" / "stray.npy", _pose()[:, None])
    report = validate_corpus(good_dir)
    assert report.ok
    assert [p.code for p in report.warnings] == ["extra-pose"]
    assert report.warnings[0].file == "poses/stray.npy"
    assert "pose file has no row in annotations.csv" in report.warnings[0].message
    assert main(["validate", str(good_dir)]) == 0
    assert "warning: poses/stray.npy: pose file has no row" in capsys.readouterr().out


def test_n_frames_mismatch_is_a_warning(good_dir):
    (good_dir / "annotations.csv").write_text(
        HEADER + "a,train,ΝΑΙ,,signer1,,,,9,\nb,test,ΝΑΙ,,signer2,,,,,\nc,val,ΟΧΙ,,signer2,,,,,\n", encoding="utf-8")
    report = validate_corpus(good_dir)
    assert report.ok
    assert [p.code for p in report.warnings] == ["n-frames-mismatch"]
    assert "n_frames 9 but the pose has 5 frames" in report.warnings[0].message


def test_report_lists_every_problem(good_dir):
    _missing_pose(good_dir)
    np.save(good_dir / "poses" / "a.npy", np.zeros((5, 75, 3), np.float32))
    report = validate_corpus(good_dir)
    assert sorted(p.code for p in report.errors) == ["missing-pose", "unreadable-pose"]


def test_validate_missing_folder(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nowhere")]) == 1
    assert "the folder was not found" in capsys.readouterr().out


def test_infinite_values_count_as_not_detected(good_dir):
    np.save(good_dir / "poses" / "b.npy", np.full((5, 1, 543, 3), np.inf, np.float32))
    report = validate_corpus(good_dir)
    assert [p.code for p in report.errors] == ["no-detected-frame"]
    assert report.errors[0].location == "id b"


def test_some_infinite_values_are_a_warning(good_dir):
    pose = _pose()
    pose[2, 40] = -np.inf
    np.save(good_dir / "poses" / "b.npy", pose[:, None])
    report = validate_corpus(good_dir)
    assert report.ok
    assert [p.code for p in report.warnings] == ["non-finite-values"]
    assert "3 infinite coordinate value(s)" in report.warnings[0].message


def test_unordered_span_past_end_is_an_error(good_dir):
    (good_dir / "annotations.csv").write_text(
        HEADER + 'a,train,ΕΓΩ(1) ΠΟΙΟΣ;,,signer1,,,,,"[[3,9],[0,3]]"\nb,test,ΝΑΙ,,signer2,,,,,\n'
        "c,val,ΟΧΙ,,signer2,,,,,\n", encoding="utf-8")
    report = validate_corpus(good_dir)
    assert [p.code for p in report.errors] == ["span-past-end"]
    assert "gloss_spans end at frame 9 but the pose has 5 frames" in report.errors[0].message


def test_unreadable_pose_message_names_file_once(good_dir):
    np.save(good_dir / "poses" / "b.npy", np.zeros((5, 75, 3), np.float32))
    problem = validate_corpus(good_dir).errors[0]
    assert problem.file == "poses/b.npy"
    assert "b.npy" not in problem.message


def test_two_dimensional_pose_file_is_usable(good_dir):
    import io

    import numpy.ma as ma
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    # an OpenPose-style file: x and y in pixels and a confidence, no z
    component = PoseHeaderComponent("POSE_LANDMARKS", ["NOSE", "LEFT_SHOULDER"], [], [(0, 0, 0)] * 2, "XYC")
    header = PoseHeader(0.1, PoseHeaderDimensions(200, 100, 1), [component])
    data = ma.masked_array(np.full((5, 1, 2, 2), 50.0, np.float32))
    buffer = io.BytesIO()
    Pose(header, NumPyPoseBody(fps=25, data=data, confidence=np.ones((5, 1, 2), np.float32))).write(buffer)
    (good_dir / "poses" / "b.npy").unlink()
    (good_dir / "poses" / "b.pose").write_bytes(buffer.getvalue())

    report = validate_corpus(good_dir)
    assert report.ok, report.format()
    pose = Corpus.open(good_dir).load_pose("b")  # (F, 543, 3)
    np.testing.assert_allclose(pose[0, 0, :2], [0.25, 0.5])
    assert np.isnan(pose[0, 0, 2])


def test_id_with_file_suffix_gets_a_hint(good_dir):
    (good_dir / "annotations.csv").write_text(
        HEADER + "a.npy,train,ΝΑΙ,,signer1,,,,,\nb,test,ΝΑΙ,,signer2,,,,,\nc,val,ΟΧΙ,,signer2,,,,,\n",
        encoding="utf-8")
    missing = [p for p in validate_corpus(good_dir).errors if p.code == "missing-pose"]
    assert len(missing) == 1
    assert missing[0].location == "id a.npy"
    assert missing[0].fix == "write the id without its file suffix, as 'a', because poses/a.npy exists"


def test_unreadable_annotations_do_not_flag_every_pose(good_dir):
    (good_dir / "annotations.csv").write_bytes((HEADER + "a,train,ΝΑΙ,,signer1,,,,,\n").encode("cp1253"))
    report = validate_corpus(good_dir)
    assert [p.code for p in report.problems] == ["not-utf8"]


def test_validate_file_instead_of_folder(good_dir, capsys):
    assert main(["validate", str(good_dir / "annotations.csv")]) == 1
    assert "annotations.csv: is a file, not a folder" in capsys.readouterr().out
    with pytest.raises(CorpusError, match="is a file, not a folder; pass the folder"):
        Corpus.open(good_dir / "annotations.csv")
