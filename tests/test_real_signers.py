"""The whole pipeline on real signer recordings: import, validate, train, extract, open the dashboard.

Five sources go through every stage. Two are sentences composed from isolated
ASL and Swiss German signs, with exact gold spans. The others are
PHOENIX-2014T skeleton files, one PHOENIX MediaPipe `.pose` recording
(543 points, pixel coordinates) and the signbridge ASL sentences (576 points,
masked hands, automatic gold spans).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from benchmarks.real_signers import format_results, run_sources
from signattention_core.artifacts import Artifact

APP = str(Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py")
PAGES = ("overview.py", "sample.py", "alignment.py", "repeated.py", "concordance.py")
SOURCES = ("asl-concat", "sgg-concat", "phoenix14t-skels", "phoenix14t-pose", "signbridge")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_runs(real_data, tmp_path_factory):
    """Run every source through the pipeline once, with short training."""
    work = tmp_path_factory.mktemp("real-signers")
    results = run_sources(real_data, work, epochs=8, asl_sentences=20)
    print("\n" + format_results(results))
    return work, {result.name: result for result in results}


def open_page(root: Path, run: str, page: str, monkeypatch, **params: str) -> AppTest:
    monkeypatch.setenv("SIGNATTENTION_ARTIFACTS", str(root))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = run
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    if page != "overview.py":
        at.switch_page(page)
        at.query_params["run"] = run
        for name, value in params.items():
            at.query_params[name] = value
        at.run()
    return at


def test_every_source_yields_artifact(real_runs):
    _, results = real_runs
    assert tuple(results) == SOURCES
    for name, result in results.items():
        artifact = Artifact.open(result.artifact_dir)
        assert artifact.n_samples == result.n_extracted > 0, name
        assert 0.0 <= result.exact_match <= 1.0, name


def test_concat_sources_report_gold_mass(real_runs):
    _, results = real_runs
    for name in ("asl-concat", "sgg-concat"):
        gold = results[name].gold_mass
        assert gold is not None, name
        assert 0.0 <= gold <= 1.0, name


def test_pixel_coordinates_arrive_normalised(real_runs):
    _, results = real_runs
    for name in ("phoenix14t-pose", "signbridge"):
        artifact = Artifact.open(results[name].artifact_dir)
        pose = artifact.pose(0)
        # nose and shoulders stay in the frame, while legs may be extrapolated below it (y above 1)
        upper_body = pose[:, [0, 11, 12]]
        assert np.isfinite(upper_body).any(), name
        assert np.nanmin(upper_body) > 0.0, name
        assert np.nanmax(upper_body) < 1.0, name
        # pixel values would reach hundreds
        assert np.nanmax(pose) < 5.0, name


def test_signbridge_masked_hands_stay_missing(real_runs):
    _, results = real_runs
    artifact = Artifact.open(results["signbridge"].artifact_dir)
    hands = artifact.pose(0)[:, 501:543]
    assert np.isnan(hands).any()
    assert np.isfinite(hands).any()


def test_run_json_names_real_corpus(real_runs):
    _, results = real_runs
    run = json.loads((results["phoenix14t-skels"].artifact_dir / "run.json").read_text(encoding="utf-8"))
    assert run["corpus"]["name"] == "phoenix14t-skels"
    assert run["training_config"]["normalize"] == "shoulders"


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("page", PAGES)
def test_dashboard_page_renders(real_runs, source, page, monkeypatch):
    work, _ = real_runs
    at = open_page(work / "artifacts", source, page, monkeypatch)
    assert not at.exception, [item.value for item in at.exception]
    assert not at.error, [item.value for item in at.error]
    assert len(at.title) == 1


def test_sample_page_draws_gold_spans(real_runs, monkeypatch):
    work, results = real_runs
    artifact = Artifact.open(results["asl-concat"].artifact_dir)
    sample_id = artifact.samples(columns=["id"])["id"].iloc[0]
    at = open_page(work / "artifacts", "asl-concat", "sample.py", monkeypatch, sample=sample_id)
    specs = [chart.proto.spec for chart in at.get("vega_lite_chart")]
    assert any("Gold gloss spans" in spec for spec in specs)
