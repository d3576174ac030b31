"""Every dashboard page driven by AppTest over the session's test artifacts."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from conftest_app import DAMAGED_RUN, GOOD_RUN, OLD_SCHEMA_RUN, UNFINISHED_RUN, app_runs  # noqa: F401
from streamlit.testing.v1 import AppTest

from signattention_core.artifacts import Artifact
from signattention_core.text import match_key

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = str(REPO_ROOT / "app" / "streamlit_app.py")
# page file -> charts it draws on the test run
PAGES = {"overview.py": 3, "sample.py": 7, "alignment.py": 4, "repeated.py": 3, "concordance.py": 1}
TIMEOUT = 60


@pytest.fixture
def open_app(app_runs, monkeypatch):  # noqa: F811
    """Return a function that runs one page of the app with the given query parameters."""
    monkeypatch.setenv("SIGNATTENTION_ARTIFACTS", str(app_runs.root))

    def run(page: str = "overview.py", **params: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        for name, value in params.items():
            at.query_params[name] = value
        at.run()
        if page != "overview.py":
            at.switch_page(page)
            for name, value in params.items():
                at.query_params[name] = value
            at.run()
        return at

    return run


@pytest.fixture(scope="module")
def artifact(app_runs) -> Artifact:  # noqa: F811
    return Artifact.open(app_runs.root / GOOD_RUN)


@pytest.fixture(scope="module")
def shape(artifact) -> dict[str, int]:
    """Decoder layers and heads of the test run."""
    first = artifact.samples().iloc[0]
    return {"layers": int(first["n_decoder_layers"]), "heads": int(first["n_heads"])}


def charts(at: AppTest) -> list:
    return at.get("vega_lite_chart")


def chart_title(chart) -> dict:
    """Return the title of a chart, or of its first layer or panel, as {"text", "subtitle"}."""
    spec = json.loads(chart.proto.spec)
    while "title" not in spec:
        children = spec.get("layer") or spec.get("vconcat") or spec.get("hconcat") or []
        if not children:
            return {}
        spec = children[0]
    title = spec["title"]
    return title if isinstance(title, dict) else {"text": title}


def chart_titles(at: AppTest) -> list[str]:
    return [chart_title(chart).get("text", "") for chart in charts(at)]


def chart_data(chart) -> pd.DataFrame:
    """Return the first data set of a chart as the app sent it."""
    datasets = chart.proto.datasets
    assert datasets, "chart carries no data set"
    with pa.ipc.open_stream(datasets[0].data.data) as reader:
        return reader.read_all().to_pandas()


def param(at: AppTest, name: str) -> list[str]:
    value = at.query_params[name]
    return value if isinstance(value, list) else [value]


def matching_count(at: AppTest) -> int:
    """Read the `N of M samples` line of the overview."""
    for block in at.markdown:
        if "samples** match the filters" in block.value:
            return int(block.value.split("**")[1].split(" of ")[0])
    raise AssertionError("no sample count on the page")


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [item.value for item in at.exception]
    assert not at.error, [item.value for item in at.error]


# ---------------------------------------------------------------------------- every page


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_charts(open_app, page):
    at = open_app(page)
    assert_clean(at)
    assert len(at.title) == 1
    assert len(charts(at)) == PAGES[page]
    # PNG, SVG and CSV under every chart
    assert len(at.get("download_button")) >= 3 * len(charts(at))


@pytest.mark.parametrize("page", PAGES)
def test_chart_titles_state_the_run(open_app, page):
    at = open_app(page)
    for chart in charts(at):
        subtitle = chart_title(chart).get("subtitle", "")
        assert f"run {GOOD_RUN}" in subtitle, chart_title(chart)
        assert "split test" in subtitle


# ---------------------------------------------------------------------------- overview


def test_overview_lists_every_sample(open_app, app_runs):  # noqa: F811
    at = open_app()
    assert matching_count(at) == len(app_runs.samples)
    assert at.selectbox(key="widget:run").value == GOOD_RUN
    assert len(at.dataframe) == 1
    assert len(at.dataframe[0].value) == len(app_runs.samples)


@pytest.mark.parametrize(
    ("query", "expected_groups"),
    [
        ("εγω", {"g0", "g2"}),  # lower case, no accent, Greek
        ("ΕΓΏ", {"g0", "g2"}),  # accent on the query
        ("εγω θελω", {"g0"}),  # a run of two glosses
        ("θελω εγω", set()),  # the same glosses in the wrong order
        ("ποιος;", {"g1"}),  # final sigma and punctuation
        ("ενοχλω_εσενα συγγνωμη", {"g2"}),
    ],
)
def test_overview_gloss_filter(open_app, app_runs, query, expected_groups):  # noqa: F811
    at = open_app()
    at.text_input(key="widget:gloss").input(query).run()
    assert_clean(at)
    expected = sum(1 for sample in app_runs.samples if sample.sentence_group in expected_groups)
    if expected == 0:
        assert any("No sample matches" in item.value for item in at.info)
        return
    assert matching_count(at) == expected
    assert param(at, "gloss") == [query]


def test_overview_hypothesis_search(open_app, artifact):
    at = open_app(gloss="ΕΣΥ", **{"in": "hypothesis"})
    samples = artifact.samples()
    expected = sum("ΕΣΥ" in tokens for tokens in samples["hypothesis_tokens"])
    assert matching_count(at) == expected


def test_overview_signer_filter(open_app, app_runs):  # noqa: F811
    at = open_app()
    at.multiselect(key="widget:signer").select("signer2").run()
    assert matching_count(at) == sum(sample.signer == "signer2" for sample in app_runs.samples)
    assert param(at, "signer") == ["signer2"]


def test_overview_exact_filter(open_app, artifact):
    at = open_app()
    at.selectbox(key="widget:exact").select("exact").run()
    assert matching_count(at) == int(artifact.samples()["exact_match"].sum())
    at.selectbox(key="widget:exact").select("not exact").run()
    assert matching_count(at) == int((~artifact.samples()["exact_match"]).sum())


def test_overview_length_filter(open_app, artifact):
    at = open_app()
    at.slider(key="widget:length").set_range(2, 3).run()
    lengths = artifact.samples()["n_reference"]
    assert matching_count(at) == int(lengths.between(2, 3).sum())


def test_overview_score_filters_from_link(open_app, artifact):
    at = open_app(bleu="50,100", wer="0,0.5")
    samples = artifact.samples()
    expected = samples["sentence_bleu"].between(50, 100) & samples["wer"].between(0, 0.5)
    assert matching_count(at) == int(expected.sum())


def test_overview_metric_range_filter(open_app, artifact, shape):
    at = open_app(metric="band_diagonality", metric_range="0.6,1")
    # the layer control starts at the last decoder layer
    values = artifact.metrics(layer=shape["layers"] - 1, head=-1).set_index("sample_idx")["band_diagonality"]
    assert matching_count(at) == int(values.between(0.6, 1).sum())


def test_overview_opens_sample_page(open_app, app_runs):  # noqa: F811
    at = open_app()
    target = app_runs.samples[7].id
    at.selectbox(key="open_sample").select(target).run()
    at.button(key="open_button").click().run()
    assert_clean(at)
    assert at.title[0].value == "Sample"
    assert at.selectbox(key="widget:sample").value == target


# ---------------------------------------------------------------------------- sample


def test_sample_view_from_link(open_app, app_runs, shape):  # noqa: F811
    target = app_runs.samples[9].id
    at = open_app("sample.py", sample=target, head="1", norm="minmax", time="seconds", layer="0")
    assert_clean(at)
    assert at.selectbox(key="widget:sample").value == target
    assert at.selectbox(key="widget:head").value == 1
    assert at.selectbox(key="widget:layer").value == 0
    assert at.radio(key="widget:norm").value == "minmax"
    assert at.radio(key="widget:time").value == "seconds"
    subtitle = chart_title(charts(at)[0])["subtitle"]
    assert f"head 2 of {shape['heads']}" in subtitle
    assert f"layer 1 of {shape['layers']}" in subtitle
    assert "min-max" in subtitle


def test_sample_head_average_is_labelled(open_app, shape):
    at = open_app("sample.py")
    assert at.selectbox(key="widget:head").value == -1
    subtitle = chart_title(charts(at)[0])["subtitle"]
    assert f"mean over {shape['heads']} heads" in subtitle


def test_sample_next_and_previous(open_app, app_runs):  # noqa: F811
    at = open_app("sample.py")
    at.button(key="next").click().run()
    assert at.selectbox(key="widget:sample").value == app_runs.samples[1].id
    at.button(key="next").click().run()
    at.button(key="previous").click().run()
    assert at.selectbox(key="widget:sample").value == app_runs.samples[1].id
    assert param(at, "sample") == [app_runs.samples[1].id]


def test_sample_cross_attention_data(open_app, app_runs, artifact, shape):  # noqa: F811
    last = shape["layers"] - 1
    at = open_app("sample.py", sample=app_runs.samples[3].id, layer=str(last), head="0")
    attention = artifact.attention(3)
    N, P = attention.cross.shape[2:]
    cells = chart_data(charts(at)[0])
    assert len(cells) == N * P
    expected = attention.cross[last, 0].ravel()
    assert cells["weight"].to_numpy() == pytest.approx(expected, abs=1e-6)


def test_sample_time_axis_units(open_app, app_runs):  # noqa: F811
    sample = app_runs.samples[2]
    for unit, last_end in (("frame", sample.n_frames), ("seconds", sample.n_frames / sample.fps),
                           ("percent", 100.0)):
        at = open_app("sample.py", sample=sample.id, time=unit)
        cells = chart_data(charts(at)[0])
        assert cells["end"].max() == pytest.approx(last_end)
        assert cells["start"].min() == pytest.approx(0.0)


def test_sample_pose_player_draws_video(open_app, app_runs):  # noqa: F811
    at = open_app("sample.py", sample=app_runs.samples[0].id, frame="10")
    assert_clean(at)
    assert "Skeleton at frame 10" in chart_titles(at)
    assert len(at.get("image")) == 1


def test_sample_pose_player_without_video(open_app, app_runs):  # noqa: F811
    at = open_app("sample.py", sample=app_runs.samples[1].id)
    assert "Skeleton at frame 0" in chart_titles(at)
    assert any("no video" in item.value for item in at.caption)


@pytest.fixture
def run_without_corpus(app_runs, tmp_path, monkeypatch):  # noqa: F811
    """A copy of the good run whose run.json names a corpus folder that does not exist."""
    import shutil

    root = tmp_path / "artifacts"
    shutil.copytree(app_runs.root / GOOD_RUN, root / GOOD_RUN)
    run_file = root / GOOD_RUN / "run.json"
    run = json.loads(run_file.read_text(encoding="utf-8"))
    run["corpus"]["path"] = str(tmp_path / "gone")
    run_file.write_text(json.dumps(run), encoding="utf-8")
    monkeypatch.setenv("SIGNATTENTION_ARTIFACTS", str(root))


def test_sample_pose_from_artifact_without_corpus(open_app, app_runs, run_without_corpus):  # noqa: F811
    at = open_app("sample.py", sample=app_runs.samples[2].id, frame="5")
    assert_clean(at)
    assert "Skeleton at frame 5" in chart_titles(at)
    assert any("Pose from the artifact" in item.value for item in at.caption)


def test_sample_without_pose_or_corpus(open_app, app_runs, run_without_corpus):  # noqa: F811
    at = open_app("sample.py", sample=app_runs.samples[1].id)
    assert_clean(at)
    assert any("not on this machine" in item.value for item in at.info)
    assert not any(title.startswith("Skeleton") for title in chart_titles(at))


def test_sample_pose_from_corpus(open_app, app_runs):  # noqa: F811
    at = open_app("sample.py", sample=app_runs.samples[3].id)
    assert "Skeleton at frame 0" in chart_titles(at)
    assert any("Pose from the corpus" in item.value for item in at.caption)


# ---------------------------------------------------------------------------- aggregate pages


def test_alignment_groupings(open_app):
    at = open_app("alignment.py")
    for grouping in ("signer", "exact_match"):
        at.radio(key="widget:by").set_value(grouping).run()
        assert_clean(at)
        assert "Alignment metrics by sentence length" in chart_titles(at)


def test_alignment_chosen_lengths(open_app, artifact):
    at = open_app("alignment.py", lengths="2")
    cells = chart_data(charts(at)[0])
    assert set(cells["length"]) == {2}
    n_two = int((artifact.samples()["n_hypothesis"] == 2).sum())
    assert set(cells["n"]) == {n_two}


def test_repeated_group_choice(open_app):
    at = open_app("repeated.py", group="g2")
    assert_clean(at)
    assert at.selectbox(key="widget:group").value == "g2"
    assert any("ΕΝΟΧΛΩ\\_ΕΣΕΝΑ" in block.value for block in at.markdown)
    at.radio(key="widget:order").set_value("consistency").run()
    assert_clean(at)


def test_concordance_counts_occurrences(open_app, artifact):
    at = open_app("concordance.py", gloss="ΕΓΩ(1)")
    assert_clean(at)
    expected = sum(list(tokens).count("ΕΓΩ(1)") for tokens in artifact.samples()["hypothesis_tokens"])
    table = at.dataframe[0].value
    assert len(table) == expected
    assert set(table["signer"]) <= {"signer1", "signer2", "signer3"}


def test_concordance_search_ignores_accents(open_app, artifact):
    predicted = {token for tokens in artifact.samples()["hypothesis_tokens"] for token in tokens}
    at = open_app("concordance.py")
    at.text_input(key="widget:find").input("εγώ").run()
    expected = sorted(token for token in predicted if "εγω" in match_key(token))
    assert expected
    assert sorted(at.selectbox(key="widget:gloss").options) == expected


# ---------------------------------------------------------------------------- broken runs and links


@pytest.mark.parametrize(
    ("run", "named"),
    [(DAMAGED_RUN, "samples.parquet"), (OLD_SCHEMA_RUN, "schema version"), (UNFINISHED_RUN, "metrics.parquet")],
)
@pytest.mark.parametrize("page", ("overview.py", "sample.py"))
def test_broken_run_shows_message(open_app, run, named, page):
    at = open_app(page, run=run)
    assert not at.exception
    assert len(at.error) == 1
    assert named in at.error[0].value
    assert not charts(at)


@pytest.mark.parametrize("run", ["../demo", "/etc", "demo/../demo", "."])
def test_run_outside_root_rejected(open_app, run):
    at = open_app(run=run)
    assert not at.exception
    assert len(at.error) == 1
    assert "Invalid run" in at.error[0].value


def test_unknown_run_named(open_app):
    at = open_app(run="missing")
    assert not at.exception
    assert "not found" in at.error[0].value
    assert GOOD_RUN in at.error[0].value


def test_empty_root_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGNATTENTION_ARTIFACTS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "No runs found" in at.info[0].value


def test_app_does_not_import_torch(app_runs):  # noqa: F811
    script = (
        "import os, sys\n"
        f"os.environ['SIGNATTENTION_ARTIFACTS'] = {str(app_runs.root)!r}\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout={TIMEOUT}).run()\n"
        f"for page in {list(PAGES)[1:]!r}:\n"
        "    at.switch_page(page).run()\n"
        "    assert not at.exception, at.exception\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_sample_marks_differences(open_app, artifact):
    samples = artifact.samples()
    wrong = samples[~samples["exact_match"]].iloc[0]
    at = open_app("sample.py", sample=wrong["id"])
    block = at.get("html")[0].proto.body
    for token in wrong["reference_tokens"]:
        assert token in block
    assert "line-through" in block or "#fbe3b0" in block
