"""Cached artifact loading for every page, and the run picker in the sidebar.

Pages read artifacts only through the functions here, which go through
`signattention_core.artifacts.Artifact`. Caches are keyed by the run folder
and the modification time of its run.json, so a re-extracted run is read
again. Cached tables are shared between sessions: pages must treat them as
read-only (derive with `assign`, never assign columns in place).

A missing, damaged or foreign artifact stops the page with an error message
that names the file and the fix, never a traceback.
"""

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app import aggregates, runs, state
from app.filters import gloss_keys
from signattention_core.artifacts import Artifact, ArtifactError, SampleAttention, gloss_consistency
from signattention_core.metrics import METRIC_NAMES

logger = logging.getLogger(__name__)

_RUN_KEY = "_current_run"


@dataclass(frozen=True)
class RunRef:
    """One opened run: its name, folder and the stamp that keys its caches."""

    name: str  # folder name under the artifacts root
    path: str  # absolute folder path
    stamp: int  # run.json modification time in nanoseconds
    run: dict  # contents of run.json
    n_samples: int  # samples in the run
    n_encoder_layers: int  # encoder layers of the model
    n_decoder_layers: int  # decoder layers of the model
    n_heads: int  # attention heads per layer
    split: str  # corpus split that was extracted


# ----------------------------------------------------------------------------
# run choice


def artifacts_root() -> Path:
    """Return the artifacts root for this server (see `runs.artifacts_root`)."""
    return runs.artifacts_root(sys.argv[1:])


def choose_run() -> RunRef:
    """Show the run picker in the sidebar, open the run, and remember it for the page.

    Stops the script with a message when there is no run, the URL names a
    folder outside the root or a missing run, or the artifact cannot be
    opened. The picker stays in the sidebar in every case but the first, so
    another run can be chosen.
    """
    root = artifacts_root()
    available = runs.list_runs(root)
    if not available:
        st.info(
            f"No runs found under {root}. Create one with `python -m signattention_core.demo` or "
            "`python extract.py`, or point the dashboard at another folder with "
            "`streamlit run app -- --artifacts DIR` or the SIGNATTENTION_ARTIFACTS environment variable."
        )
        st.stop()

    # a run named in the URL must be a folder directly under the root
    requested = state.read("run")
    problem = None
    if requested is not None and requested not in available:
        try:
            runs.run_path(root, requested)
        except runs.RunNameError as error:
            problem = f"Invalid run in the link: {error}."
        else:
            if Path(root, requested).is_dir():
                # a folder without run.json: opening it gives the artifact module's own message
                available = sorted({*available, requested})
            else:
                problem = f"Run {requested!r} not found under {root}. Available runs: {', '.join(available)}."
        if problem:
            logger.warning("rejected run %r from the URL: %s", requested, problem)
            state.forget("run")

    with st.sidebar:
        name = state.select("Run", available, "run", runs.choose_default_run(available),
                            help=f"Artifact folders under {root}")
        st.caption(f"Artifacts root: `{root}`")
    if problem:
        st.error(problem)
        st.stop()

    ref = open_run(root, name)
    st.session_state[_RUN_KEY] = ref
    with st.sidebar:
        st.caption(
            f"{ref.n_samples} samples · split {ref.split} · "
            f"{ref.n_encoder_layers} encoder and {ref.n_decoder_layers} decoder layers · {ref.n_heads} heads"
        )
    return ref


def open_run(root: Path, name: str) -> RunRef:
    """Open run `name` under `root`, or stop the page with the reason it cannot be opened."""
    try:
        path = runs.run_path(root, name)
    except runs.RunNameError as error:
        st.error(f"Invalid run: {error}.")
        st.stop()
    try:
        stamp = (path / runs.RUN_FILE).stat().st_mtime_ns
    except OSError:
        stamp = 0
    try:
        return _open_run(str(path), stamp)
    except ArtifactError as error:
        logger.warning("cannot open run %s: %s", path, error)
        st.error(f"Run **{name}** cannot be opened.\n\n{error}")
        st.stop()


@st.cache_resource(show_spinner="Opening run…", max_entries=16)
def _open_run(path: str, stamp: int) -> RunRef:
    artifact = _artifact(path, stamp)
    layers = artifact.samples(columns=["n_encoder_layers", "n_decoder_layers", "n_heads"]).head(1)
    if layers.empty:
        raise ArtifactError(f"{path}/samples.parquet contains no samples; extract the run again")
    first = layers.iloc[0]
    return RunRef(
        name=Path(path).name,
        path=path,
        stamp=stamp,
        run=artifact.run,
        n_samples=artifact.n_samples,
        n_encoder_layers=int(first["n_encoder_layers"]),
        n_decoder_layers=int(first["n_decoder_layers"]),
        n_heads=int(first["n_heads"]),
        split=str(artifact.run.get("split", "")),
    )


@st.cache_resource(show_spinner=False, max_entries=16)
def _artifact(path: str, stamp: int) -> Artifact:
    return Artifact.open(path)


def current_run() -> RunRef:
    """Return the run chosen in the sidebar for this script run."""
    return st.session_state[_RUN_KEY]


def guarded(function, *args):
    """Call a loader; an ArtifactError stops the page with its message instead of a traceback."""
    try:
        return function(*args)
    except ArtifactError as error:
        logger.warning("artifact read failed: %s", error)
        st.error(f"The artifact could not be read.\n\n{error}")
        st.stop()


# ----------------------------------------------------------------------------
# tables


def samples(ref: RunRef) -> pd.DataFrame:
    """Return one row per sample with `length`, `hypothesis_length`, and gloss match keys."""
    return guarded(_samples, ref.path, ref.stamp)


@st.cache_resource(show_spinner="Reading samples…", max_entries=16)
def _samples(path: str, stamp: int) -> pd.DataFrame:
    table = _artifact(path, stamp).samples()

    # a run has a few hundred distinct glosses, so each gets its match key once
    keys: dict[str, str] = {}
    for column in ("reference_tokens", "hypothesis_tokens"):
        for tokens in table[column]:
            for token in tokens:
                if token not in keys:
                    keys[token] = gloss_keys([token])[0]
    return table.assign(
        length=table["n_reference"].astype(np.int64),
        hypothesis_length=table["n_hypothesis"].astype(np.int64),
        reference_keys=[tuple(keys[token] for token in tokens) for tokens in table["reference_tokens"]],
        hypothesis_keys=[tuple(keys[token] for token in tokens) for tokens in table["hypothesis_tokens"]],
        signer=table["signer"].fillna("unknown"),
    )


def metrics(ref: RunRef, layer: int, head: int) -> pd.DataFrame:
    """Return the alignment metrics of one decoder layer and head (-1 = mean over heads), one row per sample."""
    return guarded(_metrics, ref.path, ref.stamp, layer, head)


@st.cache_resource(show_spinner="Reading alignment metrics…", max_entries=64)
def _metrics(path: str, stamp: int, layer: int, head: int) -> pd.DataFrame:
    return _artifact(path, stamp).metrics(layer=layer, head=head)


def contributions(ref: RunRef) -> pd.DataFrame:
    """Return norms, cross share and head-average row statistics per sample, decoder layer and step."""
    return guarded(_contributions, ref.path, ref.stamp)


@st.cache_resource(show_spinner="Reading contributions…", max_entries=16)
def _contributions(path: str, stamp: int) -> pd.DataFrame:
    return _artifact(path, stamp).contributions()


def step_profiles(ref: RunRef, layer: int, head: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Return `(keys, profiles)`: each step's cross-attention row on 100 time bins, (rows, T)."""
    return guarded(_step_profiles, ref.path, ref.stamp, layer, head)


@st.cache_resource(show_spinner="Reading attention profiles…", max_entries=8)
def _step_profiles(path: str, stamp: int, layer: int, head: int) -> tuple[pd.DataFrame, np.ndarray]:
    return _artifact(path, stamp).step_profiles(layer=layer, head=head)


def attention(ref: RunRef, sample_idx: int) -> SampleAttention:
    """Return every attention matrix of one sample."""
    return guarded(_attention, ref.path, ref.stamp, sample_idx)


@st.cache_resource(show_spinner=False, max_entries=64)
def _attention(path: str, stamp: int, sample_idx: int) -> SampleAttention:
    return _artifact(path, stamp).attention(sample_idx)


# ----------------------------------------------------------------------------
# aggregates


def mean_profiles(ref: RunRef, layer: int, head: int) -> pd.DataFrame:
    """Return the mean cross-attention per hypothesis length, step and time bin."""
    return guarded(_mean_profiles, ref.path, ref.stamp, layer, head)


@st.cache_resource(show_spinner="Averaging attention per sentence length…", max_entries=32)
def _mean_profiles(path: str, stamp: int, layer: int, head: int) -> pd.DataFrame:
    keys, profiles = _step_profiles(path, stamp, layer, head)
    lengths = _samples(path, stamp).set_index("sample_idx")["hypothesis_length"]
    return aggregates.mean_profiles_by_length(keys, profiles, lengths)


def metric_table(ref: RunRef, layer: int, head: int) -> pd.DataFrame:
    """Return one row per sample: its metrics joined with length, signer and exact match."""
    return guarded(_metric_table, ref.path, ref.stamp, layer, head)


@st.cache_resource(show_spinner=False, max_entries=32)
def _metric_table(path: str, stamp: int, layer: int, head: int) -> pd.DataFrame:
    values = _metrics(path, stamp, layer, head)
    info = _samples(path, stamp)[["sample_idx", "hypothesis_length", "signer", "exact_match", "split"]]
    table = values.merge(info, on="sample_idx", how="left")
    return table.assign(
        length=table["hypothesis_length"],
        exact_match=table["exact_match"].map({True: "exact", False: "not exact"}),
    )


def metric_intervals(ref: RunRef, layer: int, head: int, by: str | None) -> pd.DataFrame:
    """Return the mean and bootstrap 95% interval of every metric per hypothesis length (and `by` group)."""
    return guarded(_metric_intervals, ref.path, ref.stamp, layer, head, by)


@st.cache_resource(show_spinner="Bootstrapping intervals…", max_entries=64)
def _metric_intervals(path: str, stamp: int, layer: int, head: int, by: str | None) -> pd.DataFrame:
    return aggregates.metric_intervals(_metric_table(path, stamp, layer, head), METRIC_NAMES, by)


def uniform_reference(ref: RunRef) -> pd.DataFrame:
    """Return each metric's value for uniform attention per hypothesis length (see `aggregates.uniform_reference`)."""
    return guarded(_uniform_reference, ref.path, ref.stamp)


@st.cache_resource(show_spinner=False, max_entries=16)
def _uniform_reference(path: str, stamp: int) -> pd.DataFrame:
    samples = _samples(path, stamp)
    gold = samples[["gold_spans", "frame_index", "n_positions"]]
    return aggregates.uniform_reference(samples["hypothesis_length"], samples["n_positions"], gold)


def cross_share(ref: RunRef, layer: int) -> pd.DataFrame:
    """Return the mean cross share with 95% interval per hypothesis length and decoding step of one layer."""
    return guarded(_cross_share, ref.path, ref.stamp, layer)


@st.cache_resource(show_spinner="Averaging cross share…", max_entries=16)
def _cross_share(path: str, stamp: int, layer: int) -> pd.DataFrame:
    table = _contributions(path, stamp)
    table = table[table["layer"] == layer]
    lengths = _samples(path, stamp).set_index("sample_idx")["hypothesis_length"]
    return aggregates.cross_share_by_length(table, lengths)


def encoder_mean(ref: RunRef, layer: int, head: int, sample_count: int) -> tuple[np.ndarray, int]:
    """Return the mean encoder self-attention on 50 x 50 time bins over about `sample_count` samples, and the count."""
    return guarded(_encoder_mean, ref.path, ref.stamp, layer, head, sample_count)


@st.cache_resource(show_spinner="Averaging encoder self-attention…", max_entries=16)
def _encoder_mean(path: str, stamp: int, layer: int, head: int, sample_count: int) -> tuple[np.ndarray, int]:
    artifact = _artifact(path, stamp)
    blocks = aggregates.evenly_spaced_blocks(artifact.n_samples, sample_count)
    filters = [
        [("sample_idx", ">=", low), ("sample_idx", "<=", high), ("module", "=", "encoder_self"), ("layer", "=", layer)]
        for low, high in blocks
    ]
    columns = ["sample_idx", "head", "n_rows", "n_cols", "weights"]
    table = artifact.read_table("attention", columns=columns, filters=filters)
    if head >= 0:
        table = table.filter(np.asarray(table.column("head").to_numpy() == head))
    total = np.zeros((aggregates.ENCODER_BINS, aggregates.ENCODER_BINS))
    by_sample: dict[int, list[np.ndarray]] = {}
    sample_ids = table.column("sample_idx").to_numpy()
    sizes = table.column("n_rows").to_numpy()
    weights = table.column("weights")
    for row in range(table.num_rows):
        P = int(sizes[row])
        matrix = np.asarray(weights[row].values.to_numpy(zero_copy_only=False), dtype=np.float64).reshape(P, P)
        by_sample.setdefault(int(sample_ids[row]), []).append(matrix)
    for matrices in by_sample.values():
        total += aggregates.encoder_profile(np.mean(matrices, axis=0))  # mean over heads when head is -1
    count = len(by_sample)
    return (total / max(count, 1)), count


@st.cache_resource(show_spinner=False, max_entries=64)
def artifact_pose(path: str, stamp: int, sample_idx: int) -> np.ndarray | None:
    """Return the pose the artifact stores for one sample, (F, 543, 2), or None."""
    return _artifact(path, stamp).pose(sample_idx)


def consistency(ref: RunRef, layer: int, head: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (per gloss, per group) repetition consistency for one layer and head."""
    return guarded(_consistency, ref.path, ref.stamp, layer, head)


@st.cache_resource(show_spinner="Comparing repeated performances…", max_entries=32)
def _consistency(path: str, stamp: int, layer: int, head: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    keys, profiles = _step_profiles(path, stamp, layer, head)
    table = _samples(path, stamp)
    per_gloss = gloss_consistency(keys, profiles, table)
    return per_gloss, aggregates.group_summary(table, per_gloss)


def gloss_vocabulary(ref: RunRef) -> list[str]:
    """Return the distinct hypothesis glosses, sorted case- and accent-insensitively."""
    return guarded(_gloss_vocabulary, ref.path, ref.stamp)


@st.cache_resource(show_spinner=False, max_entries=16)
def _gloss_vocabulary(path: str, stamp: int) -> list[str]:
    tokens = [token for tokens in _samples(path, stamp)["hypothesis_tokens"] for token in tokens]
    return aggregates.sorted_glosses(tokens)


def occurrences(ref: RunRef, gloss: str, layer: int, head: int) -> pd.DataFrame:
    """Return every step that predicted `gloss`, with its attended span and the sample's facts."""
    return guarded(_occurrences, ref.path, ref.stamp, gloss, layer, head)


@st.cache_resource(show_spinner="Finding occurrences…", max_entries=64)
def _occurrences(path: str, stamp: int, gloss: str, layer: int, head: int) -> pd.DataFrame:
    keys, profiles = _step_profiles(path, stamp, layer, head)
    rows = np.flatnonzero((keys["token"] == gloss).to_numpy() & ~keys["is_final"].to_numpy())
    centroid, width = aggregates.profile_statistics(profiles[rows])
    found = keys.iloc[rows][["sample_idx", "step"]].reset_index(drop=True)
    info = _samples(path, stamp)[
        ["sample_idx", "id", "signer", "split", "hypothesis_length", "reference_tokens", "reference",
         "hypothesis", "exact_match", "n_frames", "fps"]
    ]
    table = found.merge(info, on="sample_idx", how="left")
    reference_at_step = [
        tokens[step] if step < len(tokens) else None
        for tokens, step in zip(table["reference_tokens"], table["step"], strict=True)
    ]
    table = table.drop(columns=["reference_tokens"]).assign(
        position=table["step"] + 1,
        relative_position=(table["step"] + 0.5) / table["hypothesis_length"],
        centroid=centroid,
        width=width,
        centroid_frame=centroid * table["n_frames"],
        centroid_seconds=centroid * table["n_frames"] / table["fps"],
        start=np.clip(centroid - width / 2, 0, 1),
        end=np.clip(centroid + width / 2, 0, 1),
        matches_reference=[token == gloss for token in reference_at_step],
    )
    return table
