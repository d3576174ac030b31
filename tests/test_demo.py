"""The embedded demo run: the committed artifact and the command that rebuilds it."""

import json

import pytest

from signattention_core.artifacts import SCHEMA_VERSION, Artifact
from signattention_core.demo import build_demo, main

MAX_DEMO_BYTES = 20 * 2**20


def test_committed_demo_reads_with_current_schema(repo_root):
    artifact = Artifact.open(repo_root / "artifacts" / "demo")
    samples = artifact.samples(columns=["id", "exact_match", "gold_spans"])

    assert artifact.run["schema_version"] == SCHEMA_VERSION
    assert artifact.run["split"] == "test"
    assert len(samples) == artifact.n_samples
    assert artifact.n_samples > 100
    assert samples["gold_spans"].notna().all()
    assert artifact.pose(0) is not None
    assert artifact.attention(0).cross.ndim == 4


def test_committed_demo_fits_size_budget(repo_root):
    folder = repo_root / "artifacts" / "demo"
    total = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    assert total < MAX_DEMO_BYTES


def test_committed_demo_records_no_absolute_paths(repo_root):
    run = json.loads((repo_root / "artifacts" / "demo" / "run.json").read_text(encoding="utf-8"))
    assert run["corpus"]["path"] == "../../data/demo-corpus"
    assert run["run_dir"] == "../../runs/demo"


@pytest.mark.slow
def test_small_demo_builds_readable_artifact(tmp_path, repo_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = build_demo(
        seed=1,
        size="small",
        corpus_dir=tmp_path / "corpus",
        run_dir=tmp_path / "run",
        artifact_dir=tmp_path / "artifact",
        config=repo_root / "configs" / "demo.json",
        epochs=2,
    )
    artifact = Artifact.open(out)

    assert artifact.run["split"] == "test"
    assert artifact.n_samples == len(artifact.samples())
    assert (tmp_path / "run" / "best.pt").is_file()


def test_demo_command_rejects_unknown_size(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--size", "huge"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'huge'" in capsys.readouterr().err
