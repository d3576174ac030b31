"""Computations behind the aggregate figures, on plain pandas and numpy.

Nothing here touches Streamlit, so the benchmark and the tests call these
functions directly; `data.py` wraps them in caches. Shape letters: L layers,
H heads, N decoding steps, P positions, T time bins (100 per profile).
"""

import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from signattention_core import metrics as alignment
from signattention_core.text import match_key
from signattention_core.tokenizer import BOS

# resamples of each bootstrap interval
BOOTSTRAP_RESAMPLES = 1000

# seed of every bootstrap, so a figure is the same on every load
BOOTSTRAP_SEED = 0

# time bins per axis of the mean encoder self-attention
ENCODER_BINS = 50


def minmax_rows(matrix: np.ndarray) -> np.ndarray:
    """Scale each row to 0-1 by its own minimum and maximum (display only); flat rows become 0."""
    matrix = np.asarray(matrix, dtype=np.float64)
    low = matrix.min(axis=-1, keepdims=True)
    span = matrix.max(axis=-1, keepdims=True) - low
    return np.divide(matrix - low, span, out=np.zeros_like(matrix), where=span > 0)


def select_head(weights: np.ndarray, head: int) -> np.ndarray:
    """Return one head of (H, R, C) weights, or their mean for head -1, as float64 (R, C)."""
    if head < 0:
        return weights.astype(np.float64).mean(axis=0)
    return weights[head].astype(np.float64)


@functools.lru_cache(maxsize=8)
def _resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """Return (resamples, n) indices drawn with replacement, the same for every call with these arguments."""
    rng = np.random.default_rng([seed, n])
    indices = rng.integers(0, n, size=(resamples, n), dtype=np.int32)
    indices.flags.writeable = False
    return indices


def bootstrap_interval(values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Return the percentile bootstrap 95% interval of the mean of `values` (NaN dropped).

    The resampling depends only on the seed and the number of values, so
    every metric of one sentence length shares the draws and a figure is the
    same on every load.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (np.nan, np.nan)
    if values.size == 1:
        return (float(values[0]), float(values[0]))
    draws = _resample_indices(values.size, resamples, seed)  # (resamples, n)
    means = values[draws].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def metric_intervals(table: pd.DataFrame, metric_names: Sequence[str], by: str | None) -> pd.DataFrame:
    """Return mean and bootstrap 95% interval of each metric per sentence length (and `by` group).

    `table` has one row per sample with `length`, the metric columns and the
    `by` column. Returns columns metric, length, [by], mean, low, high, n.
    """
    keys = ["length"] + ([by] if by else [])
    rows = []
    for metric in metric_names:
        for group_key, group in table.groupby(keys, sort=True, observed=True):
            values = group[metric].to_numpy(dtype=np.float64)
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                continue
            low, high = bootstrap_interval(finite)
            group_key = group_key if isinstance(group_key, tuple) else (group_key,)
            row = {"metric": metric, **dict(zip(keys, group_key, strict=True))}
            row.update(mean=float(finite.mean()), low=low, high=high, n=int(finite.size))
            rows.append(row)
    columns = ["metric", *keys, "mean", "low", "high", "n"]
    return pd.DataFrame(rows, columns=columns)


# metrics for which uniform attention on the median position count is a meaningful "no
# alignment" reference. Rank-based metrics are undefined or degenerate on the ties of a
# uniform matrix, and gold mass gets a per-sample reference instead.
UNIFORM_REFERENCE_METRICS: tuple[str, ...] = (
    "band_diagonality",
    "centroid_error",
    "normalized_entropy",
    "effective_width",
    "guided_attention_penalty",
    "focus_rate_scaled",
)


def uniform_reference(lengths: pd.Series, positions: pd.Series, gold: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return each metric's value for uniform attention, per sentence length.

    For every length N, the metric is computed on an N x T matrix of equal
    weights, with T the median number of encoder positions of the samples of
    that length. A model whose value sits at this reference attends no more
    to the right part of the video than one that spreads attention evenly.
    For example, band diagonality is about 1/N for uniform attention.

    Gold mass depends on each sample's spans. `gold`, when given, has one
    row per sample in the order of `lengths`, with `gold_spans`,
    `frame_index` and `n_positions`. The gold-mass reference of a length is
    then the mean over its samples of the gold mass of their own uniform matrix.

    Returns columns metric, length, uniform.
    """
    table = pd.DataFrame({"length": lengths.to_numpy(), "positions": positions.to_numpy()})
    rows = []
    if gold is not None:
        rows.extend(_uniform_gold_mass(table["length"].to_numpy(), gold))
    for length, group in table.groupby("length", sort=True):
        n_rows = int(length)
        n_positions = int(round(float(group["positions"].median())))
        if n_rows < 1 or n_positions < 1:
            continue
        uniform = np.full((n_rows, n_positions), 1.0 / n_positions)  # (N, T)
        values = alignment.alignment_metrics(uniform)
        for metric in UNIFORM_REFERENCE_METRICS:
            rows.append({"metric": metric, "length": n_rows, "uniform": float(values[metric])})
    return pd.DataFrame(rows, columns=["metric", "length", "uniform"])


def _uniform_gold_mass(lengths: np.ndarray, gold: pd.DataFrame) -> list[dict]:
    """Return the mean uniform-attention gold mass per length, over samples that have gold spans."""
    values: dict[int, list[float]] = {}
    for length, spans, frame_index, n_positions in zip(
        lengths, gold["gold_spans"], gold["frame_index"], gold["n_positions"], strict=True
    ):
        if spans is None or len(spans) == 0 or int(length) < 1 or int(n_positions) < 1:
            continue

        # a uniform row puts 1/T on each position, so its gold mass is the share of positions in
        # the span. frame_index increases, so two binary searches count them as metrics.gold_mass does.
        rows = min(int(length), len(spans))
        bounds = np.asarray([list(span) for span in spans[:rows]], dtype=np.int64)  # (rows, 2)
        frames = np.asarray(frame_index)
        inside = np.searchsorted(frames, bounds[:, 1], "left") - np.searchsorted(frames, bounds[:, 0], "left")
        values.setdefault(int(length), []).append(float((inside / int(n_positions)).mean()))
    return [
        {"metric": "gold_mass", "length": length, "uniform": float(np.mean(found))}
        for length, found in sorted(values.items())
    ]


def mean_profiles_by_length(keys: pd.DataFrame, profiles: np.ndarray, lengths: pd.Series) -> pd.DataFrame:
    """Average the step profiles of all samples with the same hypothesis length.

    `keys` (one row per step, with sample_idx and step) matches the (rows, T)
    `profiles`; `lengths` maps sample_idx to hypothesis length. Returns one
    row per length, step and bin: length, step, bin, time (bin centre, 0-1),
    weight, n (samples averaged).
    """
    length = keys["sample_idx"].map(lengths).to_numpy(dtype=np.int64)
    step = keys["step"].to_numpy(dtype=np.int64)
    bins = profiles.shape[1]

    # sort the rows by (length, step) and sum each run of equal keys
    order = np.lexsort((step, length))
    group_key = np.stack([length[order], step[order]], axis=1)  # (rows, 2)
    starts = np.flatnonzero(np.r_[True, np.any(group_key[1:] != group_key[:-1], axis=1)])
    sums = np.add.reduceat(profiles[order].astype(np.float64), starts, axis=0)  # (groups, T)
    counts = np.diff(np.r_[starts, len(order)])  # (groups,)
    means = sums / counts[:, None]

    return pd.DataFrame(
        {
            "length": np.repeat(group_key[starts, 0], bins),
            "step": np.repeat(group_key[starts, 1], bins),
            "bin": np.tile(np.arange(bins), len(starts)),
            "time": np.tile((np.arange(bins) + 0.5) / bins, len(starts)),
            "weight": means.ravel(),
            "n": np.repeat(counts, bins),
        }
    )


def cross_share_by_length(contributions: pd.DataFrame, lengths: pd.Series) -> pd.DataFrame:
    """Return the mean cross share and its 95% interval per hypothesis length and step."""
    table = contributions.assign(length=contributions["sample_idx"].map(lengths))
    rows = []
    for (length, step), group in table.groupby(["length", "step"], sort=True):
        values = group["cross_share"].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        low, high = bootstrap_interval(values)
        is_final = bool(group["is_final"].iloc[0])
        rows.append({"length": int(length), "step": int(step), "is_final": is_final, "mean": float(values.mean()),
                     "low": low, "high": high, "n": int(values.size)})
    return pd.DataFrame(rows, columns=["length", "step", "is_final", "mean", "low", "high", "n"])


def encoder_profile(matrix: np.ndarray, bins: int = ENCODER_BINS) -> np.ndarray:
    """Resample a (P, P) self-attention matrix onto (bins, bins) equal time bins of the video.

    Columns keep each row's mass (as `metrics.resample_rows`); rows are
    averaged over the positions that overlap each bin, so a row bin is still
    a distribution.
    """
    P = matrix.shape[0]
    columns = alignment.resample_rows(matrix, bins)  # (P, bins)
    overlap = alignment.resample_rows(np.eye(P), bins)  # (P, bins): share of position p in bin b, times P / bins
    weights = overlap / np.maximum(overlap.sum(axis=0, keepdims=True), 1e-12)
    return weights.T @ columns  # (bins, bins)


def evenly_spaced_blocks(n_samples: int, sample_count: int, blocks: int = 10) -> list[tuple[int, int]]:
    """Return up to `blocks` inclusive sample_idx ranges, evenly spread, covering about `sample_count` samples."""
    if sample_count >= n_samples:
        return [(0, n_samples - 1)]
    blocks = max(1, min(blocks, sample_count))
    size = max(1, sample_count // blocks)
    starts = np.linspace(0, n_samples - size, blocks).astype(int)
    return [(int(start), int(start + size - 1)) for start in np.unique(starts)]


def profile_statistics(profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the centroid (0-1) and effective width (exp(entropy) / T) of each (rows, T) profile."""
    profiles = np.asarray(profiles, dtype=np.float64)
    T = profiles.shape[1]
    mass = profiles / np.maximum(profiles.sum(axis=1, keepdims=True), 1e-12)
    centres = (np.arange(T) + 0.5) / T
    centroid = mass @ centres
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(mass > 0, mass * np.log(mass), 0.0).sum(axis=1)
    return centroid, np.exp(entropy) / T


def reference_steps(keys: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """Pair every gloss step with the reference gloss at the same index.

    `keys` has one row per step (sample_idx, step, token, is_final), as from
    `Artifact.step_profiles`. Returns the steps with `step < n_reference`
    and without the final step, plus the columns row (index into the
    profiles), sentence_group, reference_gloss and matches (the prediction
    equals the reference gloss).
    """
    info = samples.set_index("sample_idx")[["sentence_group", "reference_tokens"]]
    joined = keys.join(info, on="sample_idx").assign(row=np.arange(len(keys)))
    reference_gloss = [
        tokens[step] if step < len(tokens) else None
        for tokens, step in zip(joined["reference_tokens"], joined["step"], strict=True)
    ]
    joined = joined.assign(reference_gloss=reference_gloss).drop(columns=["reference_tokens"])
    joined = joined[joined["reference_gloss"].notna().to_numpy() & ~joined["is_final"].to_numpy()]
    return joined.assign(matches=(joined["token"] == joined["reference_gloss"]).to_numpy())


def group_summary(samples: pd.DataFrame, per_gloss: pd.DataFrame) -> pd.DataFrame:
    """Return one row per sentence group: reference, size, signers, exact share, consistency.

    A group's consistency is the mean over its glosses; NaN when no gloss was
    predicted correctly by two or more performances.
    """
    consistency = per_gloss.groupby("sentence_group")["consistency"].mean()
    grouped = samples.groupby("sentence_group", sort=False)
    table = pd.DataFrame(
        {
            "reference": grouped["reference"].first(),
            "performances": grouped.size(),
            "signers": grouped["signer"].nunique(),
            "exact_share": grouped["exact_match"].mean(),
        }
    )
    table["consistency"] = consistency.reindex(table.index)
    table.index.name = "sentence_group"
    return table.reset_index()


def sorted_glosses(tokens: Sequence[str]) -> list[str]:
    """Return distinct glosses sorted case- and accent-insensitively (Greek aware)."""
    return sorted(set(tokens), key=lambda token: (match_key(token), token))


def decoder_input_labels(tokens: Sequence[str]) -> list[str]:
    """Label the decoder's input positions, which are the columns of decoder self-attention.

    The teacher-forced decoder reads `[BOS, y_0 .. y_{n-1}]` while it predicts
    `tokens`, which is `[y_0 .. y_{n-1}, EOS]`. Column 0 is therefore BOS, and
    column `j` is the gloss of 1-based step `j`, with that step's label.
    """
    previous = [f"{step + 1}. {token}" for step, token in enumerate(tokens[:-1])]
    return [f"0. {BOS}", *previous]
