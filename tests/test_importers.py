"""Importers for real recordings: `.pose` folders, Progressive Transformers files, lexicons."""

import json

import numpy as np
import pytest

from benchmarks.real_signers import write_signbridge_table
from signattention_core import holistic
from signattention_core.corpus.importers import assign_splits, import_pose_folder, import_skels
from signattention_core.corpus.layout import Corpus, CorpusError
from signattention_core.corpus.lexicon import (
    ConcatConfig,
    compose_sentences,
    read_lexicon,
    resample_frames,
    write_concat_corpus,
)

RIGHT_WRIST = holistic.point_index("body", "RIGHT_WRIST")
LEFT_WRIST = holistic.point_index("body", "LEFT_WRIST")
RIGHT_HAND_WRIST = holistic.point_index("right_hand", "WRIST")
LEFT_HAND_WRIST = holistic.point_index("left_hand", "WRIST")


def test_skels_import_splits_and_shapes(real_data, tmp_path):
    samples = import_skels(real_data / "phoenix14t-skels", tmp_path / "phoenix")
    corpus = Corpus.open(tmp_path / "phoenix", check_poses=True)

    assert len(samples) == 15
    assert [len(corpus.split(name)) for name in ("train", "val", "test")] == [5, 5, 5]
    first = corpus.samples[0]
    assert first.id == "train/11August_2010_Wednesday_tagesschau-1"
    assert first.gloss == "JETZT WETTER MORGEN DONNERSTAG ZWOELF FEBRUAR"
    assert first.text.startswith("und nun die wettervorhersage")
    pose = corpus.load_pose(first.id)
    assert pose.shape == (86, 543, 3)
    assert np.isnan(pose[:, holistic.COMPONENTS["face"]]).all()
    assert np.isfinite(pose[:, holistic.COMPONENTS["right_hand"]]).all()


def test_skels_hands_attach_to_their_wrists(real_data, tmp_path):
    import_skels(real_data / "phoenix14t-skels", tmp_path / "phoenix")
    corpus = Corpus.open(tmp_path / "phoenix")
    for sample in corpus.samples:
        pose = corpus.load_pose(sample.id)
        right_gap = np.linalg.norm(pose[:, RIGHT_WRIST, :2] - pose[:, RIGHT_HAND_WRIST, :2], axis=1)
        left_gap = np.linalg.norm(pose[:, LEFT_WRIST, :2] - pose[:, LEFT_HAND_WRIST, :2], axis=1)
        crossed_gap = np.linalg.norm(pose[:, RIGHT_WRIST, :2] - pose[:, LEFT_HAND_WRIST, :2], axis=1)
        assert np.median(right_gap) < np.median(crossed_gap) / 3, sample.id
        assert np.median(left_gap) < np.median(crossed_gap) / 3, sample.id


def test_skels_bad_line_names_file_and_line(tmp_path):
    folder = tmp_path / "skels"
    folder.mkdir()
    (folder / "train.skels").write_text("0.1 0.2 0.3\n", encoding="utf-8")
    for suffix, line in (("gloss", "A"), ("text", "a"), ("files", "train/x")):
        (folder / f"train.{suffix}").write_text(line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"train\.skels: line 1: 3 values is not a multiple of 151"):
        import_skels(folder, tmp_path / "out")


def test_pose_folder_import_keeps_spans_and_fps(real_data, tmp_path):
    table = tmp_path / "signbridge.csv"
    write_signbridge_table(real_data / "signbridge-asl-sentences", table)
    segments = json.loads((real_data / "signbridge-asl-sentences" / "segments.json").read_text(encoding="utf-8"))
    samples = import_pose_folder(table, real_data / "signbridge-asl-sentences", tmp_path / "signbridge")
    corpus = Corpus.open(tmp_path / "signbridge", check_poses=True)

    assert len(samples) == 4
    assert {s.split for s in samples} == {"train", "val", "test"}
    sample = corpus.by_id("chair-black-tall-k")
    assert sample.gloss == "CHAIR BLACK TALL"
    assert sample.gloss_spans == ((0, 70), (70, 148), (148, 211))
    assert sample.fps == pytest.approx(segments["chair-black-tall-k"]["fps"])
    assert sample.n_frames == 211
    pose = corpus.load_pose(sample.id)
    assert pose.shape == (211, 543, 3)
    assert pose.dtype == np.float32


def test_pose_folder_reads_phoenix_corpus_columns(real_data, tmp_path):
    folder = real_data / "phoenix14t-pose"
    samples = import_pose_folder(folder / "PHOENIX-2014-T.train.corpus.csv", folder, tmp_path / "phoenix",
                                 split_fractions=(1, 0, 0))
    corpus = Corpus.open(tmp_path / "phoenix", check_poses=True)

    assert len(samples) == 1
    sample = corpus.samples[0]
    assert sample.signer == "Signer01"
    assert sample.gloss.startswith("REGEN SCHNEE REGION")
    assert sample.text.startswith("regen und schnee")
    assert sample.fps == 25.0
    pose = corpus.load_pose(sample.id)
    assert pose.shape == (86, 543, 3)
    body = pose[:, holistic.COMPONENTS["body"], :2]
    # pixel coordinates of a 210x260 frame arrive divided by width and height
    assert 0.0 < np.nanmedian(body) < 1.0


def test_pose_folder_lists_every_missing_file(real_data, tmp_path):
    table = tmp_path / "rows.csv"
    table.write_text("id,gloss\nchair-black-tall-k,CHAIR\nno-such-sample,X\nalso-missing,Y\n", encoding="utf-8")
    with pytest.raises(CorpusError) as error:
        import_pose_folder(table, real_data / "signbridge-asl-sentences", tmp_path / "out")
    message = str(error.value)
    assert "2 pose file(s)" in message
    assert "line 3: no-such-sample" in message
    assert "line 4: also-missing" in message
    assert not (tmp_path / "out").exists()


def test_assign_splits_fills_every_split():
    splits = assign_splits(4, (0.8, 0.1, 0.1), seed=0)
    assert sorted(splits) == ["test", "train", "train", "val"]
    assert splits == assign_splits(4, (0.8, 0.1, 0.1), seed=0)
    with pytest.raises(ValueError, match="three non-negative numbers"):
        assign_splits(4, (1.0, 0.0), seed=0)


def test_json_lexicon_maps_reduced_face(real_data):
    signs = read_lexicon(real_data / "asl-isolated-signs")
    assert len(signs) == 100
    sign = next(s for s in signs if s.gloss == "A")
    assert sign.pose.shape == (28, 543, 3)
    assert sign.fps == pytest.approx(29.97)
    face = sign.pose[:, holistic.COMPONENTS["face"]]
    detected_face_points = np.isfinite(face[..., 0]).any(axis=0).sum()
    assert detected_face_points == 33


def test_pose_lexicon_reads_index_glosses(real_data):
    signs = read_lexicon(real_data / "sgg-lexicon")
    assert [s.gloss for s in signs] == ["KLEINE", "KINDER", "ESSEN", "PIZZA"]
    kleine = signs[0]
    # the 178-point layout has 8 body points; the other 25 stay NaN
    body_detected = np.isfinite(kleine.pose[:, holistic.COMPONENTS["body"], 0]).any(axis=0)
    assert body_detected.sum() == 8


def test_resample_keeps_endpoints_and_missing_points():
    pose = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3)
    pose[1, 1] = np.nan
    out = resample_frames(pose, 7)
    assert out.shape == (7, 2, 3)
    np.testing.assert_array_equal(out[0], pose[0])
    np.testing.assert_array_equal(out[-1], pose[-1])
    assert np.isnan(out[2, 1]).all()


def test_concat_is_deterministic_with_exact_spans(real_data):
    signs = read_lexicon(real_data / "sgg-lexicon")
    config = ConcatConfig(seed=3, n_sentences=4, min_length=2, max_length=3, renditions=2)
    first = compose_sentences(signs, config)
    second = compose_sentences(signs, config)

    assert len(first) == 8
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a["pose"], b["pose"])
        assert a["spans"] == b["spans"]
    for item in first:
        spans = item["spans"]
        assert len(spans) == len(item["glosses"])
        assert all(start < end for start, end in spans)
        assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
        assert spans[-1][1] <= item["pose"].shape[0]
    # renditions of one sentence differ in speed, so their lengths differ
    assert first[0]["pose"].shape != first[1]["pose"].shape or not np.array_equal(first[0]["pose"], first[1]["pose"])


def test_concat_corpus_validates(real_data, tmp_path):
    config = ConcatConfig(seed=0, n_sentences=5, min_length=2, max_length=4, renditions=3)
    samples = write_concat_corpus(real_data / "asl-isolated-signs", tmp_path / "asl", config)
    corpus = Corpus.open(tmp_path / "asl", check_poses=True)

    assert len(samples) == 15
    assert [len(corpus.split(name)) for name in ("train", "val", "test")] == [5, 5, 5]
    for sample in corpus.samples:
        assert len(sample.gloss_spans) == len(sample.glosses)
        assert sample.gloss_spans[-1][1] <= corpus.load_pose(sample.id).shape[0]


def test_concat_rejects_bad_length_range():
    with pytest.raises(ValueError, match="sentence length range 4-2"):
        ConcatConfig(min_length=4, max_length=2)


def _sgg_folder(real_data, tmp_path):
    folder = tmp_path / "poses"
    folder.mkdir()
    for name in ("essen", "kinder"):
        (folder / f"{name}.pose").write_bytes((real_data / "sgg-lexicon" / f"{name}.pose").read_bytes())
    return folder


def test_pose_folder_reports_every_bad_row(real_data, tmp_path):
    folder = _sgg_folder(real_data, tmp_path)
    table = tmp_path / "rows.csv"
    table.write_text(
        "id,gloss,split,repetition,gloss_spans,end\n"
        "essen,ESSEN,training,,,\n"
        "kinder,KINDER,train,two,,\n"
        'essen,ESSEN KINDER,train,,"[[0,5]]",\n'
        "kinder,KINDER,train,,,soon\n"
        "kinder,KINDER,train,1,[[0,5]],\n", encoding="utf-8")
    with pytest.raises(CorpusError) as info:
        import_pose_folder(table, folder, tmp_path / "out")
    message = str(info.value)
    assert "rows.csv, line 2: unknown split 'training'" in message
    assert "rows.csv, line 3: repetition 'two' is not an integer" in message
    assert "rows.csv, line 4: gloss_spans '[[0,5]]': 1 spans for 2 glosses" in message
    assert "rows.csv, line 5: end 'soon' is not a number" in message
    assert "line 6: 7 fields where the header has 6" in message
    assert not (tmp_path / "out").exists()


def test_pose_folder_rejects_repeated_id_with_lines(real_data, tmp_path):
    folder = _sgg_folder(real_data, tmp_path)
    table = tmp_path / "rows.csv"
    table.write_text("id,gloss\nessen,ESSEN\nkinder,KINDER\nessen,ESSEN\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="line 4: id 'essen' already appears on line 2"):
        import_pose_folder(table, folder, tmp_path / "out")


def test_pose_folder_rejects_span_past_last_frame(real_data, tmp_path):
    folder = _sgg_folder(real_data, tmp_path)
    table = tmp_path / "rows.csv"
    table.write_text('id,gloss,gloss_spans\nessen,ESSEN,"[[0,80]]"\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="line 2: gloss_spans end at frame 80 but essen.pose has 73 frames"):
        import_pose_folder(table, folder, tmp_path / "out")


def test_pose_folder_extra_columns_windows_files(real_data, tmp_path):
    folder = _sgg_folder(real_data, tmp_path)
    table = tmp_path / "rows.csv"
    content = 'id,gloss,text,split,video,notes\r\nessen,ESSEN,"essen, bitte",Dev,essen.mp4,"a; b"\r\n'
    table.write_bytes(b"\xef\xbb\xbf" + content.encode("utf-8"))
    samples = import_pose_folder(table, folder, tmp_path / "out")
    corpus = Corpus.open(tmp_path / "out", check_poses=True)
    assert samples == corpus.samples
    sample = corpus.samples[0]
    assert sample.split == "val"
    assert sample.text == "essen, bitte"
    assert sample.n_frames == 73
    assert sample.extras == {"video": "essen.mp4", "notes": "a; b"}


def test_pose_folder_header_without_rows(real_data, tmp_path):
    table = tmp_path / "rows.csv"
    table.write_text("id,gloss\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="rows.csv has a header but no sample rows"):
        import_pose_folder(table, _sgg_folder(real_data, tmp_path), tmp_path / "out")


def test_pose_folder_names_greek_windows_encoding(real_data, tmp_path):
    table = tmp_path / "rows.csv"
    table.write_bytes("id,gloss\nessen,ΦΑΓΗΤΟ\n".encode("cp1253"))
    with pytest.raises(CorpusError, match="rows.csv, line 2: invalid UTF-8 byte .*Windows-1253"):
        import_pose_folder(table, _sgg_folder(real_data, tmp_path), tmp_path / "out")


def test_pose_folder_rejects_truncated_pose(real_data, tmp_path):
    folder = _sgg_folder(real_data, tmp_path)
    content = (folder / "essen.pose").read_bytes()
    (folder / "essen.pose").write_bytes(content[: len(content) // 2])
    table = tmp_path / "rows.csv"
    table.write_text("id,gloss\nessen,ESSEN\nkinder,KINDER\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="line 2: .*essen.pose: the file is truncated"):
        import_pose_folder(table, folder, tmp_path / "out")


def _skels_folder(real_data, tmp_path):
    folder = tmp_path / "skels"
    folder.mkdir()
    for suffix in ("skels", "gloss", "text", "files"):
        source = real_data / "phoenix14t-skels" / f"train.{suffix}"
        (folder / f"train.{suffix}").write_bytes(source.read_bytes())
    return folder


def test_skels_reads_bom_and_crlf(real_data, tmp_path):
    folder = _skels_folder(real_data, tmp_path)
    for suffix in ("skels", "gloss", "text", "files"):
        path = folder / f"train.{suffix}"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    samples = import_skels(folder, tmp_path / "out")
    assert len(samples) == 5
    assert samples[0].id == "train/11August_2010_Wednesday_tagesschau-1"
    assert samples[0].gloss == "JETZT WETTER MORGEN DONNERSTAG ZWOELF FEBRUAR"


def test_skels_non_number_names_file_and_line(real_data, tmp_path):
    folder = _skels_folder(real_data, tmp_path)
    path = folder / "train.skels"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace(" ", " nan? ", 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"train\.skels: line 3: 'nan\?' is not a number"):
        import_skels(folder, tmp_path / "out")


def test_lexicon_gloss_with_spaces_stays_one_gloss(real_data, tmp_path):
    folder = tmp_path / "lexicon"
    folder.mkdir()
    for name in ("essen", "kinder"):
        (folder / f"{name}.pose").write_bytes((real_data / "sgg-lexicon" / f"{name}.pose").read_bytes())
    (folder / "index.csv").write_text("path,glosses\nessen.pose,thank  you\nkinder.pose,Kinder\n", encoding="utf-8")
    assert sorted(sign.gloss for sign in read_lexicon(folder)) == ["KINDER", "THANK_YOU"]
    samples = write_concat_corpus(folder, tmp_path / "out", ConcatConfig(n_sentences=2, renditions=2))
    assert all(len(sample.glosses) == len(sample.gloss_spans) for sample in samples)
    assert len(Corpus.open(tmp_path / "out", check_poses=True)) == 4


def test_json_lexicon_files_with_bom(real_data, tmp_path):
    source = real_data / "asl-isolated-signs"
    folder = tmp_path / "lexicon"
    (folder / "signs").mkdir(parents=True)
    metadata = json.loads((source / "metadata.json").read_text(encoding="utf-8"))
    metadata["signs"] = ["thank_you", "home"]
    (folder / "metadata.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(metadata).encode("utf-8"))
    for name in metadata["signs"]:
        (folder / "signs" / f"{name}.json").write_bytes(
            b"\xef\xbb\xbf" + (source / "signs" / f"{name}.json").read_bytes())
    assert sorted(sign.gloss for sign in read_lexicon(folder)) == ["HOME", "THANK_YOU"]


def test_missing_input_folders_are_named(tmp_path):
    with pytest.raises(CorpusError, match="folder .*nowhere not found; pass the folder with train.skels"):
        import_skels(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(CorpusError, match="lexicon folder .*nowhere not found"):
        read_lexicon(tmp_path / "nowhere")


def test_concat_command_takes_length_range(real_data, tmp_path):
    from signattention_core.corpus.__main__ import main

    status = main(["concat", str(real_data / "sgg-lexicon"), str(tmp_path / "sgg"), "--lengths", "2-3",
                   "--n-sentences", "4", "--renditions", "2", "--speed", "0.9-1.1", "--seed", "5"])
    corpus = Corpus.open(tmp_path / "sgg")

    assert status == 0
    assert len(corpus.samples) == 8
    assert {len(sample.glosses) for sample in corpus.samples} <= {2, 3}


def test_concat_command_rejects_backward_range(real_data, tmp_path, capsys):
    from signattention_core.corpus.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["concat", str(real_data / "sgg-lexicon"), str(tmp_path / "sgg"), "--lengths", "5-2"])
    assert exit_info.value.code == 2
    assert "runs backwards" in capsys.readouterr().err
