"""Reading and writing a corpus folder.

A corpus folder contains:

- `metadata.json`: a JSON object with `name`, `id`, `url`, `input_language`,
  `output_language`, `input_types`, `output_types` and any extra keys. The
  optional key `split_type` states what the split promises and is checked by
  validation: `"signer_independent"` (no signer of val or test appears in
  train), `"sentence_independent"` (no sentence group of val or test appears in
  train) or `"random"` (no promise).
- `annotations.csv`: UTF-8 with a header line, comma-separated when written
  here; `|`-, tab- and `;`-separated files are read too (the delimiter is
  taken from the header line, and a byte-order mark is skipped). Columns
  `id`, `split`, `gloss` are required. `text`, `signer`, `repetition`,
  `sentence_group`, `fps`, `n_frames`, `gloss_spans` are optional. `start`
  and `end` select a segment of a longer `.pose` recording, in milliseconds,
  where `end` 0 means the end of the file. Any other column is kept as-is in
  `Sample.extras`. The split `dev` reads as `val`.
- `poses/<id>.npy`: float array (F, 1, 543, 3) in MediaPipe Holistic order,
  image coordinates 0-1, NaN where a point was not detected. A pose-format
  `poses/<id>.pose` file may take its place. Ids may contain `/`, which makes
  subfolders.
- `videos/<id>.mp4`: optional.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import shutil
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from signattention_core import holistic
from signattention_core.corpus import poses as pose_io
from signattention_core.text import normalize_text, split_glosses

logger = logging.getLogger(__name__)

METADATA_FILE = "metadata.json"
ANNOTATIONS_FILE = "annotations.csv"
POSES_DIR = "poses"
VIDEOS_DIR = "videos"

SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_ALIASES: dict[str, str] = {"dev": "val"}
SPLIT_TYPES: tuple[str, ...] = ("signer_independent", "sentence_independent", "random")
POSE_SUFFIXES: tuple[str, ...] = (".npy", ".pose")
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".webm", ".mov", ".avi", ".mkv")

REQUIRED_COLUMNS: tuple[str, ...] = ("id", "split", "gloss")
# columns that map onto Sample fields, in the order `write_corpus` writes them
KNOWN_COLUMNS: tuple[str, ...] = (
    "id", "split", "gloss", "text", "signer", "repetition", "sentence_group",
    "fps", "n_frames", "gloss_spans",
)
RECOMMENDED_METADATA_KEYS: tuple[str, ...] = (
    "name", "id", "url", "input_language", "output_language", "input_types", "output_types",
)


@dataclass(frozen=True)
class Sample:
    """One performance of one sentence by one signer.

    `gloss_raw` and `text_raw` default to `gloss` and `text`; `gloss` and
    `text` are always stored normalised (`text.normalize_text`), and an empty
    `sentence_group` becomes the normalised gloss sequence.
    """

    id: str
    split: str  # "train" | "val" | "test"
    gloss: str  # normalised gloss sequence, glosses separated by one space
    text: str = ""  # normalised translation, empty when the corpus has none
    gloss_raw: str | None = None  # gloss sequence exactly as in the source file
    text_raw: str | None = None  # translation exactly as in the source file
    signer: str | None = None  # signer label, e.g. "signer3"
    repetition: int | None = None  # repetition number of the same sentence by the same signer
    sentence_group: str = ""  # samples with the same value perform the same sentence
    fps: float | None = None  # frames per second of the pose recording
    n_frames: int | None = None  # frames in the pose recording (after start/end cropping)
    gloss_spans: tuple[tuple[int, int], ...] | None = None  # [start, end) raw frames per gloss
    extras: Mapping[str, str] = field(default_factory=dict)  # any other annotation columns

    def __post_init__(self) -> None:
        # `dev` becomes `val`; any other unknown split is left for write_corpus to reject
        split = canonical_split(self.split)
        if split is not None:
            object.__setattr__(self, "split", split)

        # fill the raw strings first, then normalise the stored ones
        if self.gloss_raw is None:
            object.__setattr__(self, "gloss_raw", self.gloss)
        if self.text_raw is None:
            object.__setattr__(self, "text_raw", self.text)
        object.__setattr__(self, "gloss", normalize_text(self.gloss))
        object.__setattr__(self, "text", normalize_text(self.text))
        if not self.sentence_group:
            object.__setattr__(self, "sentence_group", self.gloss)
        if self.gloss_spans is not None:
            spans = tuple((int(start), int(end)) for start, end in self.gloss_spans)
            object.__setattr__(self, "gloss_spans", spans)
        object.__setattr__(self, "extras", dict(self.extras))

    @property
    def glosses(self) -> list[str]:
        """The normalised gloss tokens."""
        return split_glosses(self.gloss)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a corpus, located precisely enough to fix it."""

    severity: str  # "error" makes the corpus unusable; "warning" does not
    code: str  # short stable identifier, e.g. "missing-pose", "duplicate-id"
    file: str  # path of the file concerned, relative to the corpus root where possible
    location: str  # "line 12", "id police1_signer1_rep1_sentences/sentences0000", or ""
    message: str  # what is wrong, naming the offending value
    fix: str  # what to do about it

    def __str__(self) -> str:
        where = f"{self.file}, {self.location}" if self.location else self.file
        return f"{self.severity}: {where}: {self.message}. Fix: {self.fix}"


class CorpusError(ValueError):
    """A corpus cannot be used; the message lists every problem with file, line or id, and fix."""

    def __init__(self, problems: Sequence[Problem] | str, root: str | Path | None = None) -> None:
        if isinstance(problems, str):
            self.problems: list[Problem] = []
            super().__init__(problems)
            return
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        place = str(root) if root is not None else "the corpus"
        lines = [f"{place} has {len(errors)} error(s):"]
        lines.extend(f"  {problem}" for problem in errors)
        super().__init__("\n".join(lines))


def canonical_split(value: str) -> str | None:
    """Return `train`, `val` or `test` for a split name (`dev` reads as `val`), or None."""
    name = value.strip().lower()
    name = SPLIT_ALIASES.get(name, name)
    return name if name in SPLITS else None


def id_problem(sample_id: str) -> str | None:
    """Return why an id cannot name a file under `poses/`, or None if it can."""
    if not sample_id:
        return "the id is empty"
    if any(unicodedata.category(char) == "Cc" for char in sample_id):
        return f"the id {sample_id!r} contains a control character such as a tab or line break"
    if sample_id != sample_id.strip():
        return f"the id {sample_id!r} has leading or trailing spaces"
    if "\\" in sample_id or sample_id.startswith("/"):
        return f"the id {sample_id!r} contains a backslash or starts with '/'"
    if any(part in ("", ".", "..") for part in sample_id.split("/")):
        return f"the id {sample_id!r} has an empty, '.' or '..' path part"
    return None


def describe_encoding_error(raw: bytes, exc: UnicodeDecodeError) -> tuple[int, str, str]:
    """Return the line, message and fix for file content that is not UTF-8.

    The fix names the likely encoding when the content starts with a UTF-16
    byte-order mark, or decodes as Greek Windows-1253 (the encoding of CSV
    files that Excel and Notepad save on Greek Windows by default).
    """
    line = raw[: exc.start].count(b"\n") + 1
    message = f"invalid UTF-8 byte {raw[exc.start]:#04x} at byte offset {exc.start}"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        name, iconv_name = "UTF-16", "UTF-16"
    elif _looks_like_windows_greek(raw):
        name, iconv_name = "Greek Windows-1253", "WINDOWS-1253"
    else:
        return line, message, "re-save the file as UTF-8 (for example with iconv -f <encoding> -t UTF-8)"
    return line, message, (f"the file looks like {name}; re-save it as UTF-8, for example with "
                           f"iconv -f {iconv_name} -t UTF-8 FILE > FILE.utf8")


def _looks_like_windows_greek(raw: bytes) -> bool:
    try:
        decoded = raw.decode("cp1253")
    except UnicodeDecodeError:
        return False
    non_ascii = [char for char in decoded if ord(char) > 127]
    greek = [char for char in non_ascii if "\u0370" <= char <= "\u03ff"]
    return bool(non_ascii) and len(greek) >= len(non_ascii) / 2


# ---------------------------------------------------------------- reading


def read_metadata(root: Path) -> tuple[dict, list[Problem]]:
    """Read `metadata.json`; return the object (empty when unusable) and its problems."""
    path = root / METADATA_FILE
    problems: list[Problem] = []

    def error(code: str, location: str, message: str, fix: str) -> None:
        problems.append(Problem("error", code, METADATA_FILE, location, message, fix))

    if not path.is_file():
        error("missing-metadata", "", f"{path} not found",
              'write a JSON object such as {"name": "my-corpus", "split_type": "random"}')
        return {}, problems
    raw = path.read_bytes()
    try:
        metadata = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        line, message, fix = describe_encoding_error(raw, exc)
        error("not-utf8", f"line {line}", message, fix)
        return {}, problems
    except json.JSONDecodeError as exc:
        error("invalid-json", f"line {exc.lineno}", f"invalid JSON: {exc.msg} (column {exc.colno})",
              "correct the JSON syntax")
        return {}, problems
    if not isinstance(metadata, dict):
        error("invalid-json", "", f"the file contains a JSON {type(metadata).__name__}, not an object",
              'wrap the content in an object such as {"name": "my-corpus"}')
        return {}, problems

    missing = [key for key in RECOMMENDED_METADATA_KEYS if key not in metadata]
    if missing:
        problems.append(Problem(
            "warning", "metadata-keys", METADATA_FILE, "",
            f"missing recommended keys {', '.join(missing)}",
            "add them so that other tools can describe the corpus"))
    split_type = metadata.get("split_type")
    if split_type is not None and split_type not in SPLIT_TYPES:
        error("unknown-split-type", "split_type",
              f"unknown split_type {split_type!r}",
              f"use one of {', '.join(SPLIT_TYPES)} or remove the key")
    return metadata, problems


def sniff_delimiter(header: str) -> str:
    """Return the delimiter of a header line: `,`, `|`, tab or `;` (Excel's CSV in many locales)."""
    # the header names plain column words, so whichever delimiter it contains wins, and the most frequent on a tie
    present = [delimiter for delimiter in (",", "|", "\t", ";") if delimiter in header]
    if not present:
        return ","
    return max(present, key=header.count)


def read_annotations(path: Path, file_label: str = ANNOTATIONS_FILE) -> tuple[list[Sample], list[int], list[Problem]]:
    """Parse an annotations file with every row-level check.

    Returns:
        The samples in file order, the line number of each sample, and every problem found.
        Rows with errors are left out of the samples.
    """
    problems: list[Problem] = []

    def report(severity: str, code: str, location: str, message: str, fix: str) -> None:
        problems.append(Problem(severity, code, file_label, location, message, fix))

    if not path.is_file():
        report("error", "missing-annotations", "", f"{path} not found",
               "write annotations.csv with a header line id,split,gloss,text")
        return [], [], problems
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, message, fix = describe_encoding_error(raw, exc)
        report("error", "not-utf8", f"line {line}", message, fix)
        return [], [], problems
    if not content.strip():
        report("error", "empty-annotations", "", "the file is empty",
               "write a header line id,split,gloss,text and one row per sample")
        return [], [], problems

    header_line = content.splitlines()[0]
    delimiter = sniff_delimiter(header_line)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    header = [name.strip() for name in next(reader)]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        report("error", "missing-columns", "line 1",
               f"header {header_line!r} lacks column(s) {', '.join(missing)}",
               f"start the file with a header line naming at least {', '.join(REQUIRED_COLUMNS)}")
        return [], [], problems
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        report("error", "duplicate-columns", "line 1", f"columns {', '.join(duplicated)} appear twice",
               "rename or remove the repeated columns")
        return [], [], problems

    samples: list[Sample] = []
    lines: list[int] = []
    first_line_of: dict[str, int] = {}
    line_start = 2
    for row in reader:
        line = line_start
        line_start = reader.line_num + 1
        if not row or all(not value.strip() for value in row):
            continue
        if len(row) != len(header):
            report("error", "row-width", f"line {line}",
                   f"{len(row)} fields where the header has {len(header)}",
                   f"quote fields that contain {delimiter!r} or add the missing fields")
            continue
        sample = parse_row(dict(zip(header, row, strict=True)), line, report)
        if sample is None:
            continue
        if sample.id in first_line_of:
            report("error", "duplicate-id", f"line {line}",
                   f"id {sample.id!r} already appears on line {first_line_of[sample.id]}",
                   "give every sample a unique id or remove the repeated row")
            continue
        first_line_of[sample.id] = line
        samples.append(sample)
        lines.append(line)

    if not samples and not any(p.severity == "error" for p in problems):
        report("error", "empty-annotations", "", "the file has a header but no sample rows",
               "add one row per sample")
    return samples, lines, problems


def parse_row(row: dict[str, str], line: int, report: Callable[..., None]) -> Sample | None:
    """Build one Sample from a row of column name -> value, reporting every bad value.

    `report(severity, code, location, message, fix)` receives each problem.
    Returns None when the row is unusable. Pops the known columns from `row`,
    so what is left becomes `Sample.extras`.
    """
    location = f"line {line}"
    ok = True

    def bad(code: str, message: str, fix: str) -> None:
        nonlocal ok
        ok = False
        report("error", code, location, message, fix)

    sample_id = row.pop("id")
    reason = id_problem(sample_id)
    if reason:
        bad("invalid-id", reason, "write a relative id such as signer1/sentence0001, without surrounding spaces, "
            "control characters, backslashes or '.' and '..' parts")

    split_raw = row.pop("split")
    split = canonical_split(split_raw)
    if split is None:
        bad("unknown-split", f"unknown split {split_raw!r}",
            f"use one of {', '.join(SPLITS)} (dev is read as val)")

    gloss_raw = row.pop("gloss")
    if not normalize_text(gloss_raw):
        bad("empty-gloss", f"sample {sample_id!r} has an empty gloss", "fill in its gloss sequence or remove the row")
    text_raw = row.pop("text", "")

    signer = row.pop("signer", "").strip() or None
    repetition = _parse_number(row.pop("repetition", ""), int, "repetition", bad)
    sentence_group = normalize_text(row.pop("sentence_group", ""))
    fps = _parse_number(row.pop("fps", ""), float, "fps", bad)
    if fps is not None and not fps > 0:
        bad("invalid-value", f"fps {fps} is not positive", "write the recording's frame rate, e.g. 30")
    n_frames = _parse_number(row.pop("n_frames", ""), int, "n_frames", bad)
    if n_frames is not None and n_frames < 0:
        bad("invalid-value", f"n_frames {n_frames} is negative", "write the number of frames or leave it empty")

    spans = None
    spans_raw = row.pop("gloss_spans", "").strip()
    if spans_raw:
        spans, reason = _parse_spans(spans_raw, len(split_glosses(gloss_raw)))
        if reason:
            bad("invalid-gloss-spans", f"gloss_spans {spans_raw!r}: {reason}",
                'write a JSON list with one [start, end) frame pair per gloss, e.g. "[[0,12],[12,30]]"')

    for key in ("start", "end"):
        value = row.get(key, "").strip()
        if value:
            # -1 is the unset value that PHOENIX-style corpus files use
            number = _parse_number(value, float, key, bad)
            if number is not None and number < 0 and number != -1:
                bad("invalid-value", f"{key} {value!r} is negative", f"write {key} in milliseconds, 0 or more")

    if not ok:
        return None
    return Sample(
        id=sample_id, split=split, gloss=gloss_raw, text=text_raw, gloss_raw=gloss_raw, text_raw=text_raw,
        signer=signer, repetition=repetition, sentence_group=sentence_group, fps=fps, n_frames=n_frames,
        gloss_spans=spans, extras=row,
    )


def _parse_number(value: str, kind: type, column: str, bad: Callable[..., None]) -> int | float | None:
    value = value.strip()
    if not value:
        return None
    try:
        number = kind(value)
    except ValueError:
        bad("invalid-value", f"{column} {value!r} is not {'an integer' if kind is int else 'a number'}",
            f"write {column} as {'an integer' if kind is int else 'a number'} or leave it empty")
        return None
    if kind is float and not np.isfinite(number):
        bad("invalid-value", f"{column} {value!r} is not finite", f"write a finite {column} or leave it empty")
        return None
    return number


def _parse_spans(value: str, n_glosses: int) -> tuple[tuple[tuple[int, int], ...] | None, str | None]:
    try:
        spans = json.loads(value)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc.msg})"
    if not isinstance(spans, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
        for pair in spans
    ):
        return None, "not a list of [start, end] integer pairs"
    reason = spans_problem(spans, n_glosses)
    if reason:
        return None, reason
    return tuple((start, end) for start, end in spans), None


def spans_problem(spans: Sequence[Sequence[int]], n_glosses: int) -> str | None:
    """Return why gold spans do not fit a gloss sequence of `n_glosses` glosses, or None if they do."""
    if len(spans) != n_glosses:
        return f"{len(spans)} spans for {n_glosses} glosses"
    for start, end in spans:
        if start < 0 or end <= start:
            return f"span [{start}, {end}] is not a non-empty range of non-negative frames"
    return None


# ---------------------------------------------------------------- the corpus


class Corpus:
    """A corpus folder opened for reading: metadata, samples in file order, and pose access."""

    def __init__(self, root: Path, metadata: dict, samples: list[Sample], problems: list[Problem] | None = None):
        self.root = Path(root)
        self.metadata = metadata
        self.samples = samples
        # warnings found when opening, kept for callers that want to show them
        self.problems = list(problems or [])
        self._by_id = {sample.id: sample for sample in samples}

    @classmethod
    def open(cls, root: str | Path, check_poses: bool = False) -> Corpus:
        """Open a corpus folder and run the validation checks.

        Raises CorpusError listing every error. Missing pose files are logged
        as warnings here so that a dataset can drop those samples; `validate`
        treats them as errors. `check_poses=True` also reads every pose file.
        """
        from signattention_core.corpus.validate import collect_problems

        root = Path(root)
        if not root.is_dir():
            found = "is a file, not a folder" if root.exists() else "not found"
            raise CorpusError(f"corpus folder {root} {found}; pass the folder that contains "
                              f"{METADATA_FILE} and {ANNOTATIONS_FILE}")
        metadata, samples, problems = collect_problems(root, check_poses=check_poses)
        errors = [p for p in problems if p.severity == "error" and p.code != "missing-pose"]
        if errors:
            raise CorpusError(errors, root)
        missing = [p for p in problems if p.code == "missing-pose"]
        if missing:
            first_ids = ", ".join(p.location.removeprefix("id ") for p in missing[:5])
            logger.warning("corpus %s: %d sample(s) have no pose file (%s%s)", root, len(missing), first_ids,
                           ", ..." if len(missing) > 5 else "")
        for problem in problems:
            if problem.severity == "warning":
                quiet = problem.code in ("extra-pose", "metadata-keys")
                logger.log(logging.DEBUG if quiet else logging.WARNING, "corpus %s: %s", root, problem)
        return cls(root, metadata, samples, problems)

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return f"Corpus({str(self.root)!r}, {len(self.samples)} samples)"

    @property
    def name(self) -> str:
        """The corpus name from metadata.json, or the folder name."""
        return str(self.metadata.get("name") or self.root.name)

    def by_id(self, sample_id: str) -> Sample:
        """Return the sample with this id; raise KeyError naming the corpus if absent."""
        try:
            return self._by_id[sample_id]
        except KeyError:
            raise KeyError(f"no sample with id {sample_id!r} in corpus {self.root}") from None

    def split(self, name: str) -> list[Sample]:
        """Return the samples of one split (`dev` reads as `val`), in file order."""
        split = canonical_split(name)
        if split is None:
            raise CorpusError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)} (dev is read as val)")
        return [sample for sample in self.samples if sample.split == split]

    def pose_path(self, sample_id: str) -> Path:
        """Return `poses/<id>.npy` or `poses/<id>.pose`, whichever exists (`.npy` when neither does)."""
        base = self.root / POSES_DIR / sample_id
        for suffix in POSE_SUFFIXES:
            path = base.with_name(base.name + suffix)
            if path.is_file():
                return path
        return base.with_name(base.name + POSE_SUFFIXES[0])

    def has_pose(self, sample_id: str) -> bool:
        """Return True when the sample's pose file exists."""
        return self.pose_path(sample_id).is_file()

    def load_pose(self, sample_id: str) -> np.ndarray:
        """Read one sample's pose as (F, 543, 3) float32, NaN where missing, x and y in 0-1.

        Raises CorpusError when the file is missing, unreadable or wrongly shaped.
        """
        sample = self.by_id(sample_id)
        path = self.pose_path(sample_id)
        if not path.is_file():
            raise CorpusError(f"pose file for sample {sample_id!r} not found: expected "
                              f"{path} or {path.with_suffix('.pose')}; add it or remove the sample's row")
        try:
            return pose_io.read_pose(path, start_ms=_float_or_none(sample.extras.get("start")),
                                     end_ms=_float_or_none(sample.extras.get("end")))
        except pose_io.PoseReadError as exc:
            raise CorpusError(str(exc)) from exc

    def video_path(self, sample_id: str) -> Path | None:
        """Return the sample's video under `videos/`, or None when there is none."""
        base = self.root / VIDEOS_DIR / sample_id
        for suffix in VIDEO_SUFFIXES:
            path = base.with_name(base.name + suffix)
            if path.is_file():
                return path
        return None


def _float_or_none(value: str | None) -> float | None:
    if value is None or not str(value).strip():
        return None
    return float(value)


# ---------------------------------------------------------------- writing


PoseSource = np.ndarray | str | os.PathLike


def write_corpus(
    root: str | Path,
    metadata: dict,
    samples: Sequence[Sample],
    poses: Callable[[str], PoseSource] | Mapping[str, PoseSource],
    overwrite: bool = False,
) -> None:
    """Write a corpus folder atomically.

    Everything goes into `<root>.tmp-<pid>` first, which then replaces `root`.
    `poses` maps each sample id to an array or to a file path. An array
    (F, 543, 3) or (F, 1, 543, 3) is saved as `poses/<id>.npy`, float32
    (F, 1, 543, 3). An existing `.npy` or `.pose` file is copied unchanged.

    Raises:
        CorpusError: if `root` exists and `overwrite` is False, if `root` is a
            file or a non-empty folder without metadata.json or annotations.csv
            (overwrite never replaces those), or if a sample, the metadata or
            a pose is invalid.
    """
    root = Path(root)
    if root.exists() or root.is_symlink():
        _check_replaceable(root, overwrite)
    _check_samples_for_writing(samples, metadata)

    tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        _write_annotations(tmp / ANNOTATIONS_FILE, samples)
        get_pose = poses.__getitem__ if isinstance(poses, Mapping) else poses
        for sample in samples:
            try:
                source = get_pose(sample.id)
            except KeyError:
                raise CorpusError(f"no pose given for sample {sample.id!r}; add it to the poses mapping") from None
            _write_pose(tmp / POSES_DIR, sample.id, source)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    # swap the finished folder in; the old one is removed only once the new one is in place
    if root.exists():
        old = root.with_name(f"{root.name}.old-{os.getpid()}")
        os.replace(root, old)
        os.replace(tmp, root)
        shutil.rmtree(old)
    else:
        os.replace(tmp, root)
    logger.info("wrote corpus %s with %d samples", root, len(samples))


def _check_replaceable(root: Path, overwrite: bool) -> None:
    """Raise CorpusError unless `overwrite` is set and `root` is an empty folder or a corpus folder."""
    if not overwrite:
        raise CorpusError(f"{root} already exists; pass overwrite=True (--overwrite on the command line) "
                          "to replace it, or choose another folder")
    if not root.is_dir() or root.is_symlink():
        raise CorpusError(f"{root} exists and is a file or a symbolic link, not a folder, so it is not replaced "
                          "by a corpus; remove it or choose another folder")
    looks_like_corpus = (root / METADATA_FILE).is_file() or (root / ANNOTATIONS_FILE).is_file()
    if not looks_like_corpus and any(root.iterdir()):
        raise CorpusError(f"{root} is not empty and has no {METADATA_FILE} or {ANNOTATIONS_FILE}, so it does not "
                          "look like a corpus; overwrite replaces only corpus folders and empty folders. "
                          "Choose another folder, or empty this one yourself")


def _check_samples_for_writing(samples: Sequence[Sample], metadata: dict) -> None:
    problems: list[Problem] = []

    def error(sample_id: str, code: str, message: str, fix: str) -> None:
        problems.append(Problem("error", code, ANNOTATIONS_FILE, f"id {sample_id}", message, fix))

    if not isinstance(metadata, dict):
        problems.append(Problem("error", "invalid-json", METADATA_FILE, "",
                                f"metadata is a {type(metadata).__name__}, not a dict", "pass a dict"))
    seen: set[str] = set()
    for sample in samples:
        reason = id_problem(sample.id)
        if reason:
            error(sample.id, "invalid-id", reason, "give the sample a non-empty relative id")
        if sample.id in seen:
            error(sample.id, "duplicate-id", f"id {sample.id!r} appears twice", "give every sample a unique id")
        seen.add(sample.id)
        if sample.split not in SPLITS:
            error(sample.id, "unknown-split", f"unknown split {sample.split!r}", f"use one of {', '.join(SPLITS)}")
        if not sample.gloss:
            error(sample.id, "empty-gloss", "the gloss is empty", "fill in the gloss sequence")
        if normalize_text(sample.gloss_raw) != sample.gloss:
            error(sample.id, "gloss-mismatch",
                  f"gloss {sample.gloss!r} is not the normalised form of gloss_raw {sample.gloss_raw!r}",
                  "keep gloss_raw as the source string and gloss as normalize_text(gloss_raw)")
        if normalize_text(sample.text_raw) != sample.text:
            error(sample.id, "text-mismatch",
                  f"text {sample.text!r} is not the normalised form of text_raw {sample.text_raw!r}",
                  "keep text_raw as the source string and text as normalize_text(text_raw)")
        if sample.gloss_spans is not None:
            reason = spans_problem(sample.gloss_spans, len(sample.glosses))
            if reason:
                error(sample.id, "invalid-gloss-spans", f"gloss_spans {sample.gloss_spans}: {reason}",
                      "give one [start, end) frame pair per gloss, with start < end")
        clashing = sorted(set(sample.extras) & set(KNOWN_COLUMNS))
        if clashing:
            error(sample.id, "extras-clash", f"extras repeat the column(s) {', '.join(clashing)}",
                  "set those values through the Sample fields instead")
    if problems:
        raise CorpusError(problems)


def _write_annotations(path: Path, samples: Sequence[Sample]) -> None:
    extra_columns: list[str] = []
    for sample in samples:
        for key in sample.extras:
            if key not in extra_columns:
                extra_columns.append(key)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*KNOWN_COLUMNS, *extra_columns])
        for sample in samples:
            spans = None if sample.gloss_spans is None else json.dumps([list(s) for s in sample.gloss_spans])
            values = [
                sample.id, sample.split, sample.gloss_raw, sample.text_raw, sample.signer, sample.repetition,
                sample.sentence_group, sample.fps, sample.n_frames, spans,
            ]
            values += [sample.extras.get(key) for key in extra_columns]
            writer.writerow(["" if value is None else value for value in values])


def _write_pose(poses_dir: Path, sample_id: str, source: PoseSource) -> None:
    if isinstance(source, (str, os.PathLike)):
        source_path = Path(source)
        if source_path.suffix not in POSE_SUFFIXES:
            raise CorpusError(f"pose source {source_path} for sample {sample_id!r} is neither .npy nor .pose; "
                              "convert it first")
        target = poses_dir / f"{sample_id}{source_path.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source_path, target)
        return

    source_array = np.asarray(source)
    array = source_array[:, None] if source_array.ndim == 3 else source_array  # (F, 1, K, C)
    if array.ndim != 4 or array.shape[1] != 1 or array.shape[2:] != (holistic.N_POINTS, 3) or array.shape[0] == 0:
        raise CorpusError(f"pose for sample {sample_id!r} has shape {source_array.shape}; expected (F, 543, 3) or "
                          "(F, 1, 543, 3) with F >= 1 in MediaPipe Holistic order")
    if not np.issubdtype(array.dtype, np.floating):
        raise CorpusError(f"pose for sample {sample_id!r} has dtype {array.dtype}; expected a float type")
    target = poses_dir / f"{sample_id}.npy"
    target.parent.mkdir(parents=True, exist_ok=True)
    np.save(target, array.astype(np.float32, copy=False))
