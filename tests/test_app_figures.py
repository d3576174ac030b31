"""Dashboard figures and links as a reader sees them: bar heights, axis labels and stale sample links."""

import json
import re
from pathlib import Path

import altair as alt
import pandas as pd
import pyarrow as pa
import pytest
from conftest_app import GOOD_RUN, app_runs  # noqa: F401
from streamlit.testing.v1 import AppTest

from app import aggregates, charts, controls

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = str(REPO_ROOT / "app" / "streamlit_app.py")
TIMEOUT = 60
CONTEXT = charts.ViewContext(run="δοκιμή", split="test")


@pytest.fixture
def open_page(app_runs, monkeypatch):  # noqa: F811
    """Return a function that runs one page of the app over the test runs with the given query parameters."""
    monkeypatch.setenv("SIGNATTENTION_ARTIFACTS", str(app_runs.root))

    def run(page: str, **params: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.run()
        at.switch_page(page)
        for name, value in params.items():
            at.query_params[name] = value
        at.run()
        assert not at.exception, [item.value for item in at.exception]
        return at

    return run


def bar_heights(svg: str) -> dict[float, float]:
    """Map each bar's `start` field to its drawn height in pixels, read from a vl-convert SVG."""
    heights = {}
    for label, path in re.findall(r'<path aria-label="([^"]*)"[^>]*aria-roledescription="bar"[^>]*d="([^"]+)"', svg):
        start = float(re.search(r"start: ([\d.]+)", label).group(1))
        heights[start] = float(re.search(r"v(-?[\d.]+)", path).group(1))
    return heights


def chart_named(at: AppTest, title: str):
    for chart in at.get("vega_lite_chart"):
        if f'"text": "{title}"' in chart.proto.spec or f'"text":"{title}"' in chart.proto.spec:
            return chart
    raise AssertionError(f"no chart titled {title!r} on the page")


def chart_data(chart) -> pd.DataFrame:
    with pa.ipc.open_stream(chart.proto.datasets[0].data.data) as reader:
        return reader.read_all().to_pandas()


# ---------------------------------------------------------------------------- histograms


def test_fixed_bin_histogram_bars_reach_zero():
    scores = pd.DataFrame({"bleu": [100.0] * 30 + [0.0] * 3})
    chart = charts.histogram(scores, "bleu", title="Sentence BLEU", context=CONTEXT, x_title="BLEU",
                             edges=range(0, 105, 5))
    heights = bar_heights(charts.chart_svg(chart))

    assert len(heights) == 20
    # the fullest bin spans the whole 220-pixel plot, and a bin with a tenth of it a tenth of the height
    assert heights[95.0] == pytest.approx(220.0)
    assert heights[0.0] == pytest.approx(22.0)
    assert heights[50.0] == pytest.approx(0.0)


def test_histogram_count_axis_whole_numbers():
    lengths = pd.DataFrame({"length": [1, 2, 2]})
    spec = charts.chart_spec(charts.histogram(lengths, "length", title="Sentence length", context=CONTEXT,
                                              x_title="glosses", discrete=True))
    axis = json.loads(spec)["encoding"]["y"]["axis"]
    assert axis["tickMinStep"] == 1
    assert axis["format"] == "d"


# ---------------------------------------------------------------------------- decoder self-attention


def test_decoder_input_labels_shift_by_one():
    assert aggregates.decoder_input_labels(["ΓΕΙΑ", "ΤΙ;", "<eos>"]) == ["0. <bos>", "1. ΓΕΙΑ", "2. ΤΙ;"]
    assert aggregates.decoder_input_labels(["<eos>"]) == ["0. <bos>"]


def test_decoder_self_first_step_attends_bos(open_page, app_runs):  # noqa: F811
    sample_id = app_runs.samples[0].id
    at = open_page("sample.py", run=GOOD_RUN, sample=sample_id)
    cells = chart_data(chart_named(at, "Decoder self-attention"))
    first_step = cells[cells["query"] == cells["query"].iloc[0]].set_index("key")["weight"]

    # causal attention: the first decoding step can attend only to the BOS input, so all its weight is there
    assert first_step.index[0] == "0. <bos>"
    assert first_step["0. <bos>"] == pytest.approx(1.0, abs=1e-3)
    assert "<eos>" not in " ".join(cells["key"])


# ---------------------------------------------------------------------------- links


def test_sample_link_unknown_id_warns(open_page, app_runs):  # noqa: F811
    at = open_page("sample.py", run=GOOD_RUN, sample="no-such-sample")
    warnings = [item.value for item in at.warning]
    assert any("'no-such-sample'" in text and "not in run" in text for text in warnings), warnings


def test_sample_link_known_id_no_warning(open_page, app_runs):  # noqa: F811
    at = open_page("sample.py", run=GOOD_RUN, sample=app_runs.samples[1].id)
    assert not [item.value for item in at.warning if "from the link" in item.value]


def test_exports_name_the_view():
    context = charts.ViewContext(run="demo", split="test", layer=0, n_layers=2, head=1, n_heads=4,
                                 normalisation="minmax")
    data = pd.DataFrame({"gloss": ["ΕΓΩ(1)"], "weight": [0.5]})
    chart = charts.base(data, "Cross-attention", context).mark_rect()
    layered = alt.layer(chart, chart)
    view = charts.chart_subtitle(layered)

    assert view == context.describe()
    assert charts.view_slug(view).startswith("layer 1 of 2-head 2 of 4")
    lines = charts.table_csv(data, view).decode("utf-8-sig").splitlines()
    assert lines[0] == "view,gloss,weight"
    assert lines[1].startswith(f"{view},ΕΓΩ(1),")


def test_exports_of_two_heads_differ():
    views = [
        charts.ViewContext(run="demo", split="test", layer=0, n_layers=1, head=head, n_heads=4,
                           normalisation="raw").describe()
        for head in (0, 1, -1)
    ]
    stems = {charts.export_stem("demo-s026-cross-attention", view) for view in views}

    assert len(stems) == 3
    assert charts.export_stem("demo-s026-cross-attention", None) == "demo-s026-cross-attention"
    assert all(stem.startswith("demo-s026-cross-attention-layer-1-of-1-") for stem in stems)


@pytest.mark.parametrize(
    ("n", "noun", "expected"),
    [(1, "gloss", "1 gloss"), (2, "gloss", "2 glosses"), (1, "signer", "1 signer"), (3, "signer", "3 signers")],
)
def test_count_plurals(n, noun, expected):
    assert controls.count(n, noun) == expected
