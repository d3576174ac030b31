"""Artifact writer and reader: round trip, row-group reads, sharding and failure messages."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from signattention_core import metrics as alignment
from signattention_core.artifacts import (
    EOS_TOKEN,
    HEAD_MEAN,
    POSE_POINTS,
    SCHEMA_VERSION,
    TRUNCATED_TOKEN,
    Artifact,
    ArtifactError,
    ArtifactWriter,
    SampleRecord,
    shard_folder,
)

L_ENC, L_DEC, H = 2, 1, 3


def stochastic(
    rng: np.random.Generator, shape: tuple[int, ...], causal: bool = False
) -> np.ndarray:
    """Random float32 matrices whose rows sum to 1, causal when asked."""
    weights = rng.random(shape) + 0.01
    if causal:
        weights = np.tril(weights)
    return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


def make_record(
    rng: np.random.Generator,
    sample_idx: int,
    n_glosses: int | None = None,
    n_positions: int | None = None,
    gold: bool = True,
) -> SampleRecord:
    P = int(rng.integers(3, 15)) if n_positions is None else n_positions
    n_hyp = int(rng.integers(1, 6)) if n_glosses is None else n_glosses
    N = n_hyp + 1
    hypothesis = [f"ΓΛΩΣΣΑ{j}" for j in range(n_hyp)]
    reference = ["ΕΓΩ(1)", "ΠΟΙΟΣ;", "ΕΝΟΧΛΩ_ΕΣΕΝΑ"]
    frame_index = np.arange(P) * 3
    n_frames = 3 * P + 1
    spans = [(0, P), (P, 2 * P), (2 * P, n_frames)] if gold else None
    return SampleRecord(
        sample_idx=sample_idx,
        id=f"police1_signer{sample_idx % 3}_rep1_sentences/sentences{sample_idx:04d}",
        split="test",
        signer=str(sample_idx % 3) if sample_idx % 4 else None,
        repetition=sample_idx % 5 if sample_idx % 4 else None,
        sentence_group=" ".join(reference),
        reference=" ".join(reference),
        hypothesis=" ".join(hypothesis),
        reference_tokens=reference,
        hypothesis_tokens=hypothesis,
        text="Ποιος με ενοχλεί;" if sample_idx % 2 else None,
        exact_match=False,
        sentence_bleu=float(rng.random() * 100),
        wer=float(rng.random()),
        frame_index=frame_index,
        n_frames=n_frames,
        fps=30.0 if sample_idx % 2 else None,
        gold_spans=spans,
        encoder_self=stochastic(rng, (L_ENC, H, P, P)),
        decoder_self=stochastic(rng, (L_DEC, H, N, N), causal=True),
        cross=stochastic(rng, (L_DEC, H, N, P)),
        self_norm=rng.random((L_DEC, N)).astype(np.float32),
        cross_norm=rng.random((L_DEC, N)).astype(np.float32),
        signed_diff=rng.standard_normal((L_DEC, N)).astype(np.float32),
    )


def make_run_info() -> dict:
    return {
        "run_name": "tiny",
        "run_dir": "runs/tiny",
        "model": {
            "d_model": 16,
            "nhead": H,
            "num_encoder_layers": L_ENC,
            "num_decoder_layers": L_DEC,
        },
        "training_config": {"batch_size": 4},
        "checkpoint_sha256": "ab" * 32,
        "corpus": {"name": "tiny", "path": "corpora/tiny"},
        "split": "test",
        "decoding": {"method": "greedy", "beam_size": 1, "max_len": 20},
        "vocabulary": ["<pad>", "<unk>", "<bos>", "<eos>", "ΕΓΩ(1)"],
        "summary": {"exact_match": 0.0, "bleu_4": float("nan")},
    }


def write(out: Path, records: list[SampleRecord], **kwargs) -> Path:
    with ArtifactWriter(out, make_run_info(), **kwargs) as writer:
        for record in records:
            writer.add_sample(record)
    return out


@pytest.fixture
def records() -> list[SampleRecord]:
    rng = np.random.default_rng(7)
    return [make_record(rng, i) for i in range(12)]


@pytest.fixture
def artifact_dir(tmp_path, records) -> Path:
    return write(tmp_path / "run", records, flush_bytes=4000)


def test_samples_round_trip(artifact_dir, records):
    samples = Artifact.open(artifact_dir).samples()
    assert len(samples) == len(records)
    for record, (_, row) in zip(records, samples.iterrows(), strict=True):
        assert row["sample_idx"] == record.sample_idx
        assert row["id"] == record.id
        assert row["hypothesis"] == record.hypothesis
        assert list(row["reference_tokens"]) == record.reference_tokens
        assert list(row["hypothesis_tokens"]) == record.hypothesis_tokens
        assert row["sentence_bleu"] == record.sentence_bleu
        assert row["wer"] == record.wer
        assert row["n_frames"] == record.n_frames
        assert row["n_positions"] == record.frame_index.size
        np.testing.assert_array_equal(row["frame_index"], record.frame_index)
        assert [list(span) for span in row["gold_spans"]] == [
            list(span) for span in record.gold_spans
        ]
        if record.signer is None:
            assert samples.isna().loc[record.sample_idx, "signer"]
        else:
            assert row["signer"] == record.signer
        if record.fps is None:
            assert np.isnan(row["fps"])
        else:
            assert row["fps"] == record.fps


def test_attention_round_trip_exact(artifact_dir, records):
    artifact = Artifact.open(artifact_dir)
    for record in records:
        sample = artifact.attention(record.sample_idx)
        np.testing.assert_array_equal(sample.encoder_self, record.encoder_self)
        np.testing.assert_array_equal(sample.decoder_self, record.decoder_self)
        np.testing.assert_array_equal(sample.cross, record.cross)
        assert sample.encoder_self.dtype == np.float32
        assert sample.tokens == record.hypothesis_tokens + [EOS_TOKEN]
        np.testing.assert_array_equal(sample.frame_index, record.frame_index)


def test_attention_reads_only_its_row_group(artifact_dir, records, monkeypatch):
    artifact = Artifact.open(artifact_dir)
    metadata = pq.read_metadata(artifact_dir / "attention.parquet")
    assert metadata.num_row_groups > 2

    ranges = []
    for g in range(metadata.num_row_groups):
        stats = metadata.row_group(g).column(0).statistics  # sample_idx
        ranges.append((stats.min, stats.max))
    samples = artifact.samples()
    for _, row in samples.iterrows():
        holding = [g for g, (lo, hi) in enumerate(ranges) if lo <= row["sample_idx"] <= hi]
        assert holding == [row["attention_row_group"]]

    requested = []
    real_read = pq.ParquetFile.read_row_groups

    def recording_read(self, row_groups, *args, **kwargs):
        requested.append(list(row_groups))
        return real_read(self, row_groups, *args, **kwargs)

    artifact.attention(0)  # loads the samples index
    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", recording_read)
    monkeypatch.setattr(pq, "read_table", None)  # any full-table read would fail
    artifact.attention(5)
    assert requested == [[int(samples.loc[5, "attention_row_group"])]]


def test_attention_written_before_close(tmp_path, records):
    writer = ArtifactWriter(tmp_path / "run", make_run_info(), flush_bytes=4000)
    for record in records:
        writer.add_sample(record)
    written_before_close = (writer.tmp_dir / "attention.parquet").stat().st_size
    writer.close()
    assert written_before_close > 4000


def test_metrics_match_recomputation(artifact_dir, records):
    artifact = Artifact.open(artifact_dir)
    metrics = artifact.metrics()
    assert len(metrics) == len(records) * L_DEC * (H + 1)
    for record in records[:4]:
        cross = artifact.attention(record.sample_idx).cross.astype(np.float64)  # (L, H, N, P)
        n = len(record.hypothesis_tokens)
        for head in [HEAD_MEAN, *range(H)]:
            matrix = cross[0].mean(axis=0) if head == HEAD_MEAN else cross[0, head]
            expected = alignment.alignment_metrics(
                matrix[:n], record.gold_spans, record.frame_index
            )
            row = metrics[
                (metrics["sample_idx"] == record.sample_idx) & (metrics["head"] == head)
            ].iloc[0]
            assert row["n_glosses"] == n
            for name in alignment.METRIC_NAMES:
                assert row[name] == pytest.approx(expected[name], rel=1e-12, nan_ok=True), name


def test_metrics_null_for_short_hypotheses(tmp_path):
    rng = np.random.default_rng(3)
    records = [
        make_record(rng, 0, n_glosses=0),
        make_record(rng, 1, n_glosses=1),
        make_record(rng, 2, n_glosses=3, gold=False),
    ]
    metrics = Artifact.open(write(tmp_path / "run", records)).metrics(head=HEAD_MEAN)

    empty, single, plain = (metrics.iloc[i] for i in range(3))
    assert empty[list(alignment.METRIC_NAMES)].isna().all()
    assert np.isnan(single["centroid_spearman"])
    assert np.isnan(single["centroid_monotonic_share"])
    assert not np.isnan(single["band_diagonality"])
    assert not np.isnan(single["gold_mass"])
    assert np.isnan(plain["gold_mass"])
    assert not np.isnan(plain["centroid_monotonic_share"])


def test_contributions_round_trip(artifact_dir, records):
    artifact = Artifact.open(artifact_dir)
    contributions = artifact.contributions()
    assert "profile" not in contributions.columns
    assert len(contributions) == sum(len(r.hypothesis_tokens) + 1 for r in records) * L_DEC

    record = records[3]
    rows = contributions[contributions.sample_idx == 3]
    assert list(rows["token"]) == record.hypothesis_tokens + [EOS_TOKEN]
    assert list(rows["is_eos"]) == [False] * len(record.hypothesis_tokens) + [True]
    assert list(rows["is_final"]) == [False] * len(record.hypothesis_tokens) + [True]
    np.testing.assert_array_equal(rows["self_norm"], record.self_norm[0])
    np.testing.assert_array_equal(rows["signed_diff"], record.signed_diff[0])
    share = record.cross_norm[0].astype(np.float64) / (
        record.self_norm[0].astype(np.float64) + record.cross_norm[0]
    )
    np.testing.assert_allclose(rows["cross_share"], share, rtol=1e-6)

    mean = record.cross[0].astype(np.float64).mean(axis=0)  # (N, P)
    np.testing.assert_allclose(rows["centroid"], alignment.centroids(mean), rtol=1e-6)
    np.testing.assert_allclose(rows["entropy"], alignment.row_normalized_entropy(mean), rtol=1e-5)


def test_step_profiles_mean_and_head(artifact_dir, records):
    artifact = Artifact.open(artifact_dir)
    keys, profiles = artifact.step_profiles(layer=0)
    assert profiles.shape == (len(keys), alignment.PROFILE_BINS)
    assert list(keys.columns) == ["sample_idx", "layer", "step", "token", "is_eos", "is_final"]

    record = records[2]
    rows = (keys.sample_idx == 2).to_numpy()
    mean = record.cross[0].astype(np.float64).mean(axis=0)  # (N, P)
    np.testing.assert_allclose(profiles[rows], alignment.resample_rows(mean), rtol=1e-5, atol=1e-7)

    _, head_profiles = artifact.step_profiles(layer=0, head=2)
    np.testing.assert_allclose(
        head_profiles[rows], alignment.resample_rows(record.cross[0, 2]), rtol=1e-5, atol=1e-7
    )

    with pytest.raises(ValueError, match="head 5 is outside 0..2"):
        artifact.step_profiles(layer=0, head=5)


def test_run_json_contents(artifact_dir):
    run = Artifact.open(artifact_dir).run
    assert run["schema_version"] == SCHEMA_VERSION
    assert run["n_samples"] == 12
    assert run["summary"]["n_samples"] == 12
    assert run["summary"]["bleu_4"] is None
    assert run["files"]["attention"] == ["attention.parquet"]
    assert run["created"].endswith("+00:00")
    assert run["package_version"]


def test_schema_version_mismatch_message(artifact_dir):
    run_path = artifact_dir / "run.json"
    run = json.loads(run_path.read_text(encoding="utf-8"))
    run["schema_version"] = 2
    run_path.write_text(json.dumps(run), encoding="utf-8")
    with pytest.raises(
        ArtifactError, match=r"run\.json has schema version 2, but .* reads schema version 1"
    ):
        Artifact.open(artifact_dir)


def test_damaged_file_message(artifact_dir):
    path = artifact_dir / "attention.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"attention\.parquet is not a readable Parquet file"):
        Artifact.open(artifact_dir)


def test_missing_column_message(artifact_dir):
    path = artifact_dir / "metrics.parquet"
    table = pq.read_table(path).drop_columns(["gold_mass"])
    pq.write_table(table, path)
    with pytest.raises(ArtifactError, match=r"metrics\.parquet has no column 'gold_mass'"):
        Artifact.open(artifact_dir)


def test_wrong_column_type_message(artifact_dir):
    path = artifact_dir / "samples.parquet"
    table = pq.read_table(path)
    table = table.set_column(
        table.schema.get_field_index("wer"), "wer", table.column("wer").cast(pa.float32())
    )
    pq.write_table(table, path)
    with pytest.raises(
        ArtifactError, match=r"samples\.parquet column 'wer' has type float, expected double"
    ):
        Artifact.open(artifact_dir)


def test_missing_folder_and_run_json(tmp_path, artifact_dir):
    with pytest.raises(ArtifactError, match="not found; run extract.py"):
        Artifact.open(tmp_path / "absent")
    (artifact_dir / "run.json").unlink()
    with pytest.raises(ArtifactError, match=r"run\.json not found"):
        Artifact.open(artifact_dir)


def test_invalid_run_json_message(artifact_dir):
    (artifact_dir / "run.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"run\.json is not valid JSON"):
        Artifact.open(artifact_dir)


def test_unknown_sample_idx(artifact_dir):
    with pytest.raises(ArtifactError, match="sample_idx 99 not found"):
        Artifact.open(artifact_dir).attention(99)


def test_no_overwrite_without_force(artifact_dir, records):
    with pytest.raises(ArtifactError, match="already exists; pass force=True"):
        ArtifactWriter(artifact_dir, make_run_info())

    write(artifact_dir, records[:2], force=True)
    assert Artifact.open(artifact_dir).n_samples == 2
    assert sorted(p.name for p in artifact_dir.parent.iterdir()) == ["run"]


def test_failed_block_leaves_nothing(tmp_path, records):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="stop"):
        with ArtifactWriter(out, make_run_info()) as writer:
            writer.add_sample(records[0])
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_failed_background_write_raises(tmp_path, records, monkeypatch):
    real_write = pq.ParquetWriter.write_table

    def failing_write(self, table, *args, **kwargs):
        if "weights" in table.column_names:
            raise OSError("No space left on device")
        return real_write(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing_write)
    out = tmp_path / "run"
    with pytest.raises(OSError, match="No space left"):
        write(out, records, flush_bytes=4000)
    assert list(tmp_path.iterdir()) == []


def test_killed_write_not_readable(tmp_path, repo_root):
    out = tmp_path / "run"
    script = f"""
import os, sys
import numpy as np
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_artifacts import make_record, make_run_info
from signattention_core.artifacts import ArtifactWriter
rng = np.random.default_rng(0)
writer = ArtifactWriter({str(out)!r}, make_run_info(), flush_bytes=1000)
for i in range(5):
    writer.add_sample(make_record(rng, i))
os._exit(1)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=repo_root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert not out.exists()

    leftovers = list(tmp_path.glob("run.tmp-*"))
    assert len(leftovers) == 1
    with pytest.raises(ArtifactError, match="interrupted write"):
        Artifact.open(leftovers[0])


def test_record_validation_messages(tmp_path):
    rng = np.random.default_rng(5)
    writer = ArtifactWriter(tmp_path / "run", make_run_info())

    record = make_record(rng, 0, n_glosses=2, n_positions=6)
    record.cross = record.cross[:, :, :, :5]
    with pytest.raises(
        ArtifactError, match=r"sample 0 .* cross has shape \(1, 3, 3, 5\), expected \(1, 3, 3, 6\)"
    ):
        writer.add_sample(record)

    record = make_record(rng, 0, n_glosses=2)
    record.encoder_self = record.encoder_self * 2
    with pytest.raises(ArtifactError, match="encoder_self layer 0 head 0 row 0 sums to"):
        writer.add_sample(record)

    record = make_record(rng, 0, n_glosses=2)
    record.decoder_self = stochastic(rng, record.decoder_self.shape)
    with pytest.raises(ArtifactError, match="weight above the diagonal"):
        writer.add_sample(record)

    record = make_record(rng, 0, n_glosses=2)
    record.frame_index = record.frame_index.copy()
    record.frame_index[-1] = -1
    with pytest.raises(ArtifactError, match="remove padding positions"):
        writer.add_sample(record)

    record = make_record(rng, 0, n_glosses=2)
    record.gold_spans = record.gold_spans[:2]
    with pytest.raises(ArtifactError, match="2 gold spans for 3 reference glosses"):
        writer.add_sample(record)

    writer.add_sample(make_record(rng, 0))
    with pytest.raises(ArtifactError, match="strictly increasing sample_idx"):
        writer.add_sample(make_record(rng, 0))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_missing_run_info_keys(tmp_path):
    run_info = make_run_info()
    del run_info["checkpoint_sha256"]
    with pytest.raises(ArtifactError, match="run_info is missing checkpoint_sha256"):
        ArtifactWriter(tmp_path / "run", run_info)


def test_sample_idx_must_be_dense(tmp_path):
    rng = np.random.default_rng(2)
    with pytest.raises(ArtifactError, match="densely from 0 to 1"):
        write(tmp_path / "run", [make_record(rng, 0), make_record(rng, 2)])
    assert list(tmp_path.iterdir()) == []


def write_parts(out: Path, records: list[SampleRecord], n_parts: int) -> None:
    for part in range(n_parts):
        writer = ArtifactWriter(out, make_run_info(), part=part, n_parts=n_parts, flush_bytes=3000)
        for record in records[part::n_parts]:
            writer.add_sample(record)
        writer.close()


def test_sharded_parts_read_as_one(tmp_path, records):
    out = tmp_path / "run"
    write_parts(out, records, n_parts=2)
    assert not out.exists()

    def summarize(samples):
        return {"n_seen": len(samples), "first_id": samples["id"].iloc[0]}

    ArtifactWriter.finalize_parts(out, make_run_info(), n_parts=2, summarize=summarize)
    artifact = Artifact.open(out)
    assert artifact.run["files"]["attention"] == [
        "attention-part-00000.parquet",
        "attention-part-00001.parquet",
    ]
    assert artifact.run["summary"] == {"n_seen": 12, "first_id": records[0].id, "n_samples": 12}
    assert not shard_folder(out).exists()

    samples = artifact.samples()
    assert list(samples["sample_idx"]) == list(range(12))
    assert list(samples["id"]) == [r.id for r in records]
    assert set(samples["attention_file"]) == {
        "attention-part-00000.parquet",
        "attention-part-00001.parquet",
    }
    for record in records[:4]:
        np.testing.assert_array_equal(artifact.attention(record.sample_idx).cross, record.cross)
    assert len(artifact.metrics()) == 12 * L_DEC * (H + 1)


def test_sharded_unfinished_part_rejected(tmp_path, records):
    out = tmp_path / "run"
    write_parts(out, records, n_parts=2)
    (shard_folder(out) / "part-00001.json").unlink()
    with pytest.raises(ArtifactError, match=r"parts \[1\] of 2 did not finish"):
        ArtifactWriter.finalize_parts(out, make_run_info(), n_parts=2)


def test_sharded_duplicate_idx_rejected(tmp_path, records):
    out = tmp_path / "run"
    for part in range(2):
        writer = ArtifactWriter(out, make_run_info(), part=part, n_parts=2)
        writer.add_sample(records[0])
        writer.close()
    with pytest.raises(ArtifactError, match=r"duplicates: \[0\]"):
        ArtifactWriter.finalize_parts(out, make_run_info(), n_parts=2)


def test_sharded_stale_parts_removed(tmp_path, records):
    out = tmp_path / "run"
    write_parts(out, records, n_parts=3)
    for table in ("samples", "attention"):
        (shard_folder(out) / f"{table}-part-00002.parquet").rename(
            shard_folder(out) / f"{table}-part-00007.parquet"
        )
    write_parts(out, records, n_parts=2)
    ArtifactWriter.finalize_parts(out, make_run_info(), n_parts=2)
    assert Artifact.open(out).n_samples == 12


def test_missing_part_file_rejected(tmp_path, records):
    out = tmp_path / "run"
    write_parts(out, records, n_parts=2)
    ArtifactWriter.finalize_parts(out, make_run_info(), n_parts=2)
    (out / "contributions-part-00001.parquet").unlink()
    with pytest.raises(
        ArtifactError, match=r"contributions-part-00001\.parquet listed in run\.json not found"
    ):
        Artifact.open(out)


def test_modules_import_without_torch(repo_root):
    code = "import sys, signattention_core.artifacts, signattention_core.metrics; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def spike_record(
    rng, sample_idx: int, group: str, hypothesis: list[str], at: list[int]
) -> SampleRecord:
    """A record whose cross-attention row i (every head) is a spike at position at[i]."""
    record = make_record(rng, sample_idx, n_glosses=len(hypothesis), n_positions=10, gold=False)
    record.sentence_group = group
    record.reference_tokens = ["A", "B"]
    record.hypothesis_tokens = hypothesis
    cross = np.zeros((L_DEC, H, len(hypothesis) + 1, 10), dtype=np.float32)  # (L, H, N, P)
    for i, position in enumerate(at):
        cross[:, :, i, position] = 1.0
    cross[:, :, -1, :] = 0.1
    record.cross = cross
    return record


def test_repetition_consistency_known_shifts(tmp_path):
    rng = np.random.default_rng(11)
    records = [
        spike_record(rng, 0, "A B", ["A", "B"], [2, 7]),
        spike_record(rng, 1, "A B", ["A", "B"], [5, 8]),
        spike_record(rng, 2, "A B", ["A", "C"], [6, 1]),
        spike_record(rng, 3, "A D", ["A", "B"], [0, 9]),
    ]
    artifact = Artifact.open(write(tmp_path / "run", records))
    table = artifact.repetition_consistency(layer=0)

    assert list(table["gloss"]) == ["A", "B"]
    first, second = table.iloc[0], table.iloc[1]
    assert first["n_performances"] == 3
    assert first["sample_idx"] == [0, 1, 2]

    # a spike at position t of 10 fills bins 10t..10t+9, so positions shift by tenths of the video
    assert first["consistency"] == pytest.approx((0.3 + 0.4 + 0.1) / 3)
    assert second["sample_idx"] == [0, 1]
    assert second["consistency"] == pytest.approx(0.1)

    per_head = artifact.repetition_consistency(layer=0, head=1)
    assert list(per_head["consistency"]) == pytest.approx(list(table["consistency"]))


def test_step_profiles_unknown_layer(artifact_dir):
    with pytest.raises(ValueError, match="decoder layer 4 has no steps"):
        Artifact.open(artifact_dir).step_profiles(layer=4)


def test_truncated_hypothesis_final_step(tmp_path):
    rng = np.random.default_rng(4)
    cut = make_record(rng, 1, n_glosses=3)
    cut.ends_with_eos = False
    artifact = Artifact.open(write(tmp_path / "run", [make_record(rng, 0, n_glosses=3), cut]))

    assert list(artifact.samples()["ends_with_eos"]) == [True, False]
    assert artifact.attention(1).tokens == cut.hypothesis_tokens + [TRUNCATED_TOKEN]
    assert artifact.attention(1).ends_with_eos is False

    final = artifact.contributions().groupby("sample_idx").last()
    assert list(final["token"]) == [EOS_TOKEN, TRUNCATED_TOKEN]
    assert list(final["is_eos"]) == [True, False]
    assert list(final["is_final"]) == [True, True]
    assert list(artifact.metrics(head=HEAD_MEAN)["n_glosses"]) == [3, 3]


def test_pose_round_trip_keeps_body_and_hands(tmp_path):
    rng = np.random.default_rng(7)
    with_pose = make_record(rng, 0)
    pose = rng.random((with_pose.n_frames, 543, 3)).astype(np.float32)
    pose[2, 510] = np.nan
    with_pose.pose = pose
    without_pose = make_record(rng, 1)
    artifact = Artifact.open(write(tmp_path / "poses", [with_pose, without_pose]))

    stored = artifact.pose(0)
    assert stored.shape == (with_pose.n_frames, 543, 2)
    kept = POSE_POINTS.astype(int)
    np.testing.assert_allclose(stored[:, kept], pose[:, kept, :2], atol=1e-3)
    assert np.isnan(stored[2, 510]).all()
    assert np.isnan(stored[:, 33:501]).all()
    assert artifact.pose(1) is None


def test_pose_frame_count_mismatch_rejected(tmp_path):
    record = make_record(np.random.default_rng(8), 0)
    record.pose = np.zeros((record.n_frames + 2, 543, 3), dtype=np.float32)
    with pytest.raises(ArtifactError, match=r"pose has \d+ frames but n_frames is \d+"):
        write(tmp_path / "bad", [record])


def test_force_keeps_non_artifact_folder(tmp_path, records):
    # a training run folder given as --out by mistake
    run_dir = tmp_path / "runs" / "tiny"
    run_dir.mkdir(parents=True)
    (run_dir / "best.pt").write_bytes(b"weights")
    stray_file = tmp_path / "notes.txt"
    stray_file.write_text("keep", encoding="utf-8")

    for out in (run_dir, stray_file):
        with pytest.raises(ArtifactError, match="not an artifact folder"):
            write(out, records[:1], force=True)
    assert (run_dir / "best.pt").read_bytes() == b"weights"
    assert stray_file.read_text(encoding="utf-8") == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "runs"]


def test_force_fills_empty_folder(tmp_path, records):
    out = tmp_path / "empty"
    out.mkdir()
    write(out, records[:2], force=True)
    assert Artifact.open(out).n_samples == 2


def test_out_inside_artifact_rejected(artifact_dir, records):
    with pytest.raises(ArtifactError, match="lies inside the artifact folder"):
        write(artifact_dir / "nested", records[:1])
    with pytest.raises(ArtifactError, match="lies inside the artifact folder"):
        write(artifact_dir / "nested", records[:1], force=True)
    assert not (artifact_dir / "nested").exists()
    assert Artifact.open(artifact_dir).n_samples == len(records)


def test_replaced_artifact_not_mixed(artifact_dir, records):
    opened = Artifact.open(artifact_dir)
    opened.attention(0)
    write(artifact_dir, records[:2], force=True)

    # the old run.json must not be paired with the new tables
    for read in (opened.samples, opened.metrics, lambda: opened.attention(1), lambda: opened.pose(0)):
        with pytest.raises(ArtifactError, match="replaced or changed after it was opened"):
            read()
    assert Artifact.open(artifact_dir).n_samples == 2


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("n_samples", "12", "has n_samples '12', expected a positive integer"),
        ("files", "samples.parquet", "lists no files for table 'samples'"),
        (
            "files",
            {"samples": ["samples.parquet", "samples.parquet"]},
            "expected a list of distinct file names",
        ),
        ("files", {"samples": "samples.parquet"}, "expected a list of distinct file names"),
    ],
)
def test_run_json_entries_validated(artifact_dir, key, value, message):
    run_path = artifact_dir / "run.json"
    run = json.loads(run_path.read_text(encoding="utf-8"))
    if isinstance(value, dict):
        value = {**run["files"], **value}
    run[key] = value
    run_path.write_text(json.dumps(run), encoding="utf-8")
    with pytest.raises(ArtifactError, match=message):
        Artifact.open(artifact_dir)
