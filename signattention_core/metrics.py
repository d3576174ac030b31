"""Alignment metrics of one cross-attention matrix, on plain numpy arrays.

Every function takes `A`, an (N, T) matrix whose rows are output glosses and
whose columns are encoder positions with padding removed. Each row is one
softmax distribution, so it sums to 1. The caller drops the EOS row and the
padding first. Positions sit at the centres of equal time slices,
`u_t = (t + 0.5) / T`, and gloss `i` ideally sits at `(i + 0.5) / N`, so a
perfect diagonal puts row `i` on the `i`-th of `N` equal slices of the video.

The functions ending in `_stack` take a (K, N, T) stack of such matrices
and return per-matrix values equal to those of the (N, T) functions, in
fewer numpy calls.

Compute on raw softmax weights: min-max scaling is for display only.
This module imports numpy only, because the dashboard imports it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# number of time bins of a time-normalised row (`resample_rows`)
PROFILE_BINS = 100

# rows must sum to 1 within this tolerance to count as attention distributions
ROW_SUM_TOLERANCE = 1e-3

# centroids closer than this count as equal in the rank-based metrics, so that
# float rounding on a flat matrix does not invent an order
CENTROID_TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class MetricInfo:
    """How to label and read one alignment metric."""

    label: str  # short label for tables and axes
    value_range: str  # range of possible values, as text
    reading: str  # one sentence on how to read the value
    rank_based: bool  # True when the metric needs at least 2 glosses


METRICS: dict[str, MetricInfo] = {
    "band_diagonality": MetricInfo(
        "band diagonality",
        "0-1",
        "Share of each gloss's attention within half a gloss slot of the ideal diagonal; higher is more diagonal.",
        False,
    ),
    "centroid_spearman": MetricInfo(
        "centroid Spearman rho",
        "-1..1",
        "Rank correlation of gloss order and attention centroid; 1 means attention moves forward with every gloss.",
        True,
    ),
    "centroid_monotonic_share": MetricInfo(
        "monotonic step share",
        "0-1",
        "Share of consecutive glosses whose attention centroid does not move backwards.",
        True,
    ),
    "centroid_error": MetricInfo(
        "centroid error",
        "0-1",
        "Mean distance of the attention centroid from the ideal diagonal, as a fraction of the video.",
        False,
    ),
    "normalized_entropy": MetricInfo(
        "normalised entropy",
        "0-1",
        "Spread of each gloss's attention: 0 is a single position, 1 is uniform over the video.",
        False,
    ),
    "effective_width": MetricInfo(
        "effective width",
        "1/T..1",
        "Share of the video a gloss attends to, exp(entropy) / T, averaged over glosses.",
        False,
    ),
    "guided_attention_penalty": MetricInfo(
        "guided-attention penalty",
        "0-1",
        "Expected off-diagonal penalty of each gloss's attention (Tachibana et al. 2018, g = 0.2); lower is more diagonal.",
        False,
    ),
    "focus_rate_scaled": MetricInfo(
        "focus rate x T/N",
        "1/N..T/N",
        "Mean row maximum times T/N; 1 when each gloss spreads evenly over its own 1/N of the video. Confidence, not diagonality.",
        False,
    ),
    "gold_mass": MetricInfo(
        "gold mass",
        "0-1",
        "Share of each gloss's attention inside its annotated frame span; only where gold spans exist.",
        False,
    ),
}

# names of the per-matrix metrics, in the order of `alignment_metrics`
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)


def check_attention(A: np.ndarray, name: str = "attention matrix") -> np.ndarray:
    """Validate an (N, T) attention matrix and return it as float64.

    Raises:
        ValueError: when `A` is not 2-D, is empty, contains NaN, infinite or
            negative values, or has a row that does not sum to 1 (a padding
            row, or padding columns that still carry weight).
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, T), got shape {A.shape}")
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise ValueError(
            f"{name} is empty (shape {A.shape}); alignment metrics need at least one gloss and one position"
        )
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if A.min() < 0:
        raise ValueError(
            f"{name} contains negative weights (minimum {A.min():.3g}); pass softmax weights"
        )

    sums = A.sum(axis=1)  # (N,)
    bad = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_TOLERANCE)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name} row {i} sums to {sums[i]:.6g}, not 1 ({bad.size} such rows); "
            "remove padding rows and columns and the EOS row before computing alignment metrics"
        )
    return A


def position_centres(T: int) -> np.ndarray:
    """Return `u_t = (t + 0.5) / T`, the time of each of T positions as a fraction of the video."""
    return (np.arange(T) + 0.5) / T


def diagonal_targets(N: int) -> np.ndarray:
    """Return `(i + 0.5) / N`, the ideal time of each of N glosses as a fraction of the video."""
    return (np.arange(N) + 0.5) / N


def band_diagonality(A: np.ndarray, b: float | None = None) -> float:
    """Return the mean share of each row's mass within `b` of the ideal diagonal.

    Position `t` counts for row `i` when `|u_t - (i + 0.5) / N| <= b`; the
    default `b = 0.5 / N` is half of one gloss's slot.
    """
    return _band_diagonality(check_attention(A), b)


def _band_diagonality(A: np.ndarray, b: float | None = None) -> float:
    inside = _band_mask(*A.shape, b)  # (N, T)
    return float((A * inside).sum(axis=1).mean())


def _band_mask(N: int, T: int, b: float | None) -> np.ndarray:
    """Return the (N, T) mask of positions within `b` (default half a gloss slot) of each row's ideal time."""
    if b is None:
        b = 0.5 / N
    if b < 0:
        raise ValueError(f"band half-width b must be >= 0, got {b}")

    distance = np.abs(position_centres(T)[None, :] - diagonal_targets(N)[:, None])  # (N, T)

    # the small slack keeps positions exactly on the band edge inside despite float rounding
    return distance <= b + 1e-12


def centroids(A: np.ndarray) -> np.ndarray:
    """Return each row's centroid `c_i = sum_t u_t A_it`, in fractions of the video, shape (N,)."""
    return _centroids(check_attention(A))


def _centroids(A: np.ndarray) -> np.ndarray:
    return A @ position_centres(A.shape[1])


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Return 1-based ranks of `values`, giving tied values their mean rank."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    ranks = np.empty(values.size, dtype=np.float64)

    start = 0
    while start < values.size:
        end = start
        while end + 1 < values.size and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def centroid_monotonicity(A: np.ndarray) -> tuple[float, float]:
    """Return the Spearman rho of `(i, c_i)` and the share of steps with `c_{i+1} >= c_i`.

    Both are NaN for fewer than 2 glosses. Rho is also NaN when every centroid
    is equal (a flat matrix), because a rank correlation with a constant is
    undefined. Centroids within `CENTROID_TIE_TOLERANCE` count as equal.
    """
    return _centroid_monotonicity(_centroids(check_attention(A)))


def _centroid_monotonicity(c: np.ndarray) -> tuple[float, float]:
    if c.size < 2:
        return math.nan, math.nan

    # snap float noise to ties before ranking and comparing
    c = np.round(c / CENTROID_TIE_TOLERANCE) * CENTROID_TIE_TOLERANCE
    share = float(np.mean(c[1:] >= c[:-1]))

    rank_c = _average_ranks(c)
    rank_i = np.arange(1, c.size + 1, dtype=np.float64)
    if np.all(rank_c == rank_c[0]):
        return math.nan, share
    rank_i -= rank_i.mean()
    rank_c -= rank_c.mean()
    rho = float((rank_i @ rank_c) / math.sqrt((rank_i @ rank_i) * (rank_c @ rank_c)))
    return rho, share


def centroid_error(A: np.ndarray) -> float:
    """Return the mean `|c_i - (i + 0.5) / N|`, in fractions of the video."""
    return _centroid_error(_centroids(check_attention(A)))


def _centroid_error(c: np.ndarray) -> float:
    return float(np.mean(np.abs(c - diagonal_targets(c.size))))


def row_entropy(A: np.ndarray) -> np.ndarray:
    """Return each row's entropy in nats, with `0 log 0 = 0`, shape (N,)."""
    return _row_entropy(check_attention(A))


def _row_entropy(A: np.ndarray) -> np.ndarray:
    logs = np.log(np.where(A > 0, A, 1.0))
    return -(A * logs).sum(axis=1)


def row_normalized_entropy(A: np.ndarray) -> np.ndarray:
    """Return each row's entropy divided by `log T`, shape (N,); NaN when T = 1."""
    A = check_attention(A)
    return _normalize_entropy(_row_entropy(A), A.shape[1])


def _normalize_entropy(H: np.ndarray, T: int) -> np.ndarray:
    if T == 1:
        return np.full(H.shape, math.nan)
    return H / math.log(T)


def row_effective_width(A: np.ndarray) -> np.ndarray:
    """Return each row's `exp(H) / T`, the share of positions it effectively covers, shape (N,)."""
    A = check_attention(A)
    return np.exp(_row_entropy(A)) / A.shape[1]


def normalized_entropy(A: np.ndarray) -> float:
    """Return the mean over rows of `-sum_t A_it log A_it / log T`; NaN when T = 1."""
    return float(np.mean(row_normalized_entropy(A)))


def effective_width(A: np.ndarray) -> float:
    """Return the mean over rows of `exp(H_i) / T`, between 1/T and 1."""
    return float(np.mean(row_effective_width(A)))


def guided_attention_penalty(A: np.ndarray, g: float = 0.2) -> float:
    """Return the expected guided-attention penalty of a row, averaged over rows.

    The penalty weight is `W_it = 1 - exp(-(d_it)^2 / (2 g^2))` (Tachibana et
    al. 2018) with `d_it = (i + 0.5) / N - u_t`. Centred coordinates give a
    one-gloss matrix its ideal at the middle of the video, and for N = T they
    equal the paper's `i/N - t/T`. The sum runs over positions and the mean
    over rows, which is the paper's mean over all N x T cells times T. The
    value therefore stays in 0-1 and compares across video lengths.
    """
    return _guided_attention_penalty(check_attention(A), g)


def _guided_attention_penalty(A: np.ndarray, g: float = 0.2) -> float:
    W = _penalty_weights(*A.shape, g)  # (N, T)
    return float((A * W).sum(axis=1).mean())


def _penalty_weights(N: int, T: int, g: float) -> np.ndarray:
    """Return the (N, T) guided-attention penalty weights `W_it`."""
    if g <= 0:
        raise ValueError(f"guided-attention width g must be > 0, got {g}")
    d = diagonal_targets(N)[:, None] - position_centres(T)[None, :]  # (N, T)
    return 1.0 - np.exp(-(d**2) / (2 * g**2))


def focus_rate_scaled(A: np.ndarray) -> float:
    """Return the mean row maximum (FastSpeech's focus rate) times T/N.

    The value is 1 when every gloss spreads evenly over its own 1/N of the
    positions, 1/N for a uniform matrix and T/N when every row is one spike.
    """
    return _focus_rate_scaled(check_attention(A))


def _focus_rate_scaled(A: np.ndarray) -> float:
    N, T = A.shape
    return float(A.max(axis=1).mean() * T / N)


def gold_mass(
    A: np.ndarray,
    gold_spans: Sequence[Sequence[int]],
    frame_index: np.ndarray | None = None,
) -> float:
    """Return the mean share of row `i`'s mass inside gloss `i`'s gold span.

    Args:
        A: (N, T) attention matrix.
        gold_spans: one `[start, end)` span per gloss. Spans are raw frame
            indices when `frame_index` is given, else position indices.
        frame_index: (T,) raw frame index of each position. Position `t`
            lies in a span when `start <= frame_index[t] < end`.

    Rows and spans pair by index, `i < min(N, len(gold_spans))`, so a
    hypothesis longer or shorter than the reference is scored on the glosses
    both have. A span that covers no sampled position gives that row 0.
    Returns NaN when there are no spans.
    """
    return _gold_mass(check_attention(A), gold_spans, frame_index)


def _gold_mass(
    A: np.ndarray, gold_spans: Sequence[Sequence[int]], frame_index: np.ndarray | None
) -> float:
    inside = _gold_inside(A.shape, gold_spans, frame_index)  # (n, T)
    if inside is None:
        return math.nan
    masses = (A[: inside.shape[0]] * inside).sum(axis=1)
    return float(masses.mean())


def _gold_inside(
    shape: tuple[int, ...], gold_spans: Sequence[Sequence[int]], frame_index: np.ndarray | None
) -> np.ndarray | None:
    """Return the (n, T) mask of positions inside gold span i, n = min(N, spans), or None when n is 0."""
    N, T = shape[-2:]
    if frame_index is None:
        times = np.arange(T)
    else:
        times = np.asarray(frame_index)
        if times.shape != (T,):
            raise ValueError(
                f"frame_index has shape {times.shape}, expected ({T},) to match the attention matrix"
            )

    n = min(N, len(gold_spans))
    if n == 0:
        return None

    spans = np.asarray([tuple(span) for span in gold_spans[:n]], dtype=np.int64).reshape(n, 2)
    backwards = np.flatnonzero(spans[:, 1] < spans[:, 0])
    if backwards.size:
        i = int(backwards[0])
        raise ValueError(
            f"gold span {i} is [{spans[i, 0]}, {spans[i, 1]}), whose end lies before its start"
        )
    return (times[None, :] >= spans[:, :1]) & (times[None, :] < spans[:, 1:])  # (n, T)


@functools.lru_cache(maxsize=256)
def _bin_overlap(T: int, bins: int) -> np.ndarray:
    """Return the (T, bins) share of each position's time slice that falls in each bin (read-only, cached)."""
    position_edges = np.arange(T + 1) / T
    bin_edges = np.arange(bins + 1) / bins
    lo = np.maximum(position_edges[:-1, None], bin_edges[None, :-1])  # (T, bins)
    hi = np.minimum(position_edges[1:, None], bin_edges[None, 1:])  # (T, bins)
    overlap = np.clip(hi - lo, 0.0, None) * T
    overlap.flags.writeable = False
    return overlap


def resample_rows(A: np.ndarray, bins: int = PROFILE_BINS) -> np.ndarray:
    """Resample each row onto `bins` equal time bins of the video, preserving mass.

    Position `t` covers the time slice `[t/T, (t+1)/T)` and its weight is
    shared among the bins in proportion to overlap, so each output row keeps
    its sum. Rows need not sum to 1 here, so the EOS row and single heads can
    be resampled too. Returns an (N, bins) float64 array.
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[1] == 0:
        raise ValueError(
            f"resample_rows expects a 2-D (N, T) matrix with T >= 1, got shape {A.shape}"
        )
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    return A @ _bin_overlap(A.shape[1], bins)  # (N, bins)


def wasserstein_1(p: np.ndarray, q: np.ndarray) -> float:
    """Return the Wasserstein-1 distance of two histograms on equal bins of [0, 1].

    Both are normalised to sum 1 first. Mass moved from bin j to bin k costs
    `|j - k| / bins`, so the result is a fraction of the video.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.ndim != 1 or p.shape != q.shape:
        raise ValueError(
            f"histograms must be 1-D of equal length, got shapes {p.shape} and {q.shape}"
        )
    for name, h in (("first", p), ("second", q)):
        if not np.all(np.isfinite(h)) or h.min() < 0 or h.sum() <= 0:
            raise ValueError(f"{name} histogram must be finite, non-negative and not all zero")
    cdf_gap = np.cumsum(p / p.sum()) - np.cumsum(q / q.sum())
    return float(np.abs(cdf_gap).sum() / p.size)


def repetition_consistency(rows_by_performance: Sequence[np.ndarray]) -> float:
    """Return the mean pairwise Wasserstein-1 distance between rows of the same gloss.

    Args:
        rows_by_performance: one time-normalised row (`resample_rows` output,
            shape (bins,)) per performance of the gloss in a sentence group.

    Returns the average temporal shift between performances as a fraction of
    the video: 0 when all performances attend the same moments. NaN for fewer
    than 2 performances.
    """
    if len(rows_by_performance) < 2:
        return math.nan
    rows = np.stack([np.asarray(r, dtype=np.float64) for r in rows_by_performance])  # (n, bins)
    if rows.ndim != 2:
        raise ValueError(f"each performance needs one 1-D row of bins, got rows of shape {rows.shape[1:]}")
    sums = rows.sum(axis=1)
    if not np.all(np.isfinite(rows)) or rows.min() < 0 or np.any(sums <= 0):
        raise ValueError("every row must be finite, non-negative and not all zero")

    # W1 on equal bins is the summed CDF gap over the bin count, for all pairs at once
    n, bins = rows.shape
    cdf = np.cumsum(rows / sums[:, None], axis=1)  # (n, bins)
    gaps = np.abs(cdf[:, None, :] - cdf[None, :, :]).sum(axis=2) / bins  # (n, n)
    return float(gaps[np.triu_indices(n, k=1)].mean())


def alignment_metrics(
    A: np.ndarray,
    gold_spans: Sequence[Sequence[int]] | None = None,
    frame_index: np.ndarray | None = None,
) -> dict[str, float]:
    """Compute every metric of `METRIC_NAMES` on one (N, T) matrix without its EOS row.

    Rank-based metrics are NaN for fewer than 2 glosses, and gold mass is NaN
    without gold spans. `gold_spans` and `frame_index` are as in `gold_mass`.
    """
    A = check_attention(A)
    c = _centroids(A)
    rho, share = _centroid_monotonicity(c)
    H = _row_entropy(A)
    return {
        "band_diagonality": _band_diagonality(A),
        "centroid_spearman": rho,
        "centroid_monotonic_share": share,
        "centroid_error": _centroid_error(c),
        "normalized_entropy": float(np.mean(_normalize_entropy(H, A.shape[1]))),
        "effective_width": float(np.mean(np.exp(H) / A.shape[1])),
        "guided_attention_penalty": _guided_attention_penalty(A),
        "focus_rate_scaled": _focus_rate_scaled(A),
        "gold_mass": math.nan if gold_spans is None else _gold_mass(A, gold_spans, frame_index),
    }


def check_attention_stack(A: np.ndarray, name: str = "attention matrices") -> np.ndarray:
    """Validate a (K, N, T) stack of attention matrices and return it as float64.

    Applies the checks of `check_attention` to every matrix at once, and an
    error names the first faulty matrix and row.
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 3:
        raise ValueError(f"{name} must be 3-D (K, N, T), got shape {A.shape}")
    if 0 in A.shape:
        raise ValueError(
            f"{name} have shape {A.shape}; alignment metrics need at least one matrix, gloss and position"
        )
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} contain NaN or infinite values")
    if A.min() < 0:
        raise ValueError(
            f"{name} contain negative weights (minimum {A.min():.3g}); pass softmax weights"
        )

    sums = A.sum(axis=-1)  # (K, N)
    bad = np.argwhere(np.abs(sums - 1.0) > ROW_SUM_TOLERANCE)
    if bad.size:
        k, i = (int(value) for value in bad[0])
        raise ValueError(
            f"{name}: matrix {k} row {i} sums to {sums[k, i]:.6g}, not 1 ({len(bad)} such rows); "
            "remove padding rows and columns and the EOS row before computing alignment metrics"
        )
    return A


def row_statistics_stack(A: np.ndarray) -> dict[str, np.ndarray]:
    """Return per-row statistics of each matrix of a (K, N, T) stack, validated once.

    Returns (K, N) float64 arrays: "centroid" (`centroids`), "normalized_entropy"
    (`row_normalized_entropy`, NaN when T = 1) and "effective_width"
    (`row_effective_width`). Row k of each equals the per-matrix function on `A[k]`.
    """
    A = check_attention_stack(A)
    T = A.shape[-1]
    H = _row_entropy_stack(A)  # (K, N)
    return {
        "centroid": A @ position_centres(T),
        "normalized_entropy": _normalize_entropy(H, T),
        "effective_width": np.exp(H) / T,
    }


def _row_entropy_stack(A: np.ndarray) -> np.ndarray:
    logs = np.log(np.where(A > 0, A, 1.0))
    return -(A * logs).sum(axis=-1)


def _centroid_monotonicity_stack(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return `_centroid_monotonicity` of each row of (K, N) centroids as two (K,) arrays."""
    K, N = c.shape
    if N < 2:
        return np.full(K, math.nan), np.full(K, math.nan)

    c = np.round(c / CENTROID_TIE_TOLERANCE) * CENTROID_TIE_TOLERANCE
    share = np.mean(c[:, 1:] >= c[:, :-1], axis=-1)  # (K,)

    # the mean rank of a tie group is (count below) + (group size + 1) / 2, as in _average_ranks
    below = (c[:, None, :] < c[:, :, None]).sum(axis=-1)  # (K, N)
    equal = (c[:, None, :] == c[:, :, None]).sum(axis=-1)  # (K, N)
    rank_c = below + (equal + 1) / 2  # (K, N)
    flat = np.all(rank_c == rank_c[:, :1], axis=-1)  # (K,)

    # ranks are multiples of 1/2 and N is small, so these sums are exact in any order
    rank_i = np.arange(1, N + 1, dtype=np.float64)
    rank_i -= rank_i.mean()
    rank_c -= rank_c.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rank_c @ rank_i) / np.sqrt((rank_i @ rank_i) * np.einsum("kn,kn->k", rank_c, rank_c))
    return np.where(flat, math.nan, rho), share


def alignment_metrics_stack(
    A: np.ndarray,
    gold_spans: Sequence[Sequence[int]] | None = None,
    frame_index: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Compute every metric of `METRIC_NAMES` on each matrix of a (K, N, T) stack.

    Returns a (K,) float64 array per metric whose entry k equals
    `alignment_metrics(A[k], gold_spans, frame_index)`, computed with the same
    formulas on the whole stack at once. The artifact writer passes every head
    and the head mean of every decoder layer of one sample in one call.
    """
    A = check_attention_stack(A)
    K, N, T = A.shape
    c = A @ position_centres(T)  # (K, N)
    rho, share = _centroid_monotonicity_stack(c)
    H = _row_entropy_stack(A)  # (K, N)
    if T == 1:
        normalized = np.full(K, math.nan)
    else:
        normalized = np.mean(H / math.log(T), axis=-1)

    inside_gold = None if gold_spans is None else _gold_inside(A.shape, gold_spans, frame_index)  # (n, T)
    if inside_gold is None:
        gold = np.full(K, math.nan)
    else:
        gold = (A[:, : inside_gold.shape[0]] * inside_gold).sum(axis=-1).mean(axis=-1)
    return {
        "band_diagonality": (A * _band_mask(N, T, None)).sum(axis=-1).mean(axis=-1),
        "centroid_spearman": rho,
        "centroid_monotonic_share": share,
        "centroid_error": np.mean(np.abs(c - diagonal_targets(N)), axis=-1),
        "normalized_entropy": normalized,
        "effective_width": np.mean(np.exp(H) / T, axis=-1),
        "guided_attention_penalty": (A * _penalty_weights(N, T, 0.2)).sum(axis=-1).mean(axis=-1),
        "focus_rate_scaled": A.max(axis=-1).mean(axis=-1) * T / N,
        "gold_mass": gold,
    }
