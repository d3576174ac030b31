"""Alignment metrics on hand-made matrices with known values."""

import math

import numpy as np
import pytest

from signattention_core import metrics as m


def diagonal(n: int) -> np.ndarray:
    return np.eye(n)


def block_diagonal(n: int, width: int) -> np.ndarray:
    """Each of n rows spreads evenly over its own `width` positions."""
    A = np.zeros((n, n * width))
    for i in range(n):
        A[i, i * width : (i + 1) * width] = 1.0 / width
    return A


def uniform(n: int, t: int) -> np.ndarray:
    return np.full((n, t), 1.0 / t)


def spike(t: int, at: int) -> np.ndarray:
    A = np.zeros((1, t))
    A[0, at] = 1.0
    return A


def test_perfect_diagonal_values():
    A = diagonal(5)
    rho, share = m.centroid_monotonicity(A)
    assert m.band_diagonality(A) == 1.0
    assert rho == pytest.approx(1.0)
    assert share == 1.0
    assert m.centroid_error(A) == pytest.approx(0.0, abs=1e-15)
    assert m.normalized_entropy(A) == 0.0
    assert m.effective_width(A) == pytest.approx(1 / 5)
    assert m.guided_attention_penalty(A) == pytest.approx(0.0, abs=1e-15)
    assert m.focus_rate_scaled(A) == pytest.approx(1.0)


def test_block_diagonal_values():
    A = block_diagonal(3, 2)  # (3, 6)
    rho, share = m.centroid_monotonicity(A)
    assert m.band_diagonality(A) == pytest.approx(1.0)
    assert rho == pytest.approx(1.0)
    assert share == 1.0
    assert m.centroid_error(A) == pytest.approx(0.0, abs=1e-15)
    assert m.normalized_entropy(A) == pytest.approx(math.log(2) / math.log(6))
    assert m.effective_width(A) == pytest.approx(2 / 6)
    assert m.focus_rate_scaled(A) == pytest.approx(1.0)

    # every weight sits 1/12 of the video from its row's ideal time
    expected_penalty = 1 - math.exp(-((1 / 12) ** 2) / (2 * 0.2**2))
    assert m.guided_attention_penalty(A) == pytest.approx(expected_penalty)


def test_uniform_matrix_values():
    N, T = 4, 8
    A = uniform(N, T)
    rho, share = m.centroid_monotonicity(A)
    assert m.normalized_entropy(A) == pytest.approx(1.0)
    assert m.effective_width(A) == pytest.approx(1.0)
    assert m.focus_rate_scaled(A) == pytest.approx(T / N * (1 / T))
    assert math.isnan(rho)
    assert share == 1.0

    # centroids all sit at 0.5; targets are 1/8, 3/8, 5/8, 7/8
    assert m.centroid_error(A) == pytest.approx(0.25)

    # the band of half a slot (1/8) around each target contains 2 of 8 positions
    assert m.band_diagonality(A) == pytest.approx(0.25)


def test_uniform_penalty_matches_cellwise_sum():
    N, T, g = 3, 7, 0.2
    A = uniform(N, T)
    total = 0.0
    for i in range(N):
        for t in range(T):
            d = (i + 0.5) / N - (t + 0.5) / T
            total += A[i, t] * (1 - math.exp(-(d**2) / (2 * g**2)))
    assert m.guided_attention_penalty(A, g) == pytest.approx(total / N)


def test_reversed_diagonal_values():
    A = diagonal(5)[::-1]
    rho, share = m.centroid_monotonicity(A)
    assert rho == pytest.approx(-1.0)
    assert share == 0.0
    assert m.band_diagonality(A) == pytest.approx(1 / 5)

    # distances from the targets are 4/5, 2/5, 0, 2/5, 4/5
    assert m.centroid_error(A) == pytest.approx(12 / 25)
    assert m.guided_attention_penalty(A) > m.guided_attention_penalty(diagonal(5))


def test_single_frame_spike_values():
    A = spike(10, 3)
    rho, share = m.centroid_monotonicity(A)
    assert m.normalized_entropy(A) == 0.0
    assert m.effective_width(A) == pytest.approx(1 / 10)
    assert m.focus_rate_scaled(A) == pytest.approx(10.0)
    assert m.centroids(A)[0] == pytest.approx(0.35)
    assert m.centroid_error(A) == pytest.approx(0.15)
    assert math.isnan(rho)
    assert math.isnan(share)


def test_single_position_entropy_undefined():
    A = np.ones((3, 1))
    assert math.isnan(m.normalized_entropy(A))
    assert m.effective_width(A) == 1.0


def test_padding_rows_rejected_and_trimmed_match():
    A = block_diagonal(3, 2)  # (3, 6)
    padded = np.zeros((4, 9))
    padded[:3, :6] = A
    with pytest.raises(ValueError, match="row 3 sums to 0"):
        m.band_diagonality(padded)

    trimmed = padded[:3, :6]
    assert m.alignment_metrics(trimmed) == pytest.approx(m.alignment_metrics(A), nan_ok=True)


def test_padding_columns_change_values_untrimmed():
    A = block_diagonal(3, 2)  # (3, 6)
    padded = np.concatenate([A, np.zeros((3, 3))], axis=1)  # (3, 9): rows still sum to 1
    assert m.normalized_entropy(padded) != pytest.approx(m.normalized_entropy(A))
    assert m.centroid_error(padded) > 0.1


def test_invalid_matrices_rejected():
    with pytest.raises(ValueError, match="2-D"):
        m.centroids(np.ones(3))
    with pytest.raises(ValueError, match="empty"):
        m.centroids(np.ones((0, 4)))
    with pytest.raises(ValueError, match="negative"):
        m.centroids(np.array([[1.5, -0.5]]))
    with pytest.raises(ValueError, match="NaN"):
        m.centroids(np.array([[np.nan, 1.0]]))


def test_band_width_parameter():
    A = uniform(1, 10)
    assert m.band_diagonality(A, b=0.5) == pytest.approx(1.0)
    assert m.band_diagonality(A, b=0.0) == pytest.approx(0.0)
    assert m.band_diagonality(A, b=0.1) == pytest.approx(0.2)


def test_float_noise_counts_as_ties():
    rng = np.random.default_rng(0)
    A = uniform(5, 13) * (1 + rng.uniform(-1e-13, 1e-13, size=(5, 13)))
    rho, share = m.centroid_monotonicity(A)
    assert math.isnan(rho)
    assert share == 1.0


def test_gold_mass_positions_and_frames():
    A = diagonal(3)
    assert m.gold_mass(A, [(0, 1), (1, 2), (2, 3)]) == pytest.approx(1.0)
    assert m.gold_mass(A, [(1, 2), (2, 3), (0, 1)]) == pytest.approx(0.0)

    frame_index = np.array([0, 3, 6])
    assert m.gold_mass(A, [(0, 3), (3, 6), (6, 9)], frame_index) == pytest.approx(1.0)

    # a span between two sampled frames covers no position
    assert m.gold_mass(A, [(0, 3), (4, 6), (6, 9)], frame_index) == pytest.approx(2 / 3)


def test_gold_mass_pairs_rows_by_index():
    A = block_diagonal(3, 2)  # (3, 6)
    assert m.gold_mass(A, [(0, 2)]) == pytest.approx(1.0)
    assert m.gold_mass(A, [(0, 1), (2, 4), (4, 6), (0, 6)]) == pytest.approx((0.5 + 1 + 1) / 3)
    assert math.isnan(m.gold_mass(A, []))


def test_gold_mass_rejects_bad_input():
    with pytest.raises(ValueError, match="frame_index has shape"):
        m.gold_mass(diagonal(3), [(0, 1)], np.arange(4))
    with pytest.raises(ValueError, match="end lies before its start"):
        m.gold_mass(diagonal(3), [(2, 1)])


def test_resample_rows_preserves_mass():
    A = diagonal(4)
    R = m.resample_rows(A, bins=8)
    assert R.shape == (4, 8)
    np.testing.assert_allclose(R.sum(axis=1), 1.0)
    np.testing.assert_allclose(R[1], [0, 0, 0.5, 0.5, 0, 0, 0, 0])

    rng = np.random.default_rng(1)
    B = rng.random((3, 7))
    np.testing.assert_allclose(m.resample_rows(B).sum(axis=1), B.sum(axis=1))


def test_resample_uniform_row_stays_uniform():
    R = m.resample_rows(uniform(1, 3))
    assert R.shape == (1, m.PROFILE_BINS)
    np.testing.assert_allclose(R, 1 / m.PROFILE_BINS)


def test_resample_spike_splits_at_edges():
    # position 1 of 3 covers [1/3, 2/3): bins 33 and 66 are shared
    R = m.resample_rows(spike(3, 1))[0]
    assert R[33] == pytest.approx((0.34 - 1 / 3) * 3)
    assert R[40] == pytest.approx(0.03)
    assert R[10] == 0.0


def test_wasserstein_of_shifted_spikes():
    p = np.zeros(100)
    q = np.zeros(100)
    p[10] = 1
    q[30] = 1
    assert m.wasserstein_1(p, q) == pytest.approx(0.2)
    assert m.wasserstein_1(p, p) == 0.0


def test_repetition_consistency_mean_pairwise():
    rows = []
    for at in (10, 20, 40):
        row = np.zeros(100)
        row[at] = 2.0  # normalised inside
        rows.append(row)

    # pairwise shifts 0.1, 0.3 and 0.2
    assert m.repetition_consistency(rows) == pytest.approx(0.2)
    assert m.repetition_consistency([rows[0], rows[0]]) == 0.0
    assert math.isnan(m.repetition_consistency(rows[:1]))


def test_repetition_consistency_rejects_empty_row():
    with pytest.raises(ValueError, match="not all zero"):
        m.repetition_consistency([np.zeros(100), np.ones(100)])


def test_alignment_metrics_keys_and_nans():
    values = m.alignment_metrics(diagonal(1))
    assert tuple(values) == m.METRIC_NAMES
    assert math.isnan(values["centroid_spearman"])
    assert math.isnan(values["centroid_monotonic_share"])
    assert math.isnan(values["gold_mass"])
    assert values["band_diagonality"] == 1.0


def test_alignment_metrics_with_gold():
    values = m.alignment_metrics(
        diagonal(3), gold_spans=[(0, 3), (3, 6), (6, 9)], frame_index=np.array([0, 3, 6])
    )
    assert values["gold_mass"] == pytest.approx(1.0)
    assert values["centroid_spearman"] == pytest.approx(1.0)


def test_metric_info_covers_every_metric():
    assert set(m.METRICS) == set(m.METRIC_NAMES)
    assert [name for name, info in m.METRICS.items() if info.rank_based] == [
        "centroid_spearman",
        "centroid_monotonic_share",
    ]


def test_one_gloss_one_position_values():
    values = m.alignment_metrics(np.ones((1, 1)))
    assert values["band_diagonality"] == 1.0
    assert values["centroid_error"] == 0.0
    assert values["effective_width"] == 1.0
    assert values["guided_attention_penalty"] == 0.0
    assert values["focus_rate_scaled"] == 1.0
    for name in ("centroid_spearman", "centroid_monotonic_share", "normalized_entropy", "gold_mass"):
        assert math.isnan(values[name]), name


def test_float32_matrix_matches_float64():
    rng = np.random.default_rng(3)
    A = rng.dirichlet(np.full(17, 0.3), size=5)  # (5, 17) float64
    single = m.alignment_metrics(A.astype(np.float32))
    double = m.alignment_metrics(A)
    assert single == pytest.approx(double, rel=1e-5, abs=1e-6, nan_ok=True)


def test_nan_row_rejected_by_every_metric():
    A = uniform(3, 5)
    A[1, 2] = np.nan
    for function in (m.band_diagonality, m.centroid_error, m.normalized_entropy, m.alignment_metrics):
        with pytest.raises(ValueError, match="NaN"):
            function(A)


def random_stack(rng: np.random.Generator, K: int, N: int, T: int) -> np.ndarray:
    """K random (N, T) float64 attention matrices, with a flat matrix and a tie for the rank metrics."""
    A = rng.dirichlet(np.full(T, rng.choice([0.05, 0.5, 3.0])), size=(K, N))  # (K, N, T)
    A[0] = 1.0 / T
    if N > 1:
        A[-1, 1] = A[-1, 0]
    return A


@pytest.mark.parametrize("K,N,T", [(5, 4, 30), (9, 1, 12), (3, 7, 1), (2, 21, 130), (1, 3, 3)])
def test_stack_metrics_match_per_matrix(K, N, T):
    rng = np.random.default_rng(N * 1000 + T)
    A = random_stack(rng, K, N, T)
    frame_index = np.sort(rng.integers(0, 4 * T, size=T))
    starts = np.sort(rng.integers(0, 4 * T, size=N + 1))
    cases = [(None, None), ([(int(s), int(s) + 9) for s in starts], frame_index), ([(0, 2)], None)]
    for spans, frames in cases:
        stacked = m.alignment_metrics_stack(A, spans, frames)
        assert tuple(stacked) == m.METRIC_NAMES
        for k in range(K):
            single = m.alignment_metrics(A[k], spans, frames)
            for name in m.METRIC_NAMES:
                assert stacked[name][k] == pytest.approx(single[name], rel=1e-12, abs=1e-15, nan_ok=True), (
                    name, k, spans is None
                )


def test_stack_row_statistics_match_per_matrix():
    rng = np.random.default_rng(5)
    A = random_stack(rng, 4, 6, 40).astype(np.float32)
    statistics = m.row_statistics_stack(A)
    for k in range(4):
        np.testing.assert_allclose(statistics["centroid"][k], m.centroids(A[k]), rtol=1e-12)
        np.testing.assert_allclose(
            statistics["normalized_entropy"][k], m.row_normalized_entropy(A[k]), rtol=1e-12
        )
        np.testing.assert_allclose(
            statistics["effective_width"][k], m.row_effective_width(A[k]), rtol=1e-12
        )


def test_stack_rejects_bad_matrix_by_index():
    A = np.stack([uniform(3, 5), uniform(3, 5)])
    A[1, 2, 0] += 0.5
    with pytest.raises(ValueError, match="matrix 1 row 2 sums to 1.5"):
        m.alignment_metrics_stack(A)
    A[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.row_statistics_stack(A)
    with pytest.raises(ValueError, match="3-D"):
        m.alignment_metrics_stack(uniform(3, 5))


def test_repetition_consistency_equals_mean_pairwise_w1():
    rng = np.random.default_rng(3)
    rows = rng.random((5, 100))
    pairs = [m.wasserstein_1(rows[a], rows[b]) for a in range(5) for b in range(a + 1, 5)]

    assert m.repetition_consistency(list(rows)) == pytest.approx(np.mean(pairs), abs=1e-12)
    assert math.isnan(m.repetition_consistency(list(rows[:1])))
    with pytest.raises(ValueError, match="non-negative and not all zero"):
        m.repetition_consistency([rows[0], np.zeros(100)])
