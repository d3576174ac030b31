"""The dashboard's plain functions: run folders, gloss filters and aggregate computations."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest_app import GOOD_RUN, app_runs  # noqa: F401

from app import aggregates, filters, runs
from signattention_core import metrics as alignment

# ---------------------------------------------------------------------------- run folders


def test_artifacts_root_precedence(tmp_path):
    from_flag = runs.artifacts_root(["--artifacts", str(tmp_path / "a")], {runs.ENV_VAR: str(tmp_path / "b")})
    from_env = runs.artifacts_root([], {runs.ENV_VAR: str(tmp_path / "b")})
    default = runs.artifacts_root([], {})
    assert from_flag == tmp_path / "a"
    assert from_env == tmp_path / "b"
    assert default == runs.DEFAULT_ROOT


def test_artifacts_root_ignores_other_arguments(tmp_path):
    assert runs.artifacts_root(["-k", "x", "--artifact", "y"], {}) == runs.DEFAULT_ROOT


def test_list_runs_needs_run_json(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "run.json").write_text("{}")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "run.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.json").write_text("{}")
    assert runs.list_runs(tmp_path) == ["a", "b"]
    assert runs.list_runs(tmp_path / "missing") == []


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "a\\b", "/etc", "/tmp/x"])
def test_run_path_rejects(tmp_path, name):
    with pytest.raises(runs.RunNameError):
        runs.run_path(tmp_path, name)


def test_run_path_rejects_link_out_of_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (root / "sneaky").symlink_to(tmp_path / "outside")
    with pytest.raises(runs.RunNameError):
        runs.run_path(root, "sneaky")


def test_run_path_accepts_child(tmp_path):
    assert runs.run_path(tmp_path, "demo") == (tmp_path / "demo").resolve()


def test_default_run_choice():
    assert runs.choose_default_run(["a", "demo"]) == "demo"
    assert runs.choose_default_run(["b", "a"]) == "b"
    assert runs.choose_default_run([]) is None


# ---------------------------------------------------------------------------- gloss filters


@pytest.mark.parametrize(
    ("glosses", "query", "expected"),
    [
        (["ΕΓΩ(1)", "ΘΕΛΩ", "ΝΕΡΟ"], "εγω", True),
        (["ΕΓΩ(1)", "ΘΕΛΩ", "ΝΕΡΟ"], "Εγώ θέλω", True),
        (["ΕΓΩ(1)", "ΘΕΛΩ", "ΝΕΡΟ"], "εγω νερο", False),  # not consecutive
        (["ΕΓΩ(1)", "ΘΕΛΩ", "ΝΕΡΟ"], "θελω νερο", True),
        (["ΠΟΙΟΣ;"], "ποιος;", True),  # final sigma
        (["ΠΟΙΟΣ;"], "ΠΟΙΌΣ", True),
        (["ΕΝΟΧΛΩ_ΕΣΕΝΑ"], "εσενα", True),  # substring of a gloss
        (["ΝΕΡΟ"], "νερο νερο", False),  # longer than the sentence
        ([], "νερο", False),
    ],
)
def test_gloss_run_matching(glosses, query, expected):
    keys = filters.gloss_keys(glosses)
    assert filters.contains_run(keys, filters.query_keys(query)) is expected


def test_empty_query_keeps_everything():
    column = pd.Series([("α",), ()])
    assert filters.gloss_mask(column, "  ").tolist() == [True, True]


def _table() -> pd.DataFrame:
    references = [["ΕΓΩ(1)", "ΘΕΛΩ"], ["ΠΟΙΟΣ;"], ["ΘΕΛΩ", "ΕΓΩ(1)"]]
    hypotheses = [["ΕΓΩ(1)", "ΘΕΛΩ"], ["ΕΓΩ(1)"], ["ΘΕΛΩ"]]
    return pd.DataFrame(
        {
            "sample_idx": [0, 1, 2],
            "reference_keys": [filters.gloss_keys(tokens) for tokens in references],
            "hypothesis_keys": [filters.gloss_keys(tokens) for tokens in hypotheses],
            "signer": ["s1", "s2", "s1"],
            "split": ["test", "test", "val"],
            "length": [2, 1, 2],
            "exact_match": [True, False, False],
            "sentence_bleu": [100.0, 0.0, 30.0],
            "wer": [0.0, 1.0, 0.5],
        }
    )


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [
        (filters.SampleFilter(), [0, 1, 2]),
        (filters.SampleFilter(gloss_query="εγω"), [0, 2]),
        (filters.SampleFilter(gloss_query="εγω", gloss_source="hypothesis"), [0, 1]),
        (filters.SampleFilter(gloss_query="ποιος", gloss_source="either"), [1]),
        (filters.SampleFilter(signers=("s1",)), [0, 2]),
        (filters.SampleFilter(splits=("val",)), [2]),
        (filters.SampleFilter(length=(1, 1)), [1]),
        (filters.SampleFilter(exact="exact"), [0]),
        (filters.SampleFilter(exact="not exact"), [1, 2]),
        (filters.SampleFilter(bleu=(20.0, 100.0)), [0, 2]),
        (filters.SampleFilter(wer=(0.4, 1.0)), [1, 2]),
    ],
)
def test_sample_filters(chosen, expected):
    assert filters.apply(_table(), chosen)["sample_idx"].tolist() == expected


def test_full_bleu_range_keeps_float_noise():
    table = _table()
    table.loc[0, "sentence_bleu"] = 100.00000000000004
    chosen = filters.SampleFilter(bleu=(0.0, 100.0))
    assert filters.apply(table, chosen)["sample_idx"].tolist() == [0, 1, 2]


def test_metric_range_filter():
    values = pd.Series([0.1, 0.9, np.nan], index=[0, 1, 2])
    chosen = filters.SampleFilter(metric="band_diagonality", metric_range=(0.5, 1.0))
    assert filters.apply(_table(), chosen, values)["sample_idx"].tolist() == [1]


def test_filter_rejects_unknown_choice():
    with pytest.raises(ValueError, match="gloss_source"):
        filters.SampleFilter(gloss_source="text")


# ---------------------------------------------------------------------------- aggregates


def test_minmax_rows():
    scaled = aggregates.minmax_rows(np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]]))
    assert scaled.tolist() == [[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]


def test_select_head_mean():
    weights = np.stack([np.eye(2), np.ones((2, 2)) / 2]).astype(np.float32)  # (H, R, C)
    assert aggregates.select_head(weights, -1).tolist() == [[0.75, 0.25], [0.25, 0.75]]
    assert aggregates.select_head(weights, 1).tolist() == [[0.5, 0.5], [0.5, 0.5]]


def test_bootstrap_interval_is_reproducible():
    values = np.random.default_rng(1).normal(2.0, 1.0, size=200)
    low, high = aggregates.bootstrap_interval(values)
    assert low < values.mean() < high
    assert high - low == pytest.approx(2 * 1.96 / math.sqrt(200), rel=0.25)
    assert aggregates.bootstrap_interval(values) == (low, high)


def test_bootstrap_interval_edge_cases():
    assert aggregates.bootstrap_interval(np.array([3.0])) == (3.0, 3.0)
    assert all(math.isnan(v) for v in aggregates.bootstrap_interval(np.array([np.nan])))


def test_metric_intervals_per_group():
    table = pd.DataFrame({"length": [1, 1, 2, 2, 2], "signer": ["a", "b", "a", "a", "b"],
                          "m": [0.1, 0.3, 0.5, np.nan, 0.7]})
    out = aggregates.metric_intervals(table, ["m"], "signer")
    assert list(out.columns) == ["metric", "length", "signer", "mean", "low", "high", "n"]
    row = out[(out["length"] == 2) & (out["signer"] == "a")].iloc[0]
    assert row["mean"] == pytest.approx(0.5)
    assert row["n"] == 1


def test_mean_profiles_by_length():
    keys = pd.DataFrame({"sample_idx": [0, 0, 1, 1, 2], "step": [0, 1, 0, 1, 0]})
    profiles = np.zeros((5, 4), dtype=np.float32)
    profiles[0, 0] = profiles[2, 2] = 1.0
    profiles[1, 3] = profiles[3, 3] = 1.0
    profiles[4, 1] = 1.0
    lengths = pd.Series([1, 1, 0], index=[0, 1, 2])
    out = aggregates.mean_profiles_by_length(keys, profiles, lengths)
    first_step = out[(out["length"] == 1) & (out["step"] == 0)].sort_values("bin")
    assert first_step["weight"].tolist() == [0.5, 0.0, 0.5, 0.0]
    assert set(first_step["n"]) == {2}
    assert first_step["time"].tolist() == [0.125, 0.375, 0.625, 0.875]


def test_encoder_profile_keeps_rows_distributions():
    rng = np.random.default_rng(0)
    matrix = rng.random((7, 7))
    matrix /= matrix.sum(axis=1, keepdims=True)
    binned = aggregates.encoder_profile(matrix, bins=5)
    assert binned.shape == (5, 5)
    assert binned.sum(axis=1) == pytest.approx(np.ones(5))


def test_evenly_spaced_blocks():
    assert aggregates.evenly_spaced_blocks(50, 100) == [(0, 49)]
    blocks = aggregates.evenly_spaced_blocks(1000, 100, blocks=10)
    assert len(blocks) == 10
    assert blocks[0] == (0, 9)
    assert blocks[-1] == (990, 999)


def test_profile_statistics_match_metrics():
    rng = np.random.default_rng(2)
    A = rng.random((3, 20))
    A /= A.sum(axis=1, keepdims=True)
    profiles = alignment.resample_rows(A, 100)
    centroid, width = aggregates.profile_statistics(profiles)
    assert centroid == pytest.approx(alignment.centroids(A), abs=1e-9)
    assert width.shape == (3,)
    assert np.all((width > 0) & (width <= 1))



def test_reference_steps_pairing():
    keys = pd.DataFrame(
        {
            "sample_idx": [0, 0, 0, 1, 1],
            "step": [0, 1, 2, 0, 1],
            "token": ["Α", "Γ", "<eos>", "Α", "<eos>"],
            "is_final": [False, False, True, False, True],
        }
    )
    samples = pd.DataFrame({"sample_idx": [0, 1], "sentence_group": ["g", "g"],
                            "reference_tokens": [["Α", "Β"], ["Α", "Β"]]})
    paired = aggregates.reference_steps(keys, samples)
    assert paired["row"].tolist() == [0, 1, 3]
    assert paired["reference_gloss"].tolist() == ["Α", "Β", "Α"]
    assert paired["matches"].tolist() == [True, False, True]


def test_group_summary_means_glosses():
    samples = pd.DataFrame({"sentence_group": ["g", "g", "h"], "reference": ["Α Β", "Α Β", "Γ"],
                            "signer": ["s1", "s2", "s1"], "exact_match": [True, False, True]})
    per_gloss = pd.DataFrame({"sentence_group": ["g", "g"], "consistency": [0.1, 0.3]})
    summary = aggregates.group_summary(samples, per_gloss).set_index("sentence_group")
    assert summary.loc["g", "consistency"] == pytest.approx(0.2)
    assert summary.loc["g", "performances"] == 2
    assert summary.loc["g", "signers"] == 2
    assert summary.loc["g", "exact_share"] == pytest.approx(0.5)
    assert math.isnan(summary.loc["h", "consistency"])


def test_sorted_glosses_greek_aware():
    assert aggregates.sorted_glosses(["ΩΡΑ", "άλλος", "ΑΛΛΟΣ", "Βάζω"]) == ["ΑΛΛΟΣ", "άλλος", "Βάζω", "ΩΡΑ"]


def test_repo_has_no_pages_folder():
    # a pages/ folder beside the entry point would switch Streamlit to its older page discovery
    assert not (Path(runs.REPO_ROOT) / "app" / "pages").exists()


# ---------------------------------------------------------------------------- chart exports


def _greek_chart(rows: int):
    from app import charts

    data = pd.DataFrame({"position": np.arange(rows), "gloss": ["ΕΓΩ(1)", "ΠΟΙΟΣ;"] * (rows // 2)})
    context = charts.ViewContext(run="δοκιμή", split="test", layer=0, n_layers=1, head=-1, n_heads=8,
                                 normalisation="raw")
    return charts.base(data, "Προσοχή", context).mark_point().encode(x="position:Q", y="gloss:N")


def test_export_png_and_svg_with_greek():
    from app import charts

    chart = _greek_chart(6000)  # over Altair's default 5,000-row limit
    png = charts.chart_png(chart)
    svg = charts.chart_svg(chart)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ΠΟΙΟΣ;" in svg
    assert "Προσοχή" in svg
    assert "mean over 8 heads" in svg


def test_export_spec_inlines_data():
    import json

    from app import charts

    spec = json.loads(charts.chart_spec(_greek_chart(10)))
    assert spec["title"]["subtitle"] == "run δοκιμή · split test · layer 1 of 1 · mean over 8 heads · raw attention weights"
    rows = next(iter(spec["datasets"].values()))
    assert len(rows) == 10


def test_table_csv_reads_back_greek():
    import io

    from app import charts

    table = pd.DataFrame({"gloss": ["ΕΓΩ(1)", "ΠΟΙΟΣ;"], "n": [1, 2]})
    assert pd.read_csv(io.BytesIO(charts.table_csv(table)), encoding="utf-8-sig").equals(table)


@pytest.mark.parametrize(("text", "stem"), [("demo-g0_signer1/sentence00", "demo-g0_signer1-sentence00"),
                                            ("concordance-ΕΓΩ(1)", "concordance-ΕΓΩ-1"), ("../", "chart")])
def test_file_stem(text, stem):
    from app import charts

    assert charts.file_stem(text) == stem


def test_list_runs_skips_unfinished_writes(tmp_path):
    for name in ("demo", "demo.tmp-123", "demo.replaced-456"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text("{}", encoding="utf-8")
    assert runs.list_runs(tmp_path) == ["demo"]


def test_uniform_reference_per_length():
    lengths = pd.Series([1, 4, 4, 4])
    positions = pd.Series([10, 20, 30, 40])
    table = aggregates.uniform_reference(lengths, positions).set_index(["metric", "length"])["uniform"]

    # a single gloss's band covers the whole video
    assert table[("band_diagonality", 1)] == pytest.approx(1.0)
    # 4 glosses over the median 30 positions: each band contains 8 of 30 positions
    assert table[("band_diagonality", 4)] == pytest.approx(8 / 30)
    assert table[("normalized_entropy", 4)] == pytest.approx(1.0)
    assert table[("focus_rate_scaled", 4)] == pytest.approx(30 / 4 / 30)
    assert "centroid_spearman" not in table.index.get_level_values("metric")


def test_uniform_gold_mass_uses_each_sample_spans():
    lengths = pd.Series([2, 2, 3])
    positions = pd.Series([4, 4, 3])
    gold = pd.DataFrame(
        {
            # sample 0: spans cover 1 and 3 of 4 positions; sample 1: 2 and 2; sample 2: no spans
            "gold_spans": [[[0, 3], [3, 12]], [[0, 6], [6, 12]], None],
            "frame_index": [np.array([0, 3, 6, 9])] * 2 + [np.array([0, 3, 6])],
            "n_positions": [4, 4, 3],
        }
    )
    table = aggregates.uniform_reference(lengths, positions, gold).set_index(["metric", "length"])["uniform"]

    # mean over samples of the mean share of positions inside each row's span
    assert table[("gold_mass", 2)] == pytest.approx(((1 / 4 + 3 / 4) / 2 + (2 / 4 + 2 / 4) / 2) / 2)
    assert ("gold_mass", 3) not in table.index


def test_uniform_gold_mass_matches_metrics_module():
    rng = np.random.default_rng(5)
    frame_index = np.sort(rng.choice(200, size=40, replace=False))
    spans = [[10, 60], [60, 61], [70, 150], [150, 199]]
    gold = pd.DataFrame({"gold_spans": [spans], "frame_index": [frame_index], "n_positions": [40]})
    table = aggregates.uniform_reference(pd.Series([3]), pd.Series([40]), gold).set_index(["metric", "length"])
    expected = alignment.gold_mass(np.full((3, 40), 1 / 40), spans, frame_index)
    assert table.loc[("gold_mass", 3), "uniform"] == pytest.approx(expected, abs=1e-12)
