"""Import the Greek Sign Language (GSL) dataset, continuous part, into a corpus folder.

Inputs are the dataset's own files, `|`-separated with no header:

- split files `path|glosses`: `gsl_split_SI_{train,dev,test}.csv` for the
  signer-independent split, `GSL_SD_{train,dev,test}.csv` for the split whose
  dev and test sentences are unseen in train. `dev` becomes `val`.
- `annotations.csv` with `id|greek text|glosses`, whose ids lack the leading
  `<scenario>/` folder of the split-file paths.
- optionally `classes.csv`, the gloss vocabulary, one gloss per line; glosses
  of the split files that it lacks are reported.
- a pose folder laid out like the split-file paths:
  `<poses>/<scenario>/<scenario>_signerK_repR_sentences/sentencesNNNN.npy`
  (or `.pose`); for example `police1/police1_signer1_rep1_sentences/sentences0000.pose`.
  Files are copied into the corpus unchanged, so `.npy` files must already be
  canonical (F, 1, 543, 3) arrays.

The sample id is the full split-file path. Signer (`signer3`) and repetition
come from the id, as do `scenario` (`police`), `dialogue` (`police1`) and
`sentence_index` (`0005`), which are kept as extra columns. The sentence group
is the normalised reference gloss sequence, as everywhere in this package.
The sentence index cannot serve, because in GSL the same index of a dialogue
carries different gloss sequences for different signers (a skipped sentence
shifts the numbering).

Where the split file and `annotations.csv` spell a gloss sequence differently
(for example `ΚΑΤΩ(2)` against `ΚΑΤΩ(1)`), the split file is the reference,
because it is what models are trained on. The `annotations.csv` spelling is
kept in the extra column `annotations_gloss`. The Greek translation is kept
as `text_raw` and normalised into `text`.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from signattention_core.corpus.layout import (
    POSE_SUFFIXES,
    CorpusError,
    Problem,
    Sample,
    canonical_split,
    describe_encoding_error,
    write_corpus,
)
from signattention_core.text import normalize_text

logger = logging.getLogger(__name__)

GSL_FPS = 30.0
GSL_URL = "https://vcl.iti.gr/dataset/gsl/"
ANNOTATIONS_NAME = "annotations.csv"
CLASSES_NAME = "classes.csv"
SPLIT_FILES: dict[str, dict[str, str]] = {
    "si": {"train": "gsl_split_SI_train.csv", "dev": "gsl_split_SI_dev.csv", "test": "gsl_split_SI_test.csv"},
    "sd": {"train": "GSL_SD_train.csv", "dev": "GSL_SD_dev.csv", "test": "GSL_SD_test.csv"},
}
SPLIT_TYPES: dict[str, str] = {"si": "signer_independent", "sd": "sentence_independent"}

# police1/police1_signer1_rep1_sentences/sentences0000
_GSL_PATH = re.compile(
    r"^(?P<dialogue>(?P<scenario>[A-Za-z]+)\d+)/"
    r"(?P<folder>(?P=dialogue)_signer(?P<signer>\d+)_rep(?P<repetition>\d+)_sentences)/"
    r"sentences(?P<sentence>\d+)$"
)
# the console shows at most this many missing ids; the written list has all of them
MISSING_SHOWN = 20


@dataclass(frozen=True)
class GslId:
    """The parts of a GSL sample path."""

    scenario: str  # "police", "health" or "kep"
    dialogue: str  # scenario plus dialogue number, e.g. "police1"
    signer: str  # e.g. "signer3"
    repetition: int  # 1-5, or 6 for a replaced take
    sentence_index: str  # e.g. "0005", as in the path
    annotations_id: str  # the id as annotations.csv writes it, without the scenario folder


@dataclass
class GslImportReport:
    """Outcome of a GSL import: the samples, the missing poses and the spelling differences."""

    split: str  # "si" or "sd"
    n_rows: int  # rows in the three split files
    samples: list[Sample] = field(default_factory=list)  # samples written (or that would be written)
    missing_ids: list[str] = field(default_factory=list)  # sample ids with no pose file
    missing_list: Path | None = None  # file listing every missing id, when any are missing
    gloss_differences: int = 0  # samples whose annotations.csv gloss differs from the split file
    without_text: list[str] = field(default_factory=list)  # sample ids absent from annotations.csv
    unknown_glosses: list[str] = field(default_factory=list)  # glosses absent from classes.csv
    out_dir: Path | None = None  # the corpus folder written, None when nothing was written


class GslImportError(CorpusError):
    """A GSL import cannot go ahead; `report` contains what was found so far."""

    def __init__(self, message: str | list[Problem], report: GslImportReport | None = None,
                 source: str | Path = "the GSL files") -> None:
        super().__init__(message, source)
        self.report = report


def parse_gsl_id(path: str) -> GslId | None:
    """Split a GSL split-file path into its parts; None when it does not match the GSL pattern."""
    match = _GSL_PATH.match(path)
    if match is None:
        return None
    return GslId(
        scenario=match["scenario"],
        dialogue=match["dialogue"],
        signer=f"signer{int(match['signer'])}",
        repetition=int(match["repetition"]),
        sentence_index=match["sentence"],
        annotations_id=f"{match['folder']}/sentences{match['sentence']}",
    )


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Read a UTF-8 file as (line number, line) pairs, skipping blank lines."""
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, message, fix = describe_encoding_error(raw, exc)
        raise GslImportError(f"{path}: line {line}: {message}. Fix: {fix}") from exc
    return [(number, line.rstrip("\r")) for number, line in enumerate(content.split("\n"), start=1)
            if line.strip()]


def read_split_file(path: str | Path) -> list[tuple[int, str, str]]:
    """Read a GSL split file into (line number, path, gloss sequence as written) rows.

    Raises:
        GslImportError: listing every line that is not `path|glosses` with a GSL path
            and a non-empty gloss sequence.
    """
    path = Path(path)
    rows: list[tuple[int, str, str]] = []
    problems: list[Problem] = []
    for number, line in _read_lines(path):
        fields = line.split("|")
        location = f"line {number}"
        if len(fields) != 2:
            problems.append(Problem("error", "row-width", str(path), location,
                                    f"{len(fields)} fields in {line!r}; expected path|glosses",
                                    "correct the line to hold exactly one '|'"))
            continue
        sample_path, glosses = fields[0].strip(), fields[1]
        if parse_gsl_id(sample_path) is None:
            problems.append(Problem("error", "invalid-id", str(path), location,
                                    f"path {sample_path!r} does not look like "
                                    "police1/police1_signer1_rep1_sentences/sentences0000",
                                    "correct the path"))
            continue
        if not normalize_text(glosses):
            problems.append(Problem("error", "empty-gloss", str(path), location,
                                    f"path {sample_path!r} has an empty gloss sequence",
                                    "fill in the glosses or remove the line"))
            continue
        rows.append((number, sample_path, glosses))
    if problems:
        raise GslImportError(problems, source=path)
    return rows


def read_gsl_annotations(path: str | Path) -> dict[str, tuple[str, str]]:
    """Read GSL `annotations.csv` (`id|text|glosses`) into id -> (text, glosses), both as written.

    Raises:
        GslImportError: listing every malformed line and every repeated id.
    """
    path = Path(path)
    table: dict[str, tuple[str, str]] = {}
    first_line: dict[str, int] = {}
    problems: list[Problem] = []
    for number, line in _read_lines(path):
        fields = line.split("|")
        location = f"line {number}"
        if len(fields) != 3:
            problems.append(Problem("error", "row-width", str(path), location,
                                    f"{len(fields)} fields in {line!r}; expected id|text|glosses",
                                    "correct the line to hold exactly two '|'"))
            continue
        sample_id, text, glosses = fields[0].strip(), fields[1], fields[2]
        if sample_id in table:
            problems.append(Problem("error", "duplicate-id", str(path), location,
                                    f"id {sample_id!r} already appears on line {first_line[sample_id]}",
                                    "remove the repeated line"))
            continue
        table[sample_id] = (text, glosses)
        first_line[sample_id] = number
    if problems:
        raise GslImportError(problems, source=path)
    return table


def read_gsl_classes(path: str | Path) -> list[str]:
    """Read GSL `classes.csv`, the gloss vocabulary, into normalised glosses in file order.

    Raises:
        GslImportError: listing every line with more than one gloss and every repeated gloss.
    """
    path = Path(path)
    glosses: list[str] = []
    first_line: dict[str, int] = {}
    problems: list[Problem] = []
    for number, line in _read_lines(path):
        gloss = normalize_text(line)
        location = f"line {number}"
        if " " in gloss:
            problems.append(Problem("error", "row-width", str(path), location,
                                    f"{gloss!r} is more than one gloss", "write one gloss per line"))
        elif gloss in first_line:
            problems.append(Problem("error", "duplicate-gloss", str(path), location,
                                    f"gloss {gloss!r} already appears on line {first_line[gloss]}",
                                    "remove the repeated line"))
        else:
            first_line[gloss] = number
            glosses.append(gloss)
    if problems:
        raise GslImportError(problems, source=path)
    return glosses


def load_gsl_samples(annotations_dir: str | Path, split: str = "si") -> tuple[list[Sample], GslImportReport]:
    """Join the split files of `split` ("si" or "sd") with annotations.csv into samples.

    Returns the samples in split-file order (train, dev, test) and a report of
    gloss differences and rows without a translation.
    """
    if split not in SPLIT_FILES:
        raise GslImportError(f"unknown GSL split {split!r}; use one of {', '.join(SPLIT_FILES)}")
    annotations_dir = Path(annotations_dir)
    needed = [annotations_dir / name for name in (*SPLIT_FILES[split].values(), ANNOTATIONS_NAME)]
    absent = [path.name for path in needed if not path.is_file()]
    if absent:
        raise GslImportError(f"{annotations_dir} lacks {', '.join(absent)}; pass the folder that contains the "
                             f"GSL split files and {ANNOTATIONS_NAME}")

    annotations = read_gsl_annotations(annotations_dir / ANNOTATIONS_NAME)
    report = GslImportReport(split=split, n_rows=0)
    samples: list[Sample] = []
    seen: dict[str, str] = {}
    problems: list[Problem] = []
    for split_name, file_name in SPLIT_FILES[split].items():
        for number, sample_path, glosses in read_split_file(annotations_dir / file_name):
            report.n_rows += 1
            if sample_path in seen:
                problems.append(Problem("error", "duplicate-id", file_name, f"line {number}",
                                        f"path {sample_path!r} is already in {seen[sample_path]}",
                                        "remove the repeated line"))
                continue
            seen[sample_path] = f"{file_name} line {number}"
            samples.append(_make_sample(sample_path, canonical_split(split_name), glosses, annotations, report))
    if problems:
        raise GslImportError(problems, report, source=annotations_dir)

    report.samples = samples
    classes_path = annotations_dir / CLASSES_NAME
    if classes_path.is_file():
        known = set(read_gsl_classes(classes_path))
        used = {gloss for sample in samples for gloss in sample.glosses}
        report.unknown_glosses = sorted(used - known)
        if report.unknown_glosses:
            logger.warning("%d gloss(es) of the split files are not in %s: %s", len(report.unknown_glosses),
                           CLASSES_NAME, ", ".join(report.unknown_glosses[:10]))
    if report.gloss_differences:
        logger.info("%d sample(s) spell the gloss differently in %s; the split files are kept as reference "
                    "and the other spelling is in the annotations_gloss column",
                    report.gloss_differences, ANNOTATIONS_NAME)
    if report.without_text:
        logger.warning("%d sample(s) are not in %s and have no translation, e.g. %s",
                       len(report.without_text), ANNOTATIONS_NAME, report.without_text[0])
    return samples, report


def _make_sample(sample_path: str, split: str, glosses: str, annotations: dict[str, tuple[str, str]],
                 report: GslImportReport) -> Sample:
    parts = parse_gsl_id(sample_path)
    extras = {
        "scenario": parts.scenario,
        "dialogue": parts.dialogue,
        "sentence_index": parts.sentence_index,
        "annotations_gloss": "",
    }
    text = ""
    if parts.annotations_id in annotations:
        text, annotation_glosses = annotations[parts.annotations_id]
        if normalize_text(annotation_glosses) != normalize_text(glosses):
            extras["annotations_gloss"] = annotation_glosses
            report.gloss_differences += 1
    else:
        report.without_text.append(sample_path)
    return Sample(
        id=sample_path, split=split, gloss=glosses, text=text, signer=parts.signer,
        repetition=parts.repetition, fps=GSL_FPS, extras=extras,
    )


def find_pose_file(poses_dir: Path, sample_id: str) -> Path | None:
    """Return `<poses_dir>/<id>.npy` or `.pose`, whichever exists first, or None."""
    for suffix in POSE_SUFFIXES:
        path = poses_dir / f"{sample_id}{suffix}"
        if path.is_file():
            return path
    return None


def missing_list_path(out_dir: Path) -> Path:
    """Return where the full list of ids without a pose is written: beside the corpus folder."""
    return out_dir.with_name(f"{out_dir.name}.missing-poses.txt")


def _write_missing_list(path: Path, missing: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(f"{sample_id}\n" for sample_id in missing), encoding="utf-8")
    os.replace(tmp, path)


def import_gsl(
    annotations_dir: str | Path,
    poses_dir: str | Path | None,
    out_dir: str | Path,
    split: str = "si",
    allow_missing: bool = False,
    overwrite: bool = False,
) -> GslImportReport:
    """Import GSL into a corpus folder at `out_dir`.

    Every sample needs a pose file under `poses_dir` (see the module docstring).
    When some are missing, or `poses_dir` is None, the full list of missing ids
    goes to `<out_dir>.missing-poses.txt` and the import raises GslImportError,
    unless `allow_missing` is True, in which case those samples are dropped and
    counted in the log.
    """
    out_dir = Path(out_dir)
    samples, report = load_gsl_samples(annotations_dir, split)

    if poses_dir is not None:
        poses_dir = Path(poses_dir)
        if not poses_dir.is_dir():
            raise GslImportError(f"pose folder {poses_dir} not found; pass the folder that contains "
                                 "<scenario>/<scenario>_signerK_repR_sentences/sentencesNNNN.npy or .pose", report)
    sources: dict[str, Path] = {}
    for sample in samples:
        path = find_pose_file(poses_dir, sample.id) if poses_dir is not None else None
        if path is None:
            report.missing_ids.append(sample.id)
        else:
            sources[sample.id] = path

    if report.missing_ids:
        report.missing_list = missing_list_path(out_dir)
        _write_missing_list(report.missing_list, report.missing_ids)
        if not allow_missing:
            raise GslImportError(describe_missing(report, poses_dir), report)
        logger.warning("dropping %d of %d GSL samples without a pose file; their ids are in %s",
                       len(report.missing_ids), len(samples), report.missing_list)

    kept = [sample for sample in samples if sample.id in sources]
    if not kept:
        raise GslImportError(f"no GSL sample has a pose file under {poses_dir}, so there is nothing to write; "
                             f"the ids looked for are in {report.missing_list}", report)
    report.samples = kept
    metadata = {
        "name": f"gsl-{split}",
        "id": f"gsl-{split}",
        "url": GSL_URL,
        "input_language": "gsl",
        "output_language": "el",
        "input_types": ["pose"],
        "output_types": ["gloss", "text"],
        "split_type": SPLIT_TYPES[split],
        "source": f"GSL continuous part, {split.upper()} split files and {ANNOTATIONS_NAME}",
    }
    write_corpus(out_dir, metadata, kept, sources, overwrite=overwrite)
    report.out_dir = out_dir
    logger.info("imported %d GSL samples (%s split) into %s", len(kept), split, out_dir)
    return report


def describe_missing(report: GslImportReport, poses_dir: Path | None) -> str:
    """Describe the missing pose files: count, the first ids, and where the full list is."""
    missing = report.missing_ids
    where = f"under {poses_dir}" if poses_dir is not None else "because no pose folder was given"
    lines = [f"{len(missing)} of {report.n_rows} GSL samples have no pose file {where}:"]
    lines += [f"  {sample_id}" for sample_id in missing[:MISSING_SHOWN]]
    if len(missing) > MISSING_SHOWN:
        lines.append(f"  ... and {len(missing) - MISSING_SHOWN} more")
    lines.append(f"The full list is in {report.missing_list}. Add the files as "
                 "<poses>/<id>.npy or .pose, or pass --allow-missing to import without those samples.")
    return "\n".join(lines)
