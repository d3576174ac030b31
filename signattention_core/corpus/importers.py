"""Importers for pose data as users commonly have it.

- A folder of `.pose` files with a CSV that names each sample's file and
  glosses (`import_pose_folder`). Column names of the PHOENIX-2014-T corpus
  files (`name`, `speaker`, `orth`, `translation`) are understood as well.
- The Progressive Transformers text format (`import_skels`): per split, one
  line per sample in `<split>.skels` with the matching line of `<split>.gloss`,
  `<split>.text` and `<split>.files`.

Both write a corpus folder in this package's layout through `write_corpus`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from signattention_core import holistic
from signattention_core.corpus import poses as pose_io
from signattention_core.corpus.layout import (
    SPLITS,
    CorpusError,
    Problem,
    Sample,
    canonical_split,
    describe_encoding_error,
    parse_row,
    sniff_delimiter,
    write_corpus,
)
from signattention_core.text import normalize_text

logger = logging.getLogger(__name__)

# accepted spellings of each annotation column, first match wins
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "name", "sample_id"),
    "path": ("path", "pose", "pose_path", "file"),
    "gloss": ("gloss", "glosses", "orth"),
    "text": ("text", "translation", "sentence", "words"),
    "signer": ("signer", "speaker"),
    "split": ("split",),
    "repetition": ("repetition",),
    "sentence_group": ("sentence_group",),
    "gloss_spans": ("gloss_spans",),
    "start": ("start",),
    "end": ("end",),
}


def assign_splits(n_samples: int, fractions: Sequence[float], seed: int) -> list[str]:
    """Assign train/val/test to samples at random, deterministically for a seed.

    Every split gets at least one sample when there are three or more, so
    that training has a validation set and extraction a test set.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not sum(fractions) > 0:
        raise ValueError(f"split fractions {tuple(fractions)} must be three non-negative numbers "
                         "(train, val, test) with a positive sum, e.g. 0.8,0.1,0.1")
    total = float(sum(fractions))
    counts = [int(round(n_samples * f / total)) for f in fractions]
    if n_samples >= 3:
        for i in range(3):
            if counts[i] == 0:
                counts[i] = 1
    # give rounding surplus or deficit to train
    counts[0] = n_samples - counts[1] - counts[2]
    if counts[0] < 0:
        raise ValueError(f"cannot split {n_samples} samples with fractions {tuple(fractions)}")
    order = np.random.default_rng(seed).permutation(n_samples)
    splits = [""] * n_samples
    for position, index in enumerate(order):
        if position < counts[0]:
            splits[index] = "train"
        elif position < counts[0] + counts[1]:
            splits[index] = "val"
        else:
            splits[index] = "test"
    return splits


def _read_text(path: Path, kind: str, missing_fix: str) -> str:
    """Read a UTF-8 text file (a byte-order mark is skipped); raise CorpusError naming the line of a bad byte."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"{kind} {path} not found; {missing_fix}") from None
    except OSError as exc:
        raise CorpusError(f"{kind} {path} cannot be read ({exc})") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, message, fix = describe_encoding_error(raw, exc)
        raise CorpusError(f"{path}, line {line}: {message}. Fix: {fix}") from None


def _read_table(csv_path: Path) -> tuple[list[tuple[int, dict[str, str]]], dict[str, str], list[Problem]]:
    """Read a `,`-, `|`-, tab- or `;`-separated UTF-8 table.

    Returns:
        The rows as (line number, column -> value) pairs, our column name -> the table's column name,
        and one problem per row whose field count differs from the header (those rows are left out).

    Raises:
        CorpusError: when the file is missing, not UTF-8, lacks a gloss or id column, or has no rows.
    """
    content = _read_text(csv_path, "annotation table", "pass the CSV that lists the samples")
    if not content.strip():
        raise CorpusError(f"{csv_path} is empty; write a header line such as id,gloss,text")
    header_line = content.splitlines()[0]
    delimiter = sniff_delimiter(header_line)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    header = [name.strip() for name in next(reader)]
    columns: dict[str, str] = {}
    for ours, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in header:
                columns[ours] = alias
                break
    if "gloss" not in columns or ("id" not in columns and "path" not in columns):
        raise CorpusError(
            f"{csv_path}: header {header_line!r} needs a gloss column ({', '.join(COLUMN_ALIASES['gloss'])}) "
            f"and an id or path column ({', '.join(COLUMN_ALIASES['id'] + COLUMN_ALIASES['path'])})")

    rows: list[tuple[int, dict[str, str]]] = []
    problems: list[Problem] = []
    line_start = 2
    for fields in reader:
        line = line_start
        line_start = reader.line_num + 1
        if not fields or all(not value.strip() for value in fields):
            continue
        if len(fields) != len(header):
            problems.append(Problem("error", "row-width", str(csv_path), f"line {line}",
                                    f"{len(fields)} fields where the header has {len(header)}",
                                    f"quote fields that contain {delimiter!r} (such as gloss_spans) "
                                    "or add the missing fields"))
            continue
        rows.append((line, dict(zip(header, fields, strict=True))))
    if not rows and not problems:
        raise CorpusError(f"{csv_path} has a header but no sample rows; add one row per sample")
    return rows, columns, problems




def pose_file_info(path: Path) -> tuple[int, float]:
    """Return the frame count and frame rate stored in a `.pose` file.

    Raises:
        CorpusError: when the file is not a readable, complete `.pose` file.
    """
    try:
        pose = pose_io.read_pose_format(path)
    except pose_io.PoseReadError as exc:
        raise CorpusError(str(exc)) from exc
    return int(pose.body.data.shape[0]), float(pose.body.fps)


def _find_pose_file(poses_dir: Path, sample_id: str, relative_path: str | None) -> Path | None:
    candidates = []
    if relative_path:
        candidates.append(poses_dir / relative_path)
    candidates += [poses_dir / f"{sample_id}.pose", poses_dir / sample_id / "capture.pose", poses_dir / sample_id]
    for candidate in candidates:
        if candidate.is_file() and candidate.suffix == ".pose":
            return candidate
    return None


def imported_metadata(out_dir: Path, name: str | None, output_types: list[str], source: str) -> dict:
    """Return the metadata.json of an imported corpus; languages and URL are left for the user to fill in."""
    return {
        "name": name or out_dir.name,
        "id": name or out_dir.name,
        "url": "",
        "input_language": "",
        "output_language": "",
        "input_types": ["pose"],
        "output_types": output_types,
        "split_type": "random",
        "source": source,
    }


def import_pose_folder(
    csv_path: str | Path,
    poses_dir: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    overwrite: bool = False,
) -> list[Sample]:
    """Import a folder of `.pose` files listed in a CSV into a corpus folder.

    The CSV needs an id (`id`, `name`) or a path (`path`, relative to
    `poses_dir`) and glosses (`gloss`, `glosses`, `orth`). The columns `text`,
    `signer`, `split`, `repetition`, `sentence_group`, `gloss_spans`, `start`
    and `end` are taken when present, and other columns are kept as extras.
    Rows with an empty split are assigned to splits at random with
    `split_fractions` and `seed`. The import writes nothing and raises
    CorpusError listing every missing `.pose` file and every invalid row
    (checked as in `annotations.csv`, plus gloss spans past the last frame).
    The `.pose` files are copied unchanged; fps and frame counts come from
    their headers.
    """
    csv_path, poses_dir, out_dir = Path(csv_path), Path(poses_dir), Path(out_dir)
    if not poses_dir.is_dir():
        raise CorpusError(f"pose folder {poses_dir} not found; pass the folder that contains the .pose files")
    rows, columns, problems = _read_table(csv_path)
    consumed = set(columns.values())

    def report(severity: str, code: str, location: str, message: str, fix: str) -> None:
        problems.append(Problem(severity, code, str(csv_path), location, message, fix))

    samples: list[Sample] = []
    sources: dict[str, Path] = {}
    first_line_of: dict[str, int] = {}
    drawn_split: list[int] = []  # indices into `samples` of rows without a split
    missing: list[str] = []
    for line, row in rows:
        # our column name -> stripped value
        values = {ours: row[theirs].strip() for ours, theirs in columns.items()}
        relative = values.get("path") or None
        sample_id = values.get("id") or Path(relative.replace("\\", "/")).with_suffix("").as_posix()
        source = _find_pose_file(poses_dir, sample_id, relative)
        if source is None:
            missing.append(f"line {line}: {sample_id} (looked for {relative or sample_id + '.pose'} under {poses_dir})")
            continue

        # columns we do not read are kept as extras; a row without a split gets one drawn below
        fields = {name: text for name, text in row.items() if name not in consumed and (name or text)}
        fields.update({ours: text for ours, text in values.items() if ours != "path"})
        fields["id"] = sample_id
        fields["split"] = values.get("split") or "train"
        sample = parse_row(fields, line, report)
        if sample is None:
            continue
        if sample.id in first_line_of:
            report("error", "duplicate-id", f"line {line}", f"id {sample.id!r} already appears on line "
                   f"{first_line_of[sample.id]}", "give every sample a unique id or remove the repeated row")
            continue
        first_line_of[sample.id] = line

        try:
            n_frames, fps = pose_file_info(source)
        except CorpusError as exc:
            report("error", "unreadable-pose", f"line {line}", str(exc), "re-export the .pose file or remove the row")
            continue
        extras = {key: text for key, text in sample.extras.items()
                  if not (key in ("start", "end") and text.strip() in ("", "-1"))}
        cropped = "start" in extras or "end" in extras
        last_end = max((end for _, end in sample.gloss_spans or ()), default=0)
        if not cropped and last_end > n_frames:
            report("error", "span-past-end", f"line {line}",
                   f"gloss_spans end at frame {last_end} but {source.name} has {n_frames} frames",
                   "correct gloss_spans to lie within the pose's frames")
            continue
        # a cropped segment has its own frame count, which the reader derives
        sample = dataclasses.replace(sample, fps=fps, n_frames=None if cropped else n_frames, extras=extras)
        if not values.get("split"):
            drawn_split.append(len(samples))
        samples.append(sample)
        sources[sample.id] = source

    if missing or problems:
        lines = []
        if missing:
            lines.append(f"{len(missing)} pose file(s) listed in {csv_path} were not found:")
            lines += [f"  {entry}" for entry in missing]
            lines.append("Fix the paths in the CSV or add the files.")
        if problems:
            lines.append(f"{len(problems)} problem(s) in {csv_path}:")
            lines += [f"  {problem}" for problem in problems]
        raise CorpusError("\n".join(lines))

    if drawn_split:
        drawn = assign_splits(len(drawn_split), split_fractions, seed)
        for index, split in zip(drawn_split, drawn, strict=True):
            samples[index] = dataclasses.replace(samples[index], split=split)
        logger.info("assigned splits at random (seed %d) to %d sample(s)", seed, len(drawn_split))
    output_types = ["gloss", "text"] if any(s.text for s in samples) else ["gloss"]
    metadata = imported_metadata(out_dir, name, output_types, f"imported from {csv_path.name} and .pose files")
    write_corpus(out_dir, metadata, samples, sources, overwrite=overwrite)
    return samples


# Progressive Transformers joint order: 8 upper-body joints (nose, neck, then
# two arms as shoulder, elbow, wrist) and two hands of 21 joints. The files do
# not name the joints, so sides are assigned from the data. x grows towards
# the image's right, and the arm of joints 2-4 lies on the image's right (the
# signer's left). The first hand attaches to joint 7 and moves most in
# 13 of the 15 PHOENIX-2014T samples checked, as a right-handed signer's
# dominant hand does. The neck has no MediaPipe counterpart and is dropped.
SKELS_BODY_JOINTS: tuple[str | None, ...] = (
    "NOSE", None, "LEFT_SHOULDER", "LEFT_ELBOW", "LEFT_WRIST", "RIGHT_SHOULDER", "RIGHT_ELBOW", "RIGHT_WRIST",
)
SKELS_JOINTS = 50  # 8 body + 21 + 21 hand joints
SKELS_VALUES_PER_FRAME = SKELS_JOINTS * 3 + 1  # x, y, z per joint plus a trailing counter


def skels_to_holistic(values: np.ndarray, hand_order: tuple[str, str] = ("right_hand", "left_hand")) -> np.ndarray:
    """Map one sample of Progressive Transformers values into the Holistic layout.

    Args:
        values: flat float array of F * 151 numbers (50 joints x 3 plus a counter per frame).
        hand_order: which Holistic hand the first and second 21 hand joints are.

    Returns:
        (F, 543, 3) float32; body points without a counterpart, and the face, are NaN.
        Coordinates are shifted by +0.5 in x and y so that the neck, the origin of
        the format, sits at the image centre. The scale is kept.
    """
    if values.size % SKELS_VALUES_PER_FRAME:
        raise ValueError(f"{values.size} values is not a multiple of {SKELS_VALUES_PER_FRAME} "
                         "(50 joints x 3 coordinates + 1 counter per frame)")
    frames = values.reshape(-1, SKELS_VALUES_PER_FRAME)[:, :-1].reshape(-1, SKELS_JOINTS, 3)  # (F, 50, 3)
    pose = np.full((frames.shape[0], holistic.N_POINTS, 3), np.nan, dtype=np.float32)
    for joint, point_name in enumerate(SKELS_BODY_JOINTS):
        if point_name is not None:
            pose[:, holistic.point_index("body", point_name)] = frames[:, joint]
    for hand_number, component in enumerate(hand_order):
        part = holistic.COMPONENTS[component]
        first = len(SKELS_BODY_JOINTS) + hand_number * holistic.N_HAND
        pose[:, part] = frames[:, first:first + holistic.N_HAND]
    pose[..., :2] += 0.5
    return pose


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def import_skels(
    skels_dir: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    fps: float = 25.0,
    overwrite: bool = False,
) -> list[Sample]:
    """Import a Progressive Transformers data folder (train/dev/test `.skels` with `.gloss`, `.text`, `.files`).

    Splits come from the file names (`dev` becomes `val`). Each `.skels` line
    contains 151 numbers per frame; the trailing counter of each frame is dropped.
    The four files of a split must have the same number of lines.
    """
    skels_dir, out_dir = Path(skels_dir), Path(out_dir)
    if not skels_dir.is_dir():
        raise CorpusError(f"folder {skels_dir} not found; pass the folder with train.skels, dev.skels and test.skels")
    samples: list[Sample] = []
    poses: dict[str, np.ndarray] = {}
    for split_name in ("train", "dev", "val", "test"):
        skels_path = skels_dir / f"{split_name}.skels"
        if not skels_path.is_file():
            continue
        split = canonical_split(split_name)
        texts = {}
        for suffix in ("gloss", "text", "files"):
            path = skels_dir / f"{split_name}.{suffix}"
            if not path.is_file():
                raise CorpusError(f"{path} not found; each .skels file needs matching .gloss, .text and .files files")
            texts[suffix] = _read_text(path, "file", "restore it").splitlines()
        skels_lines = _read_text(skels_path, "file", "restore it").splitlines()
        counts = {suffix: len(lines) for suffix, lines in texts.items()} | {"skels": len(skels_lines)}
        if len(set(counts.values())) != 1:
            raise CorpusError(f"{skels_dir}: the {split_name} files have different line counts {counts}; "
                              "each line of the four files must describe the same sample")
        for line, (skel_line, gloss, text, file_name) in enumerate(
                zip(skels_lines, texts["gloss"], texts["text"], texts["files"]), start=1):
            try:
                values = np.array(skel_line.split(), dtype=np.float32)
            except ValueError:
                bad = next(word for word in skel_line.split() if not _is_number(word))
                raise CorpusError(f"{skels_path}: line {line}: {bad!r} is not a number; every value of a "
                                  ".skels line must be a number") from None
            try:
                pose = skels_to_holistic(values)
            except ValueError as exc:
                raise CorpusError(f"{skels_path}: line {line}: {exc}") from None
            sample_id = normalize_text(file_name).replace("\\", "/")
            samples.append(Sample(id=sample_id, split=split, gloss=gloss, text=text, fps=fps,
                                  n_frames=int(pose.shape[0])))
            poses[sample_id] = pose
    if not samples:
        raise CorpusError(f"no <split>.skels file found in {skels_dir}; expected train.skels, dev.skels or test.skels")
    present = {s.split for s in samples}
    if not set(SPLITS) <= present:
        logger.warning("%s has no sample in split(s) %s", skels_dir, ", ".join(sorted(set(SPLITS) - present)))
    metadata = imported_metadata(out_dir, name, ["gloss", "text"],
                                 "Progressive Transformers skeleton files (50 joints in 3D, neck-centred)")
    write_corpus(out_dir, metadata, samples, poses, overwrite=overwrite)
    return samples
