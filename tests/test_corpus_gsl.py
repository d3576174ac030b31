"""Tests for the GSL importer, on the real GSL annotation files and on small hand-made ones."""

import numpy as np
import pytest

from signattention_core.corpus import Corpus
from signattention_core.corpus.__main__ import main
from signattention_core.corpus.gsl import (
    GslImportError,
    import_gsl,
    load_gsl_samples,
    parse_gsl_id,
    read_gsl_annotations,
    read_gsl_classes,
    read_split_file,
)
from signattention_core.corpus.validate import validate_corpus

SPLIT_FILES = {
    "gsl_split_SI_train.csv": 8821, "gsl_split_SI_dev.csv": 588, "gsl_split_SI_test.csv": 881,
    "GSL_SD_train.csv": 8189, "GSL_SD_dev.csv": 1063, "GSL_SD_test.csv": 1043,
}
TRAIN_ID = "police1/police1_signer1_rep1_sentences/sentences0005"
TEST_ID = "police1/police1_signer3_rep3_sentences/sentences0000"
REP6_ID = "kep1/kep1_signer1_rep6_sentences/sentences0001"


@pytest.fixture(scope="module")
def gsl_dir(real_data):
    return real_data / "gsl-annotations"


def _pose(n_frames: int = 6) -> np.ndarray:
    return np.full((n_frames, 1, 543, 3), 0.25, dtype=np.float32)  # (F, 1, 543, 3)


def _pose_folder(root, ids):
    for sample_id in ids:
        path = root / f"{sample_id}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, _pose())
    return root


@pytest.mark.parametrize("name", list(SPLIT_FILES))
def test_real_split_file_parses_every_line(gsl_dir, name):
    path = gsl_dir / name
    rows = read_split_file(path)
    assert len(rows) == SPLIT_FILES[name]
    n_lines = len([line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()])
    assert len(rows) == n_lines
    assert all(parse_gsl_id(sample_path) is not None for _, sample_path, _ in rows)


def test_real_annotations_parse_every_line(gsl_dir):
    table = read_gsl_annotations(gsl_dir / "annotations.csv")
    assert len(table) == 10295
    text, glosses = table["police1_signer1_rep1_sentences/sentences0000"]
    assert text == "γεια σας πώς μπορώ να βοηθήσω"
    assert glosses == "ΓΕΙΑ ΕΓΩ(1) ΜΠΟΡΩ ΒΟΗΘΩ"


def test_real_classes_cover_split_glosses(gsl_dir):
    classes = read_gsl_classes(gsl_dir / "classes.csv")
    assert len(classes) == 310
    assert "ΕΓΩ(1)" in classes
    _, report = load_gsl_samples(gsl_dir, "si")
    assert report.unknown_glosses == []


def test_parse_gsl_id_rep6():
    parts = parse_gsl_id(REP6_ID)
    assert parts.scenario == "kep"
    assert parts.dialogue == "kep1"
    assert parts.signer == "signer1"
    assert parts.repetition == 6
    assert parts.sentence_index == "0001"
    assert parts.annotations_id == "kep1_signer1_rep6_sentences/sentences0001"
    assert parse_gsl_id("police1/police2_signer1_rep1_sentences/sentences0000") is None


def test_real_si_samples(gsl_dir):
    samples, report = load_gsl_samples(gsl_dir, "si")
    assert len(samples) == 10290
    assert [sum(s.split == name for s in samples) for name in ("train", "val", "test")] == [8821, 588, 881]
    assert {s.signer for s in samples if s.split == "test"} == {"signer3"}
    assert "signer3" not in {s.signer for s in samples if s.split == "train"}

    by_id = {s.id: s for s in samples}
    # the split file is the reference; annotations.csv spells this gloss ΚΑΤΩ(1)
    kato = by_id[TRAIN_ID]
    assert kato.gloss == "ΣΠΙΤΙ ΕΓΩ(1) ΚΑΤΩ(2) ΜΑΓΑΖΙ"
    assert kato.extras["annotations_gloss"] == "ΣΠΙΤΙ ΕΓΩ(1) ΚΑΤΩ(1) ΜΑΓΑΖΙ"
    assert report.gloss_differences == 174
    assert sum(bool(s.extras["annotations_gloss"]) for s in samples) == 174
    assert report.without_text == []

    rep6 = by_id[REP6_ID]
    assert rep6.repetition == 6
    assert rep6.gloss == "ΓΕΙΑ ΕΣΥ ΧΡΕΙΑΖΟΜΑΙ ΒΟΗΘΩ"
    assert rep6.text

    # a no-break space and trailing spaces in the Greek translation
    nbsp = by_id["police4/police4_signer1_rep1_sentences/sentences0008"]
    assert "\u00a0" in nbsp.text_raw
    assert nbsp.text == "για την καινούρια ταυτότητα χρειάζεστε και έναν μάρτυρα"
    trailing = by_id["kep1/kep1_signer3_rep1_sentences/sentences0013"]
    assert trailing.text_raw.endswith("   ")
    assert trailing.text == "θέλω και βεβαίωση εξόφλησης τελών κυκλοφορίας από την εφορία"


def test_real_sd_split_shares_no_sentence(gsl_dir):
    samples, report = load_gsl_samples(gsl_dir, "sd")
    assert len(samples) == 10295
    assert report.gloss_differences == 0
    train_groups = {s.sentence_group for s in samples if s.split == "train"}
    assert not train_groups & {s.sentence_group for s in samples if s.split != "train"}


def test_import_without_poses_lists_every_missing_id(gsl_dir, tmp_path, capsys):
    out = tmp_path / "gsl"
    status = main(["import-gsl", "--annotations", str(gsl_dir), "--split", "si", "--out", str(out)])
    assert status == 1
    assert not out.exists()
    message = capsys.readouterr().err
    assert "10290 of 10290 GSL samples have no pose file because no pose folder was given" in message
    assert "police1/police1_signer1_rep1_sentences/sentences0000" in message
    assert "... and 10270 more" in message
    listed = (tmp_path / "gsl.missing-poses.txt").read_text(encoding="utf-8").splitlines()
    assert len(listed) == 10290
    assert listed[0] == "police1/police1_signer1_rep1_sentences/sentences0000"
    assert REP6_ID in listed


def test_import_with_some_poses(gsl_dir, tmp_path):
    poses = _pose_folder(tmp_path / "poses", [TRAIN_ID, TEST_ID, REP6_ID])
    out = tmp_path / "gsl"
    with pytest.raises(GslImportError) as info:
        import_gsl(gsl_dir, poses, out, split="si")
    assert "10287 of 10290 GSL samples have no pose file under" in str(info.value)
    assert info.value.report.missing_ids[0] == "police1/police1_signer1_rep1_sentences/sentences0000"
    assert TRAIN_ID not in info.value.report.missing_ids

    report = import_gsl(gsl_dir, poses, out, split="si", allow_missing=True)
    assert len(report.samples) == 3
    assert len(report.missing_ids) == 10287
    corpus = Corpus.open(out, check_poses=True)
    assert corpus.metadata["split_type"] == "signer_independent"
    assert [s.id for s in corpus.samples] == [TRAIN_ID, REP6_ID, TEST_ID]
    sample = corpus.by_id(TRAIN_ID)
    assert sample.signer == "signer1"
    assert sample.repetition == 1
    assert sample.fps == 30.0
    assert sample.extras["scenario"] == "police"
    assert sample.extras["dialogue"] == "police1"
    assert sample.extras["sentence_index"] == "0005"
    assert sample.extras["annotations_gloss"] == "ΣΠΙΤΙ ΕΓΩ(1) ΚΑΤΩ(1) ΜΑΓΑΖΙ"
    assert corpus.by_id(TEST_ID).split == "test"
    assert corpus.load_pose(TEST_ID).shape == (6, 543, 3)
    assert validate_corpus(out).ok


def _write(folder, name, text):
    (folder / name).write_text(text, encoding="utf-8")


@pytest.fixture()
def small_gsl(tmp_path):
    folder = tmp_path / "annotations"
    folder.mkdir()
    _write(folder, "gsl_split_SI_train.csv",
           "police1/police1_signer1_rep1_sentences/sentences0005|ΣΠΙΤΙ ΕΓΩ(1) ΚΑΤΩ(2) ΜΑΓΑΖΙ\n"
           "police1/police1_signer1_rep6_sentences/sentences0000|ΓΕΙΑ")
    _write(folder, "gsl_split_SI_dev.csv", "police1/police1_signer3_rep1_sentences/sentences0000|ΓΕΙΑ\n\n")
    _write(folder, "gsl_split_SI_test.csv", "police1/police1_signer3_rep3_sentences/sentences0000|ΓΕΙΑ\n")
    _write(folder, "annotations.csv",
           "police1_signer1_rep1_sentences/sentences0005|πάω\u00a0 σπίτι |ΣΠΙΤΙ ΕΓΩ(1) ΚΑΤΩ(1) ΜΑΓΑΖΙ\n"
           "police1_signer1_rep6_sentences/sentences0000|γεια|ΓΕΙΑ\n"
           "police1_signer3_rep1_sentences/sentences0000|γεια|ΓΕΙΑ")
    return folder


def test_small_import_keeps_quirks(small_gsl, tmp_path):
    samples, report = load_gsl_samples(small_gsl, "si")
    assert [s.split for s in samples] == ["train", "train", "val", "test"]
    assert samples[0].text == "πάω σπίτι"
    assert samples[0].text_raw == "πάω\u00a0 σπίτι "
    assert samples[0].extras["annotations_gloss"] == "ΣΠΙΤΙ ΕΓΩ(1) ΚΑΤΩ(1) ΜΑΓΑΖΙ"
    assert samples[1].repetition == 6
    assert report.without_text == ["police1/police1_signer3_rep3_sentences/sentences0000"]
    assert samples[3].text == ""


def test_small_import_reports_unknown_glosses(small_gsl):
    _write(small_gsl, "classes.csv", "ΓΕΙΑ\nΣΠΙΤΙ\nΕΓΩ(1)\nΚΑΤΩ(1)")
    _, report = load_gsl_samples(small_gsl, "si")
    assert report.unknown_glosses == ["ΚΑΤΩ(2)", "ΜΑΓΑΖΙ"]
    _write(small_gsl, "classes.csv", "ΓΕΙΑ\nΓΕΙΑ ΣΑΣ\nΓΕΙΑ\n")
    with pytest.raises(GslImportError) as info:
        load_gsl_samples(small_gsl, "si")
    assert "line 2: 'ΓΕΙΑ ΣΑΣ' is more than one gloss" in str(info.value)
    assert "line 3: gloss 'ΓΕΙΑ' already appears on line 1" in str(info.value)


def test_small_import_cli_allow_missing(small_gsl, tmp_path, capsys):
    poses = _pose_folder(tmp_path / "poses", ["police1/police1_signer1_rep6_sentences/sentences0000",
                                              "police1/police1_signer3_rep3_sentences/sentences0000"])
    out = tmp_path / "out"
    args = ["import-gsl", "--annotations", str(small_gsl), "--poses", str(poses), "--split", "si", "--out", str(out)]
    assert main(args) == 1
    error = capsys.readouterr().err
    assert "2 of 4 GSL samples have no pose file under" in error
    assert "police1/police1_signer1_rep1_sentences/sentences0005" in error

    assert main([*args, "--allow-missing"]) == 0
    output = capsys.readouterr().out
    assert "dropped 2 of 4 samples that have no pose file" in output
    assert len(Corpus.open(out)) == 2
    assert main(["validate", str(out)]) == 0


def test_bad_split_line_names_file_and_line(small_gsl):
    _write(small_gsl, "gsl_split_SI_test.csv", "police1/police1_signer3_rep3_sentences/sentences0000|ΓΕΙΑ\n"
                                                "police1/police1_signer3_rep3_sentences/sentences0001\n"
                                                "kep/kep_signer3_rep3/sentences0002|ΝΑΙ\n")
    with pytest.raises(GslImportError) as info:
        load_gsl_samples(small_gsl, "si")
    message = str(info.value)
    assert "gsl_split_SI_test.csv, line 2: 1 fields" in message
    assert "gsl_split_SI_test.csv, line 3: path 'kep/kep_signer3_rep3/sentences0002' does not look like" in message


def test_missing_split_file(small_gsl):
    (small_gsl / "gsl_split_SI_dev.csv").unlink()
    with pytest.raises(GslImportError, match="lacks gsl_split_SI_dev.csv"):
        load_gsl_samples(small_gsl, "si")


def test_windows_files_are_read(small_gsl):
    for path in small_gsl.iterdir():
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    samples, _ = load_gsl_samples(small_gsl, "si")
    assert samples[0].id == "police1/police1_signer1_rep1_sentences/sentences0005"
    assert samples[0].gloss == "ΣΠΙΤΙ ΕΓΩ(1) ΚΑΤΩ(2) ΜΑΓΑΖΙ"
    assert samples[0].text == "πάω σπίτι"


def test_greek_windows_split_file_names_encoding(small_gsl):
    (small_gsl / "gsl_split_SI_dev.csv").write_bytes(
        "police1/police1_signer3_rep1_sentences/sentences0000|ΓΕΙΑ\n".encode("cp1253"))
    with pytest.raises(GslImportError, match=r"gsl_split_SI_dev.csv: line 1: .*iconv -f WINDOWS-1253"):
        load_gsl_samples(small_gsl, "si")
