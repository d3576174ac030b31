"""Tests for writing and reading corpus folders."""

import json
import os
import shutil

import numpy as np
import pytest

from signattention_core.corpus import Corpus, CorpusError, Sample, write_corpus

METADATA = {"name": "tiny", "split_type": "random"}


def _pose(n_frames: int, seed: int = 0) -> np.ndarray:
    pose = np.random.default_rng(seed).random((n_frames, 543, 3), dtype=np.float32)  # (F, 543, 3)
    pose[:, 33:501] = np.nan  # no face detected
    return pose


def _samples() -> list[Sample]:
    return [
        Sample("police1/a_signer1_rep1/s0", "train", "ΕΓΩ(1)  ΠΟΙΟΣ;", "γεια\u00a0σας ", signer="signer1",
               repetition=1, fps=30.0, n_frames=5, gloss_spans=((0, 2), (2, 5)), extras={"scenario": "police"}),
        Sample("police1/a_signer2_rep1/s0", "val", "ΕΓΩ(1) ΠΟΙΟΣ;", "γεια σας", signer="signer2", repetition=1),
        Sample("b", "test", "ΝΑΙ", "ναι", signer="signer3", extras={"note": 'a, "quoted" value'}),
    ]


@pytest.fixture()
def corpus_dir(tmp_path):
    root = tmp_path / "corpus"
    samples = _samples()
    write_corpus(root, METADATA, samples, {s.id: _pose(5 + i, seed=i) for i, s in enumerate(samples)})
    return root


def test_sample_normalises_and_keeps_raw():
    sample = _samples()[0]
    assert sample.gloss == "ΕΓΩ(1) ΠΟΙΟΣ;"
    assert sample.gloss_raw == "ΕΓΩ(1)  ΠΟΙΟΣ;"
    assert sample.text == "γεια σας"
    assert sample.text_raw == "γεια\u00a0σας "
    assert sample.sentence_group == "ΕΓΩ(1) ΠΟΙΟΣ;"
    assert sample.glosses == ["ΕΓΩ(1)", "ΠΟΙΟΣ;"]
    assert Sample("x", "dev", "A").split == "val"


def test_write_then_open_round_trip(corpus_dir):
    corpus = Corpus.open(corpus_dir, check_poses=True)
    assert corpus.metadata == METADATA
    assert [s.id for s in corpus.samples] == [s.id for s in _samples()]
    first = corpus.samples[0]
    assert first.gloss_raw == "ΕΓΩ(1)  ΠΟΙΟΣ;"
    assert first.text_raw == "γεια\u00a0σας "
    assert first.gloss == "ΕΓΩ(1) ΠΟΙΟΣ;"
    assert first.signer == "signer1"
    assert first.repetition == 1
    assert first.fps == 30.0
    assert first.n_frames == 5
    assert first.gloss_spans == ((0, 2), (2, 5))
    assert first.extras["scenario"] == "police"
    assert corpus.samples[2].extras["note"] == 'a, "quoted" value'
    assert corpus.samples[2].repetition is None
    assert corpus.samples[1].sentence_group == corpus.samples[0].sentence_group


def test_write_saves_one_person_float32(corpus_dir):
    array = np.load(corpus_dir / "poses" / "police1" / "a_signer1_rep1" / "s0.npy")
    assert array.shape == (5, 1, 543, 3)
    assert array.dtype == np.float32


def test_load_pose_returns_canonical_array(corpus_dir):
    corpus = Corpus.open(corpus_dir)
    pose = corpus.load_pose("b")
    assert pose.shape == (7, 543, 3)
    assert pose.dtype == np.float32
    np.testing.assert_array_equal(pose, _pose(7, seed=2))


def test_split_and_by_id(corpus_dir):
    corpus = Corpus.open(corpus_dir)
    assert [s.id for s in corpus.split("dev")] == ["police1/a_signer2_rep1/s0"]
    assert corpus.by_id("b").split == "test"
    with pytest.raises(CorpusError, match="valid splits: train, val, test"):
        corpus.split("holdout")
    with pytest.raises(KeyError, match="no sample with id 'zzz'"):
        corpus.by_id("zzz")


def test_write_refuses_existing_folder(corpus_dir):
    samples = _samples()[:1]
    with pytest.raises(CorpusError, match="already exists; pass overwrite=True"):
        write_corpus(corpus_dir, METADATA, samples, {samples[0].id: _pose(3)})


def test_overwrite_replaces_and_leaves_no_temporary(corpus_dir):
    samples = _samples()[:1]
    write_corpus(corpus_dir, METADATA, samples, lambda sample_id: _pose(3), overwrite=True)
    corpus = Corpus.open(corpus_dir)
    assert len(corpus) == 1
    assert not (corpus_dir / "poses" / "b.npy").exists()
    assert sorted(p.name for p in corpus_dir.parent.iterdir()) == ["corpus"]


def test_failed_write_leaves_nothing(tmp_path):
    root = tmp_path / "corpus"
    samples = _samples()
    with pytest.raises(CorpusError, match="has shape \\(4, 10, 3\\)"):
        write_corpus(root, METADATA, samples, {s.id: np.zeros((4, 10, 3)) for s in samples})
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_missing_pose_and_bad_samples(tmp_path):
    samples = _samples()
    with pytest.raises(CorpusError, match="no pose given for sample 'b'"):
        write_corpus(tmp_path / "a", METADATA, samples, {s.id: _pose(3) for s in samples[:2]})
    bad = [Sample("../x", "train", "A"), Sample("y", "holdout", "A"), Sample("y", "train", " ")]
    with pytest.raises(CorpusError) as info:
        write_corpus(tmp_path / "b", METADATA, bad, lambda sample_id: _pose(3))
    message = str(info.value)
    assert "'..' path part" in message
    assert "unknown split 'holdout'" in message
    assert "id 'y' appears twice" in message
    assert "the gloss is empty" in message


def test_write_copies_pose_files(tmp_path, real_data):
    source = real_data / "sgg-lexicon" / "essen.pose"
    samples = [Sample("essen", "train", "ESSEN")]
    write_corpus(tmp_path / "c", METADATA, samples, {"essen": source})
    corpus = Corpus.open(tmp_path / "c", check_poses=True)
    assert corpus.pose_path("essen").name == "essen.pose"
    assert corpus.load_pose("essen").shape == (73, 543, 3)


def test_reads_pipe_separated_with_dev(tmp_path):
    root = tmp_path / "pipe"
    (root / "poses").mkdir(parents=True)
    (root / "metadata.json").write_text(json.dumps(METADATA), encoding="utf-8")
    (root / "annotations.csv").write_text(
        "id|split|gloss|text|signer|start|end|fps|n_frames\n"
        "s1|dev|ΝΑΙ ΟΧΙ|ναι, όχι|Signer01|0|0|25|4\n", encoding="utf-8")
    np.save(root / "poses" / "s1.npy", _pose(4)[:, None])
    corpus = Corpus.open(root, check_poses=True)
    sample = corpus.samples[0]
    assert sample.split == "val"
    assert sample.text == "ναι, όχι"
    assert sample.fps == 25.0
    assert sample.extras == {"start": "0", "end": "0"}


def test_pose_segment_by_start_and_end(tmp_path, real_data):
    root = tmp_path / "segment"
    (root / "poses").mkdir(parents=True)
    (root / "metadata.json").write_text(json.dumps(METADATA), encoding="utf-8")
    # 25 fps: 400 ms is frame 10, 1200 ms is frame 30
    (root / "annotations.csv").write_text(
        "id,split,gloss,start,end\nwhole,train,A,-1,-1\npart,train,A,400,1200\ntail,train,A,400,0\n",
        encoding="utf-8")
    source = real_data / "phoenix14t-pose" / "25October_2010_Monday_tagesschau-17.pose"
    for name in ("whole", "part", "tail"):
        shutil.copyfile(source, root / "poses" / f"{name}.pose")
    corpus = Corpus.open(root, check_poses=True)
    whole = corpus.load_pose("whole")
    assert whole.shape == (86, 543, 3)
    np.testing.assert_array_equal(corpus.load_pose("part"), whole[10:30])
    np.testing.assert_array_equal(corpus.load_pose("tail"), whole[10:])


def test_load_pose_missing_file_names_paths(corpus_dir):
    os.remove(corpus_dir / "poses" / "b.npy")
    corpus = Corpus.open(corpus_dir)
    assert not corpus.has_pose("b")
    with pytest.raises(CorpusError, match="pose file for sample 'b' not found"):
        corpus.load_pose("b")


def test_video_path(corpus_dir):
    corpus = Corpus.open(corpus_dir)
    assert corpus.video_path("b") is None
    (corpus_dir / "videos").mkdir()
    (corpus_dir / "videos" / "b.mp4").write_bytes(b"")
    assert corpus.video_path("b") == corpus_dir / "videos" / "b.mp4"


def test_open_missing_folder(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        Corpus.open(tmp_path / "nowhere")


def _write_folder(root, annotations: bytes, poses: dict[str, int]) -> None:
    (root / "poses").mkdir(parents=True)
    (root / "metadata.json").write_text(json.dumps(METADATA), encoding="utf-8")
    (root / "annotations.csv").write_bytes(annotations)
    for sample_id, n_frames in poses.items():
        np.save(root / "poses" / f"{sample_id}.npy", _pose(n_frames)[:, None])


def test_reads_crlf_bom_and_quoted_delimiters(tmp_path):
    root = tmp_path / "windows"
    content = 'id,split,gloss,text\r\ns1,TEST,"ΕΓΩ(1) ΠΟΙΟΣ;","γεια, σου"\r\ns2,Dev,ΝΑΙ,ναι\r\n'
    _write_folder(root, b"\xef\xbb\xbf" + content.encode("utf-8"), {"s1": 3, "s2": 3})
    corpus = Corpus.open(root, check_poses=True)
    assert [s.id for s in corpus.samples] == ["s1", "s2"]
    assert [s.split for s in corpus.samples] == ["test", "val"]
    assert corpus.samples[0].gloss == "ΕΓΩ(1) ΠΟΙΟΣ;"
    assert corpus.samples[0].text == "γεια, σου"


def test_reads_semicolon_separated_excel_export(tmp_path):
    root = tmp_path / "excel"
    content = 'id;split;gloss;text\ns1;train;"ΠΟΙΟΣ;";"ποιος;"\n'
    _write_folder(root, content.encode("utf-8"), {"s1": 3})
    sample = Corpus.open(root).samples[0]
    assert sample.gloss == "ΠΟΙΟΣ;"
    assert sample.text == "ποιος;"


def test_greek_windows_encoding_is_named_in_fix(tmp_path):
    root = tmp_path / "cp1253"
    _write_folder(root, "id,split,gloss,text\ns1,train,ΕΓΩ(1),γεια σου\n".encode("cp1253"), {"s1": 3})
    with pytest.raises(CorpusError) as info:
        Corpus.open(root)
    message = str(info.value)
    assert "annotations.csv, line 2: invalid UTF-8 byte" in message
    assert "Windows-1253" in message
    assert "iconv -f WINDOWS-1253 -t UTF-8" in message


def test_utf16_encoding_is_named_in_fix(tmp_path):
    root = tmp_path / "utf16"
    _write_folder(root, "id\tsplit\tgloss\ns1\ttrain\tΝΑΙ\n".encode("utf-16"), {"s1": 3})
    with pytest.raises(CorpusError, match="iconv -f UTF-16 -t UTF-8"):
        Corpus.open(root)


def test_metadata_with_bom_is_read(corpus_dir):
    path = corpus_dir / "metadata.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert Corpus.open(corpus_dir).metadata == METADATA


@pytest.mark.parametrize("sample_id", ["a\nb", "a\tb", "a\x00b", "tail\r"])
def test_write_rejects_control_characters_in_ids(tmp_path, sample_id):
    with pytest.raises(CorpusError, match="control character"):
        write_corpus(tmp_path / "c", METADATA, [Sample(sample_id, "train", "A")], lambda _: _pose(3))
    assert list(tmp_path.iterdir()) == []


def test_reader_rejects_control_characters_in_ids(tmp_path):
    root = tmp_path / "tab"
    _write_folder(root, "id,split,gloss\n\"a\tb\",train,ΝΑΙ\n".encode(), {})
    with pytest.raises(CorpusError, match="line 2: the id 'a\\\\tb' contains a control character"):
        Corpus.open(root)


def test_write_rejects_spans_that_do_not_fit_glosses(tmp_path):
    bad = [
        Sample("two", "train", "ΕΓΩ(1) ΠΟΙΟΣ;", gloss_spans=((0, 4),)),
        Sample("empty", "train", "ΝΑΙ", gloss_spans=((3, 3),)),
        Sample("negative", "train", "ΝΑΙ", gloss_spans=((-1, 2),)),
    ]
    with pytest.raises(CorpusError) as info:
        write_corpus(tmp_path / "c", METADATA, bad, lambda _: _pose(5))
    message = str(info.value)
    assert "id two: gloss_spans ((0, 4),): 1 spans for 2 glosses" in message
    assert "id empty: gloss_spans ((3, 3),): span [3, 3] is not a non-empty range" in message
    assert "id negative: gloss_spans ((-1, 2),): span [-1, 2]" in message
    assert list(tmp_path.iterdir()) == []


def test_overwrite_refuses_folder_that_is_not_a_corpus(tmp_path):
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "thesis.tex").write_text("keep me", encoding="utf-8")
    samples = _samples()[:1]
    with pytest.raises(CorpusError, match="does not look like a corpus"):
        write_corpus(documents, METADATA, samples, lambda _: _pose(3), overwrite=True)
    assert (documents / "thesis.tex").read_text(encoding="utf-8") == "keep me"

    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("keep me too", encoding="utf-8")
    with pytest.raises(CorpusError, match="is a file or a symbolic link, not a folder"):
        write_corpus(not_a_folder, METADATA, samples, lambda _: _pose(3), overwrite=True)
    assert not_a_folder.read_text(encoding="utf-8") == "keep me too"

    empty = tmp_path / "empty"
    empty.mkdir()
    write_corpus(empty, METADATA, samples, lambda _: _pose(3), overwrite=True)
    assert len(Corpus.open(empty)) == 1


def test_interrupted_overwrite_keeps_old_corpus(corpus_dir):
    def interrupted(sample_id):
        if sample_id == "b":
            raise KeyboardInterrupt
        return _pose(3)

    before = sorted(p.relative_to(corpus_dir) for p in corpus_dir.rglob("*"))
    with pytest.raises(KeyboardInterrupt):
        write_corpus(corpus_dir, METADATA, _samples(), interrupted, overwrite=True)
    assert sorted(p.relative_to(corpus_dir) for p in corpus_dir.rglob("*")) == before
    assert sorted(p.name for p in corpus_dir.parent.iterdir()) == ["corpus"]
    assert len(Corpus.open(corpus_dir, check_poses=True)) == 3
