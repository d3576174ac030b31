"""Corpus validation: every problem with its file, line or id, and the fix.

`collect_problems` runs all checks and is shared by `Corpus.open` (which raises
on errors) and `python -m signattention_core.corpus validate DIR` (which
prints the report and exits 0 only for a usable corpus).

Errors make a corpus unusable. They cover the files (missing or unreadable
metadata or annotations, non-UTF-8 or empty annotations), the rows (missing
fields, duplicate ids, unknown split names, empty glosses, invalid numbers or
gloss spans) and the poses (missing files, unreadable or wrongly shaped
arrays, samples with no detected frame, gloss spans past the last frame).
A point whose x or y is NaN or infinite counts as not detected.
Splits that break the promise of the `split_type` key in metadata.json are
errors too:

- `"signer_independent"`: no signer of val or test appears in train, and every
  sample names its signer;
- `"sentence_independent"`: no sentence group of val or test appears in train;
- `"random"` or no key: nothing is checked.

Warnings leave the corpus usable: pose files that no row uses, an id with both
a `.npy` and a `.pose` file, an `n_frames` value that differs from the pose
file, infinite coordinates, missing recommended metadata keys, and an empty
train split.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from signattention_core.corpus import poses as pose_io
from signattention_core.corpus.layout import (
    ANNOTATIONS_FILE,
    POSE_SUFFIXES,
    POSES_DIR,
    SPLITS,
    Problem,
    Sample,
    read_annotations,
    read_metadata,
)

logger = logging.getLogger(__name__)


@dataclass
class ValidationReport:
    """The outcome of validating one corpus folder."""

    root: Path  # the corpus folder
    n_samples: int  # rows parsed without errors
    problems: list[Problem] = field(default_factory=list)  # errors and warnings, in check order

    @property
    def errors(self) -> list[Problem]:
        """The problems that make the corpus unusable."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The problems that leave the corpus usable."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when the corpus has no error."""
        return not self.errors

    def format(self) -> str:
        """Render the report as text: one line per problem, then a summary line."""
        lines = [str(problem) for problem in self.problems]
        verdict = "usable" if self.ok else "NOT usable"
        lines.append(f"{self.root}: {self.n_samples} samples, {len(self.errors)} error(s), "
                     f"{len(self.warnings)} warning(s): corpus is {verdict}")
        return "\n".join(lines)


def validate_corpus(root: str | Path, check_poses: bool = True) -> ValidationReport:
    """Validate a corpus folder; by default every pose file is read once."""
    root = Path(root)
    if not root.is_dir():
        found = "is a file, not a folder" if root.exists() else "the folder was not found"
        problem = Problem("error", "missing-corpus", str(root), "", found,
                          "pass the folder that contains metadata.json and annotations.csv")
        return ValidationReport(root, 0, [problem])
    _, samples, problems = collect_problems(root, check_poses=check_poses)
    return ValidationReport(root, len(samples), problems)


def collect_problems(root: Path, check_poses: bool = False) -> tuple[dict, list[Sample], list[Problem]]:
    """Run every check on a corpus folder.

    Returns the metadata, the samples that parsed, and all problems. Pose
    contents are read only when `check_poses` is True; the presence of pose
    files is always checked.
    """
    metadata, problems = read_metadata(root)
    samples, _, annotation_problems = read_annotations(root / ANNOTATIONS_FILE)
    problems += annotation_problems
    # rows with errors are left out of `samples`, so their pose files would look unused
    rows_dropped = any(problem.severity == "error" for problem in annotation_problems)
    problems += check_pose_files(root, samples, report_extra=not rows_dropped)
    problems += check_splits(metadata, samples)
    if check_poses:
        problems += check_pose_contents(root, samples)
    return metadata, samples, problems


def _pose_file(root: Path, sample_id: str) -> Path | None:
    base = root / POSES_DIR / sample_id
    for suffix in POSE_SUFFIXES:
        path = base.with_name(base.name + suffix)
        if path.is_file():
            return path
    return None


def check_pose_files(root: Path, samples: list[Sample], report_extra: bool = True) -> list[Problem]:
    """Report samples without a pose file and, if `report_extra`, pose files without a sample."""
    problems: list[Problem] = []
    poses_dir = root / POSES_DIR
    on_disk: dict[str, list[str]] = defaultdict(list)
    if poses_dir.is_dir():
        for path in sorted(poses_dir.rglob("*")):
            if path.suffix in POSE_SUFFIXES and path.is_file():
                sample_id = path.relative_to(poses_dir).with_suffix("").as_posix()
                on_disk[sample_id].append(path.suffix)

    ids = {sample.id for sample in samples}
    for sample in samples:
        if sample.id not in on_disk:
            fix = f"add {POSES_DIR}/{sample.id}.npy or .pose, or remove the sample's row from {ANNOTATIONS_FILE}"
            suffix = Path(sample.id).suffix
            stem = sample.id.removesuffix(suffix)
            if suffix in POSE_SUFFIXES and suffix in on_disk.get(stem, []):
                fix = f"write the id without its file suffix, as {stem!r}, because {POSES_DIR}/{sample.id} exists"
            problems.append(Problem(
                "error", "missing-pose", f"{POSES_DIR}/{sample.id}.npy", f"id {sample.id}",
                f"sample {sample.id!r} has no pose file (.npy or .pose)", fix))
        elif len(on_disk[sample.id]) > 1:
            problems.append(Problem(
                "warning", "two-pose-files", f"{POSES_DIR}/{sample.id}.pose", f"id {sample.id}",
                f"sample {sample.id!r} has both a .npy and a .pose file; the .npy file is read",
                "delete the file you do not want read"))
    for sample_id, suffixes in on_disk.items():
        if report_extra and sample_id not in ids:
            problems.append(Problem(
                "warning", "extra-pose", f"{POSES_DIR}/{sample_id}{suffixes[0]}", "",
                f"pose file has no row in {ANNOTATIONS_FILE}",
                f"add a row with id {sample_id!r} or delete the file"))
    return problems


def check_splits(metadata: dict, samples: list[Sample]) -> list[Problem]:
    """Check split sizes and the promise of metadata.json's `split_type`."""
    problems: list[Problem] = []
    by_split: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    for sample in samples:
        by_split[sample.split].append(sample)
    if samples and not by_split["train"]:
        problems.append(Problem("warning", "empty-split", ANNOTATIONS_FILE, "",
                                "the train split has no samples, so this corpus can only be evaluated on",
                                "add rows with split train to train on it"))

    split_type = metadata.get("split_type")
    if split_type == "signer_independent":
        problems += _check_disjoint(by_split, "signer", lambda s: s.signer, split_type)
    elif split_type == "sentence_independent":
        problems += _check_disjoint(by_split, "sentence group", lambda s: s.sentence_group, split_type)
    return problems


def _check_disjoint(by_split: dict[str, list[Sample]], unit: str, key, split_type: str) -> list[Problem]:
    problems: list[Problem] = []
    if unit == "signer":
        unnamed = [s.id for split in SPLITS for s in by_split[split] if not s.signer]
        for sample_id in unnamed:
            problems.append(Problem(
                "error", "missing-signer", ANNOTATIONS_FILE, f"id {sample_id}",
                f"split_type is {split_type} but sample {sample_id!r} has no signer",
                "fill in the signer column, or change split_type in metadata.json"))

    train_ids: dict[str, str] = {}
    for sample in by_split["train"]:
        value = key(sample)
        if value:
            train_ids.setdefault(value, sample.id)
    for split in ("val", "test"):
        shared: dict[str, list[str]] = defaultdict(list)
        for sample in by_split[split]:
            value = key(sample)
            if value and value in train_ids:
                shared[value].append(sample.id)
        for value, ids in shared.items():
            problems.append(Problem(
                "error", "split-overlap", ANNOTATIONS_FILE, f"id {ids[0]}",
                f"split_type is {split_type} but {unit} {value!r} is in train (e.g. {train_ids[value]!r}) "
                f"and in {split} ({len(ids)} sample(s), e.g. {ids[0]!r})",
                f"move that {unit}'s samples into a single side of the split, "
                f"or set split_type to one the split meets"))
    return problems


def check_pose_contents(root: Path, samples: list[Sample]) -> list[Problem]:
    """Read every pose file once and report unreadable, empty or inconsistent ones."""
    problems: list[Problem] = []
    for sample in samples:
        path = _pose_file(root, sample.id)
        if path is None:
            continue
        label = path.relative_to(root).as_posix()
        location = f"id {sample.id}"
        try:
            pose = pose_io.read_pose(path, start_ms=_number(sample.extras.get("start")),
                                     end_ms=_number(sample.extras.get("end")))  # (F, 543, 3)
        except pose_io.PoseReadError as exc:
            # the problem names the file already
            message = str(exc).removeprefix(f"{path}: ")
            problems.append(Problem("error", "unreadable-pose", label, location, message,
                                    "re-export the pose file in the canonical layout or remove the sample"))
            continue

        n_frames = pose.shape[0]
        # x and y decide detection, as in the transforms, because 2D files have no z
        detected = np.isfinite(pose[..., :2]).all(axis=-1)  # (F, 543)
        if not detected.any():
            problems.append(Problem(
                "error", "no-detected-frame", label, location,
                f"none of the {n_frames} frames has a detected keypoint (all values are NaN or infinite)",
                "re-run pose estimation on the video or remove the sample"))
        n_infinite = int(np.isinf(pose).sum())
        if n_infinite and detected.any():
            problems.append(Problem(
                "warning", "non-finite-values", label, location,
                f"the pose has {n_infinite} infinite coordinate value(s), which are read as not detected",
                "write NaN for points that were not detected"))
        if sample.n_frames is not None and sample.n_frames != n_frames:
            problems.append(Problem(
                "warning", "n-frames-mismatch", label, location,
                f"{ANNOTATIONS_FILE} says n_frames {sample.n_frames} but the pose has {n_frames} frames",
                "correct n_frames or check that the pose file belongs to this sample"))
        last_end = max((end for _, end in sample.gloss_spans or ()), default=0)
        if last_end > n_frames:
            problems.append(Problem(
                "error", "span-past-end", label, location,
                f"gloss_spans end at frame {last_end} but the pose has {n_frames} frames",
                "correct gloss_spans to lie within the pose's frames"))
    return problems


def _number(value: str | None) -> float | None:
    if value is None or not str(value).strip():
        return None
    try:
        return float(value)
    except ValueError:
        return None
