"""Artifact schema, writer and reader: one extraction run as Parquet tables plus run.json.

An artifact folder contains `run.json` and four tables: `samples`, `attention`,
`contributions` and `metrics` (docs/artifacts.md lists every column). A single
process writes `<table>.parquet`; sharded extraction writes one
`<table>-part-<rank:05d>.parquet` per process, and the reader treats the parts
as one table. This module is the only code that writes or reads the tables,
so the extraction and the dashboard cannot disagree about a column.

Shape letters: L layers, H heads, P positions, N decoder steps (hypothesis
glosses plus the EOS step), T time bins of a profile.

The module imports numpy, pandas and pyarrow but never torch, because the
dashboard imports it.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from signattention_core import holistic
from signattention_core import metrics as alignment

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

# table names, in the order they are written and checked
TABLES: tuple[str, ...] = ("samples", "attention", "contributions", "metrics", "poses")

# attention modules, in the order their rows are stored for each sample
MODULES: tuple[str, ...] = ("encoder_self", "decoder_self", "cross")

# label of the final decoding step when it predicted EOS
EOS_TOKEN = "<eos>"

# label of the final step of a hypothesis cut at max_len: the step after the
# last kept gloss, which predicts a token the decoder never emitted
TRUNCATED_TOKEN = "<truncated>"

# `head` value of rows computed on the mean-over-heads matrix
HEAD_MEAN = -1

# time bins of each step profile
PROFILE_BINS = alignment.PROFILE_BINS

# rows must sum to 1 within this tolerance to count as softmax output
ROW_SUM_TOLERANCE = 1e-3

# upper-triangle weight above this in decoder self-attention means the causal mask was lost
CAUSAL_TOLERANCE = 1e-6

# buffered bytes of one table after which the writer writes a row group
DEFAULT_FLUSH_BYTES = 2 * 2**20

# keys the caller must put in run_info; the writer adds schema_version,
# package_version, created, n_samples and files
REQUIRED_RUN_KEYS: tuple[str, ...] = (
    "run_name",
    "run_dir",
    "model",
    "training_config",
    "checkpoint_sha256",
    "corpus",
    "split",
    "decoding",
    "vocabulary",
    "summary",
)

RUN_FILE = "run.json"
SHARD_FOLDER_SUFFIX = ".tmp-shards"
_PART_PATTERN = re.compile(r"^(?P<table>[a-z]+)-part-(?P<part>\d{5})\.parquet$")

_MODULE_TYPE = pa.dictionary(pa.int8(), pa.string())
_MODULE_DICTIONARY = pa.array(MODULES, pa.string())

SAMPLES_SCHEMA = pa.schema(
    [
        ("sample_idx", pa.int32()),
        ("id", pa.string()),
        ("split", pa.string()),
        ("signer", pa.string()),
        ("repetition", pa.int32()),
        ("sentence_group", pa.string()),
        ("text", pa.string()),
        ("reference", pa.string()),
        ("hypothesis", pa.string()),
        ("reference_tokens", pa.list_(pa.string())),
        ("hypothesis_tokens", pa.list_(pa.string())),
        ("n_reference", pa.int32()),
        ("n_hypothesis", pa.int32()),
        ("exact_match", pa.bool_()),
        ("sentence_bleu", pa.float64()),
        ("wer", pa.float64()),
        ("n_positions", pa.int32()),
        ("frame_index", pa.list_(pa.int32())),
        ("n_frames", pa.int32()),
        ("fps", pa.float32()),
        ("gold_spans", pa.list_(pa.list_(pa.int32()))),
        ("n_encoder_layers", pa.int16()),
        ("n_decoder_layers", pa.int16()),
        ("n_heads", pa.int16()),
        ("ends_with_eos", pa.bool_()),
        ("attention_file", pa.string()),
        ("attention_row_group", pa.int32()),
    ]
)

ATTENTION_SCHEMA = pa.schema(
    [
        ("sample_idx", pa.int32()),
        ("module", _MODULE_TYPE),
        ("layer", pa.int16()),
        ("head", pa.int16()),
        ("n_rows", pa.int32()),
        ("n_cols", pa.int32()),
        ("weights", pa.list_(pa.float32())),
    ]
)

CONTRIBUTIONS_SCHEMA = pa.schema(
    [
        ("sample_idx", pa.int32()),
        ("layer", pa.int16()),
        ("step", pa.int16()),
        ("token", pa.string()),
        ("is_eos", pa.bool_()),
        ("is_final", pa.bool_()),
        ("self_norm", pa.float32()),
        ("cross_norm", pa.float32()),
        ("cross_share", pa.float32()),
        ("signed_diff", pa.float32()),
        ("centroid", pa.float32()),
        ("entropy", pa.float32()),
        ("effective_width", pa.float32()),
        ("profile", pa.list_(pa.float32())),
        ("head_profiles", pa.list_(pa.float32())),
    ]
)

METRICS_SCHEMA = pa.schema(
    [
        ("sample_idx", pa.int32()),
        ("layer", pa.int16()),
        ("head", pa.int16()),
        ("n_glosses", pa.int32()),
    ]
    + [(name, pa.float64()) for name in alignment.METRIC_NAMES]
)

# keypoints kept for the dashboard's pose player: body and both hands, in canonical order
POSE_POINTS: np.ndarray = np.array(
    holistic.component_indices(["body", "left_hand", "right_hand"]), dtype=np.int16
)

POSES_SCHEMA = pa.schema(
    [
        ("sample_idx", pa.int32()),
        ("n_frames", pa.int32()),
        ("points", pa.list_(pa.int16())),
        ("xy", pa.list_(pa.float16())),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "samples": SAMPLES_SCHEMA,
    "attention": ATTENTION_SCHEMA,
    "contributions": CONTRIBUTIONS_SCHEMA,
    "metrics": METRICS_SCHEMA,
    "poses": POSES_SCHEMA,
}

# columns stored with byte-stream-split encoding, which compresses float weights better under zstd
_FLOAT_LIST_COLUMNS: dict[str, list[str]] = {
    "samples": [],
    "attention": ["weights.list.element"],
    "contributions": ["profile.list.element", "head_profiles.list.element"],
    "metrics": [],
    "poses": [],
}

# columns worth dictionary encoding: few distinct values
_DICTIONARY_COLUMNS: dict[str, list[str]] = {
    "samples": ["split", "signer", "sentence_group", "attention_file"],
    "attention": ["module"],
    "contributions": ["token"],
    "metrics": [],
    "poses": [],
}

_PROFILE_COLUMNS = ("profile", "head_profiles")


class ArtifactError(ValueError):
    """An artifact folder or a record that cannot be written or read; the message names the file and the fix."""


@dataclass
class SampleRecord:
    """Everything extraction captured for one sample, as passed to `ArtifactWriter.add_sample`.

    N is `len(hypothesis_tokens) + 1`: the last decoder step predicts EOS.
    Attention weights are per head, with padding removed, never averaged.
    """

    sample_idx: int  # dense 0-based index, global across shards
    id: str  # corpus sample id
    split: str  # corpus split the sample came from
    signer: str | None  # signer id, None when the corpus has none
    repetition: int | None  # repetition number, None when the corpus has none
    sentence_group: str  # samples with the same reference gloss sequence share it
    reference: str  # annotated glosses, space-separated
    hypothesis: str  # predicted glosses, space-separated
    reference_tokens: list[str]  # annotated glosses
    hypothesis_tokens: list[str]  # predicted glosses, without BOS and EOS
    text: str | None  # spoken-language translation, None when the corpus has none
    exact_match: bool  # hypothesis_tokens == reference_tokens
    sentence_bleu: float  # sentence BLEU of this sample, 0-100
    wer: float  # word error rate of this sample
    frame_index: np.ndarray  # (P,) raw frame index of each encoder position
    n_frames: int  # raw frame count of the sample
    fps: float | None  # frames per second, None when unknown
    gold_spans: list[tuple[int, int]] | None  # [start, end) raw frames per reference gloss
    encoder_self: np.ndarray  # (L_enc, H, P, P)
    decoder_self: np.ndarray  # (L_dec, H, N, N)
    cross: np.ndarray  # (L_dec, H, N, P)
    self_norm: np.ndarray  # (L_dec, N) norm of the self-attention block output per step
    cross_norm: np.ndarray  # (L_dec, N) norm of the cross-attention block output per step
    signed_diff: np.ndarray  # (L_dec, N) the study's signed mean difference per step
    ends_with_eos: bool = True  # False when decoding stopped at max_len, so step N-1 is not EOS
    pose: np.ndarray | None = None  # (F, 543, C) raw pose; body and hand x, y are kept for the pose player


def final_token(ends_with_eos: bool) -> str:
    """Return the label of a sample's final decoding step."""
    return EOS_TOKEN if ends_with_eos else TRUNCATED_TOKEN


@dataclass
class SampleAttention:
    """All attention weights of one sample, per layer and head, as stored (float32)."""

    sample_idx: int  # dense index of the sample
    id: str  # corpus sample id
    tokens: list[str]  # N step labels: hypothesis glosses, then EOS_TOKEN or TRUNCATED_TOKEN
    reference_tokens: list[str]  # annotated glosses
    frame_index: np.ndarray  # (P,) raw frame index of each encoder position
    encoder_self: np.ndarray  # (L_enc, H, P, P)
    decoder_self: np.ndarray  # (L_dec, H, N, N)
    cross: np.ndarray  # (L_dec, H, N, P)
    ends_with_eos: bool = True  # False when decoding stopped at max_len

    def module(self, name: str) -> np.ndarray:
        """Return the (L, H, rows, cols) weights of one module by name."""
        if name not in MODULES:
            raise ValueError(
                f"unknown attention module {name!r}; expected one of {', '.join(MODULES)}"
            )
        return getattr(self, name)

    def mean_over_heads(self, name: str) -> np.ndarray:
        """Return one module's weights averaged over heads, (L, rows, cols) float64."""
        return self.module(name).astype(np.float64).mean(axis=1)


# ----------------------------------------------------------------------------
# record checks and rows


def _check_weights(
    record: SampleRecord, name: str, array: np.ndarray, shape: tuple[int, ...]
) -> np.ndarray:
    """Validate one attention array of a record and return it as C-ordered float32."""
    where = f"sample {record.sample_idx} ({record.id!r}) {name}"
    array = np.asarray(array)
    if array.shape != shape:
        raise ArtifactError(
            f"{where} has shape {array.shape}, expected {shape}; remove padding before add_sample"
        )
    if not np.all(np.isfinite(array)):
        raise ArtifactError(f"{where} contains NaN or infinite weights")
    if array.size == 0:
        return np.ascontiguousarray(array, dtype=np.float32)
    if array.min() < 0:
        raise ArtifactError(f"{where} contains negative weights; pass softmax output, not logits")

    sums = array.sum(axis=-1, dtype=np.float64)  # (L, H, rows)
    bad = np.argwhere(np.abs(sums - 1.0) > ROW_SUM_TOLERANCE)
    if bad.size:
        layer, head, row = bad[0]
        raise ArtifactError(
            f"{where} layer {layer} head {head} row {row} sums to {sums[layer, head, row]:.6g}, not 1 "
            f"({len(bad)} such rows); "
            "pass per-head softmax weights with padding rows and columns removed"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_record(record: SampleRecord) -> dict[str, np.ndarray]:
    """Validate a record's shapes and values; return its arrays in storage dtypes."""
    where = f"sample {record.sample_idx} ({record.id!r})"
    N = len(record.hypothesis_tokens) + 1
    frame_index = np.asarray(record.frame_index)
    if frame_index.ndim != 1 or frame_index.size == 0:
        raise ArtifactError(
            f"{where} frame_index must be a non-empty 1-D array, got shape {frame_index.shape}"
        )
    P = frame_index.size
    if not np.issubdtype(frame_index.dtype, np.integer):
        raise ArtifactError(f"{where} frame_index has dtype {frame_index.dtype}, expected integers")
    if frame_index.min() < 0 or frame_index.max() >= record.n_frames:
        raise ArtifactError(
            f"{where} frame_index spans {frame_index.min()}..{frame_index.max()}, "
            f"outside the sample's {record.n_frames} raw frames; remove padding positions (-1) first"
        )
    if np.any(np.diff(frame_index) < 0):
        raise ArtifactError(f"{where} frame_index decreases; positions must be in time order")

    encoder_self = np.asarray(record.encoder_self)
    cross = np.asarray(record.cross)
    if encoder_self.ndim != 4 or cross.ndim != 4:
        raise ArtifactError(
            f"{where} encoder_self and cross must be 4-D (L, H, rows, cols), "
            f"got shapes {encoder_self.shape} and {cross.shape}"
        )
    L_enc, H = encoder_self.shape[:2]
    L_dec = cross.shape[0]
    if L_enc == 0 or L_dec == 0 or H == 0:
        raise ArtifactError(
            f"{where} has no layers or heads: encoder_self {encoder_self.shape}, cross {cross.shape}"
        )

    arrays = {
        "encoder_self": _check_weights(record, "encoder_self", encoder_self, (L_enc, H, P, P)),
        "decoder_self": _check_weights(
            record, "decoder_self", record.decoder_self, (L_dec, H, N, N)
        ),
        "cross": _check_weights(record, "cross", cross, (L_dec, H, N, P)),
        "frame_index": frame_index.astype(np.int32),
    }
    upper = np.triu(np.ones((N, N), dtype=bool), k=1)
    if N > 1 and arrays["decoder_self"][..., upper].max() > CAUSAL_TOLERANCE:
        raise ArtifactError(
            f"{where} decoder_self has weight above the diagonal, so step i attends to later steps; "
            "capture with the causal mask applied"
        )

    for name in ("self_norm", "cross_norm", "signed_diff"):
        values = np.asarray(getattr(record, name), dtype=np.float64)
        if values.shape != (L_dec, N):
            raise ArtifactError(
                f"{where} {name} has shape {values.shape}, expected {(L_dec, N)} (layers, steps incl. EOS)"
            )
        arrays[name] = values

    if np.any(arrays["self_norm"] < 0) or np.any(arrays["cross_norm"] < 0):
        raise ArtifactError(f"{where} self_norm and cross_norm must be >= 0")

    if record.gold_spans is not None:
        if len(record.gold_spans) != len(record.reference_tokens):
            raise ArtifactError(
                f"{where} has {len(record.gold_spans)} gold spans for {len(record.reference_tokens)} reference glosses; "
                "pass one [start, end) span per reference gloss or None"
            )
        for i, span in enumerate(record.gold_spans):
            if len(span) != 2 or int(span[1]) < int(span[0]):
                raise ArtifactError(
                    f"{where} gold span {i} is {span!r}, expected [start, end) with end >= start"
                )
    return arrays


def _fixed_list_array(rows: np.ndarray) -> pa.ListArray:
    """Build a float32 list array with one list per row of a 2-D array."""
    n_rows, width = rows.shape
    offsets = np.arange(n_rows + 1, dtype=np.int32) * width
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(rows.ravel(), pa.float32()))


def _attention_batch(sample_idx: int, arrays: dict[str, np.ndarray]) -> pa.RecordBatch:
    """Build the attention rows of one sample: one row per module, layer and head."""
    module_codes, layers, heads, n_rows, n_cols, lengths, values = [], [], [], [], [], [], []
    for code, module in enumerate(MODULES):
        weights = arrays[module]  # (L, H, rows, cols), C-ordered
        L, H, R, C = weights.shape
        module_codes.append(np.full(L * H, code, dtype=np.int8))
        layers.append(np.repeat(np.arange(L, dtype=np.int16), H))
        heads.append(np.tile(np.arange(H, dtype=np.int16), L))
        n_rows.append(np.full(L * H, R, dtype=np.int32))
        n_cols.append(np.full(L * H, C, dtype=np.int32))
        lengths.append(np.full(L * H, R * C, dtype=np.int64))
        values.append(weights.ravel())  # the (R, C) blocks of each layer and head, in row order

    n = sum(len(codes) for codes in module_codes)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.concatenate(lengths), out=offsets[1:])
    columns = [
        pa.array(np.full(n, sample_idx, dtype=np.int32)),
        pa.DictionaryArray.from_arrays(pa.array(np.concatenate(module_codes)), _MODULE_DICTIONARY),
        pa.array(np.concatenate(layers)),
        pa.array(np.concatenate(heads)),
        pa.array(np.concatenate(n_rows)),
        pa.array(np.concatenate(n_cols)),
        pa.ListArray.from_arrays(
            pa.array(offsets, pa.int32()), pa.array(np.concatenate(values), pa.float32())
        ),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=ATTENTION_SCHEMA)


def _contributions_batch(record: SampleRecord, arrays: dict[str, np.ndarray]) -> pa.RecordBatch:
    """Build the contribution rows of one sample: one row per decoder layer and step."""
    cross = arrays["cross"].astype(np.float64)  # (L, H, N, P)
    L, H, N, P = cross.shape
    mean = cross.mean(axis=1)  # (L, N, P)
    tokens = list(record.hypothesis_tokens) + [final_token(record.ends_with_eos)]
    is_final = np.arange(N) == N - 1

    self_norm = arrays["self_norm"]  # (L, N)
    cross_norm = arrays["cross_norm"]  # (L, N)
    total = self_norm + cross_norm
    with np.errstate(invalid="ignore", divide="ignore"):
        cross_share = np.where(total > 0, cross_norm / np.where(total > 0, total, 1.0), np.nan)

    statistics = alignment.row_statistics_stack(mean)  # each (L, N)
    profiles, head_profiles = [], []
    for layer in range(L):
        profiles.append(alignment.resample_rows(mean[layer]))  # (N, T)
        per_head = alignment.resample_rows(cross[layer].reshape(H * N, P)).reshape(
            H, N, PROFILE_BINS
        )
        head_profiles.append(per_head.transpose(1, 0, 2).reshape(N, H * PROFILE_BINS))  # (N, H*T)

    profile_rows = np.concatenate(profiles).astype(np.float32)  # (L*N, T)
    head_rows = np.concatenate(head_profiles).astype(np.float32)  # (L*N, H*T)
    entropy = statistics["normalized_entropy"].ravel().astype(np.float32)
    columns = [
        pa.array(np.full(L * N, record.sample_idx, dtype=np.int32)),
        pa.array(np.repeat(np.arange(L), N).astype(np.int16)),
        pa.array(np.tile(np.arange(N), L).astype(np.int16)),
        pa.array(tokens * L, pa.string()),
        pa.array(np.tile(is_final & bool(record.ends_with_eos), L)),
        pa.array(np.tile(is_final, L)),
        pa.array(self_norm.ravel().astype(np.float32)),
        pa.array(cross_norm.ravel().astype(np.float32)),
        pa.array(cross_share.ravel().astype(np.float32), from_pandas=True),
        pa.array(arrays["signed_diff"].ravel().astype(np.float32)),
        pa.array(statistics["centroid"].ravel().astype(np.float32)),
        pa.array(entropy, from_pandas=True),
        pa.array(statistics["effective_width"].ravel().astype(np.float32)),
        _fixed_list_array(profile_rows),
        _fixed_list_array(head_rows),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=CONTRIBUTIONS_SCHEMA)


def _metrics_batch(record: SampleRecord, arrays: dict[str, np.ndarray]) -> pa.RecordBatch:
    """Build the metric rows of one sample: per decoder layer, the head mean then each head.

    Metrics use the stored float32 weights without the EOS row, so recomputing
    them from attention.parquet gives the same values.
    """
    cross = arrays["cross"].astype(np.float64)  # (L, H, N, P)
    L, H, N, P = cross.shape
    n_glosses = N - 1
    spans = None if record.gold_spans is None else [tuple(span) for span in record.gold_spans]

    if n_glosses == 0:
        values = {name: np.full(L * (H + 1), math.nan) for name in alignment.METRIC_NAMES}
    else:
        # rows in table order: per layer the head mean, then heads 0..H-1
        stack = np.empty((L, H + 1, n_glosses, P))  # (L, H+1, N-1, P)
        for layer in range(L):
            stack[layer, 0] = cross[layer].mean(axis=0)[:n_glosses]
            stack[layer, 1:] = cross[layer, :, :n_glosses]
        values = alignment.alignment_metrics_stack(
            stack.reshape(L * (H + 1), n_glosses, P), spans, arrays["frame_index"]
        )

    n_rows = L * (H + 1)
    columns = [
        pa.array(np.full(n_rows, record.sample_idx, dtype=np.int32)),
        pa.array(np.repeat(np.arange(L, dtype=np.int16), H + 1)),
        pa.array(np.tile(np.arange(HEAD_MEAN, H, dtype=np.int16), L)),
        pa.array(np.full(n_rows, n_glosses, dtype=np.int32)),
    ]
    for name in alignment.METRIC_NAMES:
        column = values[name]  # (L*(H+1),)
        columns.append(pa.array(column, pa.float64(), mask=np.isnan(column)))
    return pa.RecordBatch.from_arrays(columns, schema=METRICS_SCHEMA)


def _poses_batch(record: SampleRecord) -> pa.RecordBatch:
    """Build the one poses row of a record: body and hand x, y in float16, or nulls without a pose."""
    row = {"sample_idx": [record.sample_idx], "n_frames": [int(record.n_frames)], "points": [None], "xy": [None]}
    if record.pose is not None:
        pose = np.asarray(record.pose)
        if pose.ndim == 4:
            pose = pose[:, 0]  # (F, K, C) of the first person
        if pose.ndim != 3 or pose.shape[1] != holistic.N_POINTS or pose.shape[2] < 2:
            raise ArtifactError(
                f"sample {record.sample_idx} ({record.id!r}) pose has shape {pose.shape}; "
                "expected (F, 543, C) in MediaPipe Holistic order"
            )
        if pose.shape[0] != record.n_frames:
            raise ArtifactError(
                f"sample {record.sample_idx} ({record.id!r}) pose has {pose.shape[0]} frames "
                f"but n_frames is {record.n_frames}"
            )
        # one gather over flattened (point, coordinate) columns is about twice as fast as
        # pose[:, POSE_POINTS, :2] and gives the same (F, 75 * 2) values
        flat = pose.reshape(pose.shape[0], -1)  # (F, 543 * C)
        xy = flat[:, _pose_columns(pose.shape[2])].astype(np.float16)  # (F, 75 * 2)
        return pa.RecordBatch.from_arrays(
            [
                pa.array(np.array([record.sample_idx], dtype=np.int32)),
                pa.array(np.array([record.n_frames], dtype=np.int32)),
                _single_list_array(POSE_POINTS, pa.int16()),
                _single_list_array(xy.reshape(-1), pa.float16()),
            ],
            schema=POSES_SCHEMA,
        )
    return pa.RecordBatch.from_pydict(row, schema=POSES_SCHEMA)


@functools.lru_cache(maxsize=8)
def _pose_columns(n_coordinates: int) -> np.ndarray:
    """Return the flat column of x and y of each POSE_POINTS keypoint in an (F, 543 * C) pose."""
    columns = POSE_POINTS.astype(np.int64)[:, None] * n_coordinates + np.arange(2)  # (75, 2)
    columns = columns.reshape(-1)
    columns.flags.writeable = False  # the cache shares this array between callers
    return columns


def _single_list_array(values: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    """Build a one-row list array from a 1-D numpy array, without converting element by element."""
    offsets = pa.array(np.array([0, values.size], dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values, value_type))


def _samples_batch(
    record: SampleRecord, arrays: dict[str, np.ndarray], attention_file: str, row_group: int
) -> pa.RecordBatch:
    """Build the one samples row of a record."""
    frame_index = arrays["frame_index"]
    gold = None if record.gold_spans is None else [[int(s), int(e)] for s, e in record.gold_spans]
    row = {
        "sample_idx": [record.sample_idx],
        "id": [record.id],
        "split": [record.split],
        "signer": [None if record.signer is None else str(record.signer)],
        "repetition": [None if record.repetition is None else int(record.repetition)],
        "sentence_group": [record.sentence_group],
        "text": [record.text],
        "reference": [record.reference],
        "hypothesis": [record.hypothesis],
        "reference_tokens": [list(record.reference_tokens)],
        "hypothesis_tokens": [list(record.hypothesis_tokens)],
        "n_reference": [len(record.reference_tokens)],
        "n_hypothesis": [len(record.hypothesis_tokens)],
        "exact_match": [bool(record.exact_match)],
        "sentence_bleu": [float(record.sentence_bleu)],
        "wer": [float(record.wer)],
        "n_positions": [frame_index.size],
        "frame_index": [frame_index],
        "n_frames": [int(record.n_frames)],
        "fps": [None if record.fps is None else float(record.fps)],
        "gold_spans": [gold],
        "n_encoder_layers": [arrays["encoder_self"].shape[0]],
        "n_decoder_layers": [arrays["cross"].shape[0]],
        "n_heads": [arrays["cross"].shape[1]],
        "ends_with_eos": [bool(record.ends_with_eos)],
        "attention_file": [attention_file],
        "attention_row_group": [row_group],
    }
    return pa.RecordBatch.from_pydict(row, schema=SAMPLES_SCHEMA)


# ----------------------------------------------------------------------------
# writing


class _TableStream:
    """Buffers record batches of one table and writes them as row groups of bounded size.

    Writes run on `executor`, a single thread that the streams of one writer
    share, so that Parquet encoding and compression overlap with building the
    next samples, because pyarrow releases the GIL while it writes. At most one
    write per table is in flight, so a table keeps at most about twice
    `flush_bytes` in memory. A failed write raises at the next `flush` or at `close`.
    """

    def __init__(self, path: Path, table: str, flush_bytes: int, executor: ThreadPoolExecutor):
        self.path = path
        self.table = table
        self.flush_bytes = flush_bytes
        self.schema = SCHEMAS[table]
        self.buffer: list[pa.RecordBatch] = []
        self.buffered_bytes = 0
        self.row_groups = 0
        self.row_group_sizes: list[int] = []
        self.executor = executor
        self.pending: Future | None = None
        self.writer = pq.ParquetWriter(
            path,
            self.schema,
            compression="zstd",
            use_dictionary=_DICTIONARY_COLUMNS[table] or False,
            use_byte_stream_split=_FLOAT_LIST_COLUMNS[table] or False,
        )

    def append(self, batch: pa.RecordBatch) -> None:
        self.buffer.append(batch)
        self.buffered_bytes += batch.nbytes
        if self.buffered_bytes >= self.flush_bytes:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        table = pa.Table.from_batches(self.buffer, schema=self.schema)
        self.wait()

        # one write call is one row group, so a sample never straddles two
        self.pending = self.executor.submit(self.writer.write_table, table, row_group_size=table.num_rows)
        self.row_groups += 1
        self.row_group_sizes.append(table.num_rows)
        self.buffer = []
        self.buffered_bytes = 0

    def wait(self) -> None:
        """Wait for the write in flight, re-raising its error."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        self.flush()
        self.wait()
        self.writer.close()
        metadata = pq.read_metadata(self.path)
        sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        if sizes != self.row_group_sizes:
            raise ArtifactError(
                f"{self.path.name}: wrote row groups of {sizes} rows, expected {self.row_group_sizes}; "
                "the attention index in samples would be wrong"
            )

    def abort(self) -> None:
        # the writer must not be closed while the executor still writes to it
        if self.pending is not None:
            error = self.pending.exception()
            if error is not None:
                logger.warning("writing %s failed with %s", self.path, error)
            self.pending = None
        try:
            self.writer.close()
        except (OSError, pa.ArrowException) as error:
            logger.warning("closing %s after a failed write raised %s", self.path, error)


def _json_ready(value: Any) -> Any:
    """Convert numpy scalars, tuples and NaN into plain JSON values (NaN becomes null)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _check_run_info(run_info: dict) -> None:
    missing = [key for key in REQUIRED_RUN_KEYS if key not in run_info]
    if missing:
        raise ArtifactError(
            f"run_info is missing {', '.join(missing)}; required keys: {', '.join(REQUIRED_RUN_KEYS)}"
        )
    for key in ("corpus", "decoding", "summary", "model", "training_config"):
        if not isinstance(run_info[key], dict):
            raise ArtifactError(
                f"run_info[{key!r}] must be a dict, got {type(run_info[key]).__name__}"
            )
    for key in ("name", "path"):
        if key not in run_info["corpus"]:
            raise ArtifactError(
                f"run_info['corpus'] is missing {key!r}; expected {{'name': ..., 'path': ...}}"
            )
    for key in ("method", "beam_size", "max_len"):
        if key not in run_info["decoding"]:
            raise ArtifactError(
                f"run_info['decoding'] is missing {key!r}; expected method, beam_size and max_len"
            )
    if not isinstance(run_info["vocabulary"], list | tuple):
        raise ArtifactError("run_info['vocabulary'] must be the list of tokens in id order")
    try:
        json.dumps(_json_ready(run_info))
    except TypeError as error:
        raise ArtifactError(f"run_info cannot be saved as JSON: {error}") from error


def _is_artifact_folder(path: Path) -> bool:
    """Return True for a folder with run.json or a samples table, finished or damaged."""
    if not path.is_dir():
        return False
    return (path / RUN_FILE).is_file() or any(path.glob("samples*.parquet"))


def _reject_existing(out_dir: Path, force: bool) -> None:
    """Raise unless `out_dir` may be written: new, or an artifact folder replaced with `force`.

    `force` replaces only an artifact folder or an empty folder, so that a
    mistyped `--out` cannot delete a training run, a corpus or a file.
    """
    enclosing = next((p for p in out_dir.resolve().parents if _is_artifact_folder(p)), None)
    if enclosing is not None:
        raise ArtifactError(
            f"{out_dir} lies inside the artifact folder {enclosing}; choose an --out outside it, "
            "such as a sibling folder"
        )
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not force:
        raise ArtifactError(
            f"artifact folder {out_dir} already exists; pass force=True (extract.py --force) to replace it"
        )
    replaceable = not out_dir.is_symlink() and (
        _is_artifact_folder(out_dir) or (out_dir.is_dir() and not any(out_dir.iterdir()))
    )
    if not replaceable:
        raise ArtifactError(
            f"{out_dir} exists but is not an artifact folder (it has no run.json or samples table), "
            "and force only replaces artifact folders; choose another --out, or move the folder yourself"
        )


def _table_file(table: str, part: int | None) -> str:
    return f"{table}.parquet" if part is None else f"{table}-part-{part:05d}.parquet"


class ArtifactWriter:
    """Stream samples into a new artifact folder, then move it into place.

    Used as a context manager, a failed block removes the temporary folder.
    Memory stays bounded by about twice `flush_bytes` per table, whatever the run size.

    Single process:

        with ArtifactWriter(out_dir, run_info, force=False) as writer:
            for record in records:
                writer.add_sample(record)
        # out_dir now contains run.json and the four tables

    Sharded (`torchrun`): every rank opens `ArtifactWriter(out_dir, run_info,
    part=rank, n_parts=world_size)` and closes it. The part files go into the
    shared folder `<out_dir>.tmp-shards`. After a barrier, rank 0 alone calls
    `ArtifactWriter.finalize_parts(out_dir, run_info, n_parts=world_size)`.
    """

    def __init__(
        self,
        out_dir: str | Path,
        run_info: dict,
        force: bool = False,
        part: int | None = None,
        n_parts: int | None = None,
        flush_bytes: int = DEFAULT_FLUSH_BYTES,
    ):
        self.out_dir = Path(out_dir)
        self.run_info = dict(run_info)
        self.force = force
        self.part = part
        self.n_parts = n_parts
        if (part is None) != (n_parts is None):
            raise ArtifactError(
                f"pass both part and n_parts for a sharded write, or neither (got part={part}, n_parts={n_parts})"
            )
        if part is not None and not 0 <= part < n_parts:
            raise ArtifactError(f"part {part} is outside 0..{n_parts - 1} for n_parts={n_parts}")
        if flush_bytes < 1:
            raise ArtifactError(f"flush_bytes must be >= 1, got {flush_bytes}")

        _check_run_info(self.run_info)
        _reject_existing(self.out_dir, force)
        self._warn_stale_folders()

        if part is None:
            self.tmp_dir = self.out_dir.with_name(f"{self.out_dir.name}.tmp-{os.getpid()}")
            if self.tmp_dir.exists():
                shutil.rmtree(self.tmp_dir)
            self.tmp_dir.mkdir(parents=True)
        else:
            self.tmp_dir = shard_folder(self.out_dir)
            self.tmp_dir.mkdir(parents=True, exist_ok=True)

            # a rerun replaces this rank's files from an earlier attempt
            self._marker_path().unlink(missing_ok=True)

        self.files = {table: _table_file(table, part) for table in TABLES}
        self._streams: dict[str, _TableStream] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="artifact-writer")
        try:
            for table in TABLES:
                self._streams[table] = _TableStream(
                    self.tmp_dir / self.files[table], table, flush_bytes, self._executor
                )
        except Exception:
            self.abort()
            raise

        self.n_samples = 0
        self._last_idx = -1
        self._closed = False
        logger.info("writing artifact into %s", self.tmp_dir)

    def _warn_stale_folders(self) -> None:
        stale = (
            sorted(self.out_dir.parent.glob(f"{self.out_dir.name}.tmp-*"))
            if self.out_dir.parent.exists()
            else []
        )
        stale = [
            p
            for p in stale
            if p.name != f"{self.out_dir.name}.tmp-{os.getpid()}"
            and not p.name.endswith(SHARD_FOLDER_SUFFIX)
        ]
        if stale:
            logger.warning(
                "incomplete artifact folders from interrupted writes can be deleted: %s",
                ", ".join(map(str, stale)),
            )

    def _marker_path(self) -> Path:
        return self.tmp_dir / f"part-{self.part:05d}.json"

    def __enter__(self) -> ArtifactWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def add_sample(self, record: SampleRecord) -> None:
        """Validate one sample, compute its alignment metrics and buffer its rows.

        Samples must arrive in increasing `sample_idx` order within a writer.
        """
        if self._closed:
            raise ArtifactError("add_sample called after close; open a new ArtifactWriter")
        if record.sample_idx <= self._last_idx:
            raise ArtifactError(
                f"sample_idx {record.sample_idx} ({record.id!r}) follows {self._last_idx}; "
                "add samples in strictly increasing sample_idx order"
            )
        arrays = _check_record(record)

        # the sample's attention rows go into the row group the next flush writes
        attention = self._streams["attention"]
        row_group = attention.row_groups
        attention.append(_attention_batch(record.sample_idx, arrays))
        self._streams["contributions"].append(_contributions_batch(record, arrays))
        self._streams["metrics"].append(_metrics_batch(record, arrays))
        self._streams["poses"].append(_poses_batch(record))
        self._streams["samples"].append(
            _samples_batch(record, arrays, self.files["attention"], row_group)
        )

        self._last_idx = record.sample_idx
        self.n_samples += 1

    def close(self) -> Path:
        """Finish the tables; return the artifact folder, or the shard folder for a part writer."""
        if self._closed:
            raise ArtifactError("ArtifactWriter.close called twice")
        self._closed = True
        try:
            # queue every table's last row group before waiting for any of them
            for stream in self._streams.values():
                stream.flush()
            for stream in self._streams.values():
                stream.close()
        except Exception:
            self.abort()
            raise
        finally:
            self._executor.shutdown(wait=True)

        if self.part is not None:
            marker = {
                "part": self.part,
                "n_parts": self.n_parts,
                "n_samples": self.n_samples,
                "files": self.files,
                "schema_version": SCHEMA_VERSION,
            }
            tmp_marker = self._marker_path().with_suffix(".json.tmp")
            tmp_marker.write_text(json.dumps(marker, indent=2), encoding="utf-8")
            os.replace(tmp_marker, self._marker_path())
            logger.info(
                "part %d of %d written: %d samples", self.part, self.n_parts, self.n_samples
            )
            return self.tmp_dir

        try:
            if self.n_samples == 0:
                raise ArtifactError(f"no samples were added to {self.out_dir}; nothing to write")
            if self._last_idx != self.n_samples - 1:
                raise ArtifactError(
                    f"sample_idx must run densely from 0 to {self.n_samples - 1}, but the last is {self._last_idx}"
                )
            return _publish(
                self.tmp_dir,
                self.out_dir,
                self.run_info,
                {t: [f] for t, f in self.files.items()},
                self.n_samples,
                self.force,
            )
        except Exception:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            raise

    def abort(self) -> None:
        """Stop writing and delete what this writer wrote."""
        self._closed = True
        for stream in self._streams.values():
            stream.abort()
        self._executor.shutdown(wait=True)
        if self.part is None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
        else:
            for name in self.files.values():
                (self.tmp_dir / name).unlink(missing_ok=True)
        logger.warning("artifact write into %s aborted", self.tmp_dir)

    @staticmethod
    def finalize_parts(
        out_dir: str | Path,
        run_info: dict,
        n_parts: int,
        force: bool = False,
        summarize: Callable[[pd.DataFrame], dict] | None = None,
    ) -> Path:
        """Check the parts of a sharded write, write run.json and move the folder into place.

        Call once, on rank 0, after every rank's writer has closed.

        Args:
            out_dir: the artifact folder the part writers were given.
            run_info: as for `ArtifactWriter`.
            n_parts: the world size the parts were written with.
            force: replace an existing artifact folder.
            summarize: optional function from the merged samples table to the
                `summary` dict of run.json, for metrics that need every sample
                (corpus BLEU). Its result replaces `run_info["summary"]`.
        """
        out_dir = Path(out_dir)
        tmp_dir = shard_folder(out_dir)
        run_info = dict(run_info)
        if not tmp_dir.is_dir():
            raise ArtifactError(f"shard folder {tmp_dir} not found; run the part writers first")
        _reject_existing(out_dir, force)

        missing = [p for p in range(n_parts) if not (tmp_dir / f"part-{p:05d}.json").is_file()]
        if missing:
            raise ArtifactError(
                f"{tmp_dir}: parts {missing} of {n_parts} did not finish (no part-NNNNN.json); rerun the extraction"
            )
        files: dict[str, list[str]] = {table: [] for table in TABLES}
        n_samples = 0
        for p in range(n_parts):
            marker = json.loads((tmp_dir / f"part-{p:05d}.json").read_text(encoding="utf-8"))
            if marker.get("n_parts") != n_parts:
                raise ArtifactError(
                    f"{tmp_dir / f'part-{p:05d}.json'} was written for {marker.get('n_parts')} parts, not {n_parts}; "
                    f"delete {tmp_dir} and rerun the extraction"
                )
            n_samples += int(marker["n_samples"])
            for table in TABLES:
                files[table].append(marker["files"][table])

        # files of a previous attempt with more ranks would otherwise be read as data
        expected = {name for names in files.values() for name in names}
        for path in tmp_dir.iterdir():
            if path.name.endswith(".parquet") and path.name not in expected:
                logger.warning("removing %s, left by an earlier sharded write", path)
                path.unlink()
            elif re.fullmatch(r"part-\d{5}\.json", path.name) and int(path.name[5:10]) >= n_parts:
                path.unlink()

        indices = np.sort(
            np.concatenate(
                [
                    pq.read_table(tmp_dir / name, columns=["sample_idx"]).column(0).to_numpy()
                    for name in files["samples"]
                ]
            )
        )
        if n_samples == 0:
            raise ArtifactError(f"no samples were written into {tmp_dir}; nothing to publish")
        if not np.array_equal(indices, np.arange(n_samples)):
            duplicates = np.unique(indices[1:][np.diff(indices) == 0])
            raise ArtifactError(
                f"sample_idx across parts must be exactly 0..{n_samples - 1}; "
                f"duplicates: {duplicates[:10].tolist()}, range {indices.min()}..{indices.max()}"
            )

        if summarize is not None:
            samples = _read_files([tmp_dir / name for name in files["samples"]]).to_pandas()
            run_info["summary"] = dict(
                summarize(samples.sort_values("sample_idx", ignore_index=True))
            )
        _check_run_info(run_info)

        for p in range(n_parts):
            (tmp_dir / f"part-{p:05d}.json").unlink()
        return _publish(tmp_dir, out_dir, run_info, files, n_samples, force)


def shard_folder(out_dir: str | Path) -> Path:
    """Return the folder that the part writers of a sharded write share."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + SHARD_FOLDER_SUFFIX)


def _package_version() -> str:
    from signattention_core import __version__

    return __version__


def _publish(
    tmp_dir: Path,
    out_dir: Path,
    run_info: dict,
    files: dict[str, list[str]],
    n_samples: int,
    force: bool,
) -> Path:
    """Write run.json into a finished temporary folder and rename it to `out_dir`."""
    run = dict(run_info)
    run["schema_version"] = SCHEMA_VERSION
    run["package_version"] = _package_version()
    run["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    run["n_samples"] = n_samples
    run["files"] = files
    run["summary"] = {**run["summary"], "n_samples": n_samples}

    # run.json comes last, so a folder without it is an unfinished write
    (tmp_dir / RUN_FILE).write_text(
        json.dumps(_json_ready(run), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.exists():
        _reject_existing(out_dir, force)
        old = out_dir.with_name(f"{out_dir.name}.replaced-{os.getpid()}")
        os.replace(out_dir, old)
        os.replace(tmp_dir, out_dir)
        shutil.rmtree(old)
        logger.info("replaced artifact %s (%d samples)", out_dir, n_samples)
    else:
        os.replace(tmp_dir, out_dir)
        logger.info("wrote artifact %s (%d samples)", out_dir, n_samples)
    return out_dir


# ----------------------------------------------------------------------------
# reading


def _read_files(
    paths: Iterable[Path], columns: list[str] | None = None, filters: list | None = None
) -> pa.Table:
    tables = []
    for path in paths:
        try:
            tables.append(pq.read_table(path, columns=columns, filters=filters))
        except (OSError, pa.ArrowException) as error:
            raise ArtifactError(
                f"{path} could not be read ({error}); the file is damaged, so extract the run again"
            ) from error
    return pa.concat_tables(tables)


def _check_schema(path: Path, table: str) -> None:
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as error:
        raise ArtifactError(
            f"{path} is not a readable Parquet file ({error}); the file is damaged, so extract the run again"
        ) from error
    for field in SCHEMAS[table]:
        if field.name not in schema.names:
            raise ArtifactError(
                f"{path} has no column {field.name!r}; the file was not written by this schema version"
            )
        found = schema.field(field.name).type
        if found != field.type:
            raise ArtifactError(
                f"{path} column {field.name!r} has type {found}, expected {field.type}"
            )


class Artifact:
    """A finished artifact folder, opened read-only.

    `open` checks run.json, the schema version and every table file's
    schema, so a damaged or foreign folder fails there with the file named.
    """

    def __init__(
        self,
        path: Path,
        run: dict,
        files: dict[str, list[Path]],
        stamp: tuple[int, int, int] | None = None,
    ):
        self.path = path
        self.run = run
        self.files = files
        self._index: pd.DataFrame | None = None
        # identity of the run.json that was read, so that reads notice a replaced folder
        self._stamp = stamp if stamp is not None else _run_stamp(path)

    @classmethod
    def open(cls, path: str | Path) -> Artifact:
        """Open and validate an artifact folder; raises ArtifactError naming the faulty file."""
        path = Path(path)
        if not path.is_dir():
            raise ArtifactError(f"artifact folder {path} not found; run extract.py to create it")
        run_path = path / RUN_FILE
        if not run_path.is_file():
            hint = (
                " (a write in progress or an interrupted write leaves a folder without it)"
                if ".tmp-" in path.name
                else ""
            )
            raise ArtifactError(
                f"{run_path} not found{hint}; the folder is not a finished artifact, so extract the run again"
            )
        stamp = _run_stamp(path)
        try:
            run = json.loads(run_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ArtifactError(
                f"{run_path} is not valid JSON ({error}); extract the run again"
            ) from error
        except OSError as error:
            raise ArtifactError(
                f"{run_path} could not be read ({error}); if an extraction is replacing the folder, "
                "open it again when it has finished"
            ) from error
        if not isinstance(run, dict):
            raise ArtifactError(f"{run_path} must hold a JSON object, found {type(run).__name__}")

        version = run.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ArtifactError(
                f"{run_path} has schema version {version!r}, but this version of signattention reads "
                f"schema version {SCHEMA_VERSION}; extract the run again or use the matching signattention version"
            )
        missing = [key for key in (*REQUIRED_RUN_KEYS, "files", "n_samples") if key not in run]
        if missing:
            raise ArtifactError(
                f"{run_path} is missing {', '.join(missing)}; extract the run again"
            )
        n_samples = run["n_samples"]
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ArtifactError(
                f"{run_path} has n_samples {n_samples!r}, expected a positive integer; extract the run again"
            )

        files = cls._find_files(path, run)
        for table, paths in files.items():
            for file in paths:
                _check_schema(file, table)
        return cls(path, run, files, stamp=stamp)

    @staticmethod
    def _find_files(path: Path, run: dict) -> dict[str, list[Path]]:
        listed = run["files"]
        found: dict[str, list[Path]] = {}
        for table in TABLES:
            names = listed.get(table) if isinstance(listed, dict) else None
            if not names:
                raise ArtifactError(
                    f"{path / RUN_FILE} lists no files for table {table!r}; extract the run again"
                )
            if (
                not isinstance(names, list)
                or not all(isinstance(name, str) for name in names)
                or len(set(names)) != len(names)
            ):
                raise ArtifactError(
                    f"{path / RUN_FILE} lists {names!r} for table {table!r}, expected a list of "
                    "distinct file names; extract the run again"
                )
            on_disk = {
                p.name
                for p in path.glob(f"{table}*.parquet")
                if p.name == f"{table}.parquet" or _PART_PATTERN.match(p.name)
            }
            absent = [name for name in names if name not in on_disk]
            if absent:
                raise ArtifactError(
                    f"{path}: {', '.join(absent)} listed in run.json not found; the artifact is incomplete, so extract the run again"
                )
            extra = sorted(on_disk - set(names))
            if extra:
                raise ArtifactError(
                    f"{path}: {', '.join(extra)} not listed in run.json; remove them or extract the run again"
                )
            found[table] = [path / name for name in names]
        return found

    @property
    def n_samples(self) -> int:
        return int(self.run["n_samples"])

    @property
    def vocabulary(self) -> list[str]:
        return list(self.run["vocabulary"])

    def read_table(
        self, table: str, columns: list[str] | None = None, filters: list | None = None
    ) -> pa.Table:
        """Read one table across its part files as a pyarrow Table."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; expected one of {', '.join(TABLES)}")
        self._check_unchanged()
        return _read_files(self.files[table], columns=columns, filters=filters)

    def _check_unchanged(self) -> None:
        """Raise when the folder was replaced after `open`, so that old run.json and new tables never mix."""
        if _run_stamp(self.path) != self._stamp:
            raise ArtifactError(
                f"{self.path} was replaced or changed after it was opened (its run.json is "
                "another file now); open the artifact again"
            )

    def samples(self, columns: list[str] | None = None) -> pd.DataFrame:
        """Return one row per sample, sorted by sample_idx."""
        if columns is not None and "sample_idx" not in columns:
            columns = ["sample_idx", *columns]
        df = self.read_table("samples", columns=columns).to_pandas()
        return df.sort_values("sample_idx", ignore_index=True)

    def metrics(
        self, sample_idx: int | None = None, layer: int | None = None, head: int | None = None
    ) -> pd.DataFrame:
        """Return alignment metrics per sample, layer and head; head -1 is the mean-over-heads matrix."""
        filters = _filters(sample_idx=sample_idx, layer=layer, head=head)
        df = self.read_table("metrics", filters=filters).to_pandas()
        return df.sort_values(["sample_idx", "layer", "head"], ignore_index=True)

    def contributions(
        self, profiles: bool = False, sample_idx: int | None = None, layer: int | None = None
    ) -> pd.DataFrame:
        """Return per-step norms, cross share and head-average cross-attention statistics.

        The 100-bin `profile` and `head_profiles` columns are read only with `profiles=True`.
        """
        columns = (
            None
            if profiles
            else [n for n in CONTRIBUTIONS_SCHEMA.names if n not in _PROFILE_COLUMNS]
        )
        filters = _filters(sample_idx=sample_idx, layer=layer)
        df = self.read_table("contributions", columns=columns, filters=filters).to_pandas()
        return df.sort_values(["sample_idx", "layer", "step"], ignore_index=True)

    def step_profiles(self, layer: int, head: int = HEAD_MEAN) -> tuple[pd.DataFrame, np.ndarray]:
        """Return the time-normalised cross-attention row of every step of one layer.

        Returns `(keys, profiles)`: keys has sample_idx, layer, step, token and
        is_eos and is_final, one row per step, and profiles is the matching (rows, 100)
        float32 array. Head -1 gives the mean-over-heads rows.
        """
        column = "profile" if head == HEAD_MEAN else "head_profiles"
        table = self.read_table(
            "contributions",
            columns=["sample_idx", "layer", "step", "token", "is_eos", "is_final", column],
            filters=_filters(layer=layer),
        )
        if table.num_rows == 0:
            raise ValueError(
                f"decoder layer {layer} has no steps in {self.path}; layers run from 0 to n_decoder_layers - 1"
            )
        table = table.sort_by([("sample_idx", "ascending"), ("step", "ascending")])
        flat = (
            pc.list_flatten(table.column(column)).to_numpy(zero_copy_only=False).astype(np.float32)
        )
        width = flat.size // max(table.num_rows, 1)
        values = flat.reshape(table.num_rows, width)  # (rows, T) or (rows, H*T)
        if head != HEAD_MEAN:
            n_heads = width // PROFILE_BINS
            if not 0 <= head < n_heads:
                raise ValueError(
                    f"head {head} is outside 0..{n_heads - 1} (or -1 for the mean over heads)"
                )
            values = values[:, head * PROFILE_BINS : (head + 1) * PROFILE_BINS]  # (rows, T)
        keys = table.drop_columns([column]).to_pandas()
        return keys, np.ascontiguousarray(values)

    def repetition_consistency(self, layer: int, head: int = HEAD_MEAN) -> pd.DataFrame:
        """Compare when different performances of a sentence attend to each gloss.

        Within each sentence group, the step-`i` profiles of every sample
        whose hypothesis gloss `i` equals reference gloss `i` are compared by
        mean pairwise Wasserstein-1 distance (`metrics.repetition_consistency`).
        Steps where the model predicted another gloss are left out, because
        their rows attend for a different sign.

        Returns one row per sentence group and gloss index with at least two
        such performances: sentence_group, gloss_index, gloss,
        n_performances, consistency (a fraction of the video, 0 = the same
        moments every time) and sample_idx (the samples compared).
        """
        keys, profiles = self.step_profiles(layer, head)
        samples = self.samples(columns=["sentence_group", "reference_tokens"])
        return gloss_consistency(keys, profiles, samples)

    def pose(self, sample_idx: int) -> np.ndarray | None:
        """Return one sample's stored pose as (F, 543, 2) float32, NaN where not stored or detected.

        Returns None when the extraction stored no pose for the sample.
        """
        table = self.read_table("poses", filters=[("sample_idx", "=", int(sample_idx))])
        if table.num_rows == 0:
            raise ArtifactError(f"{self.path}: sample_idx {sample_idx} not found in the poses table")
        row = table.slice(0, 1).to_pylist()[0]
        if row["xy"] is None:
            return None
        points = np.asarray(row["points"], dtype=np.int64)
        xy = np.asarray(row["xy"], dtype=np.float32).reshape(row["n_frames"], points.size, 2)
        pose = np.full((row["n_frames"], holistic.N_POINTS, 2), np.nan, dtype=np.float32)
        pose[:, points] = xy
        return pose

    def _attention_index(self) -> pd.DataFrame:
        if self._index is None:
            columns = [
                "sample_idx",
                "id",
                "attention_file",
                "attention_row_group",
                "frame_index",
                "hypothesis_tokens",
                "reference_tokens",
                "ends_with_eos",
            ]
            self._index = self.samples(columns=columns).set_index("sample_idx")
        return self._index

    def attention(self, sample_idx: int) -> SampleAttention:
        """Read every attention matrix of one sample, touching only its row group."""
        index = self._attention_index()
        if sample_idx not in index.index:
            raise ArtifactError(
                f"sample_idx {sample_idx} not found in {self.path}; valid values are 0..{self.n_samples - 1}"
            )
        entry = index.loc[sample_idx]
        path = self.path / entry["attention_file"]
        row_group = int(entry["attention_row_group"])
        self._check_unchanged()
        try:
            table = pq.ParquetFile(path).read_row_groups([row_group])
        except (OSError, pa.ArrowException) as error:
            raise ArtifactError(
                f"{path} row group {row_group} could not be read ({error}); extract the run again"
            ) from error
        table = table.filter(pc.equal(table.column("sample_idx"), sample_idx))

        tokens = list(entry["hypothesis_tokens"]) + [final_token(bool(entry["ends_with_eos"]))]
        frame_index = np.asarray(entry["frame_index"], dtype=np.int32)
        arrays = _arrays_from_rows(
            table, path, sample_idx, n_steps=len(tokens), n_positions=frame_index.size
        )
        return SampleAttention(
            sample_idx=int(sample_idx),
            id=str(entry["id"]),
            tokens=tokens,
            reference_tokens=list(entry["reference_tokens"]),
            frame_index=frame_index,
            ends_with_eos=bool(entry["ends_with_eos"]),
            **arrays,
        )



def gloss_consistency(keys: pd.DataFrame, profiles: np.ndarray, samples: pd.DataFrame) -> pd.DataFrame:
    """Return the repetition consistency of every reference gloss in every sentence group.

    `keys` and `profiles` are as returned by `Artifact.step_profiles`, and
    `samples` has sample_idx, sentence_group and reference_tokens. The
    columns returned are those of `Artifact.repetition_consistency`, which
    calls this function on the artifact's own tables.
    """
    samples = samples.set_index("sample_idx")[["sentence_group", "reference_tokens"]]

    keys = keys.join(samples, on="sample_idx")
    reference_gloss = [
        refs[step] if step < len(refs) else None
        for refs, step in zip(keys["reference_tokens"], keys["step"], strict=True)
    ]
    matches = (
        keys["token"].to_numpy(dtype=object) == np.array(reference_gloss, dtype=object)
    ) & ~keys["is_final"].to_numpy()
    keys = keys.assign(row=np.arange(len(keys)))[matches]

    rows = []
    for (group, step), members in keys.groupby(["sentence_group", "step"], sort=True):
        if len(members) < 2:
            continue
        rows.append(
            {
                "sentence_group": group,
                "gloss_index": int(step),
                "gloss": members["token"].iloc[0],
                "n_performances": len(members),
                "consistency": alignment.repetition_consistency(
                    list(profiles[members["row"].to_numpy()])
                ),
                "sample_idx": members["sample_idx"].to_list(),
            }
        )
    columns = [
        "sentence_group",
        "gloss_index",
        "gloss",
        "n_performances",
        "consistency",
        "sample_idx",
    ]
    return pd.DataFrame(rows, columns=columns)


def _run_stamp(path: Path) -> tuple[int, int, int] | None:
    """Return device, inode and modification time of run.json, or None when it is missing."""
    try:
        info = (path / RUN_FILE).stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_mtime_ns)


def _filters(**values: int | None) -> list | None:
    filters = [(name, "=", value) for name, value in values.items() if value is not None]
    return filters or None


def _arrays_from_rows(
    table: pa.Table, path: Path, sample_idx: int, n_steps: int, n_positions: int
) -> dict[str, np.ndarray]:
    """Rebuild the (L, H, rows, cols) arrays of one sample from its attention rows."""
    where = f"{path} sample {sample_idx}"
    if table.num_rows == 0:
        raise ArtifactError(
            f"{where}: no attention rows in the row group named by samples; extract the run again"
        )

    modules = table.column("module").to_pylist()
    layers = table.column("layer").to_numpy()
    heads = table.column("head").to_numpy()
    n_rows = table.column("n_rows").to_numpy()
    n_cols = table.column("n_cols").to_numpy()
    weights = table.column("weights").combine_chunks()
    values = pc.list_flatten(weights).to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(weights).to_numpy()
    if not np.array_equal(lengths, n_rows.astype(np.int64) * n_cols):
        raise ArtifactError(
            f"{where}: weights lengths do not match n_rows x n_cols; the file is damaged"
        )
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])

    expected = {
        "encoder_self": (n_positions, n_positions),
        "decoder_self": (n_steps, n_steps),
        "cross": (n_steps, n_positions),
    }
    arrays = {}
    for module in MODULES:
        rows = [i for i, m in enumerate(modules) if m == module]
        if not rows:
            raise ArtifactError(f"{where}: no {module} rows; the file is damaged")
        L = int(layers[rows].max()) + 1
        H = int(heads[rows].max()) + 1
        if len(rows) != L * H:
            raise ArtifactError(
                f"{where}: {len(rows)} {module} rows, expected {L} layers x {H} heads"
            )
        R, C = expected[module]
        out = np.empty((L, H, R, C), dtype=np.float32)  # (L, H, rows, cols)
        for i in rows:
            if (n_rows[i], n_cols[i]) != (R, C):
                raise ArtifactError(
                    f"{where}: {module} layer {layers[i]} head {heads[i]} is {n_rows[i]}x{n_cols[i]}, expected {R}x{C}"
                )
            out[layers[i], heads[i]] = values[starts[i] : starts[i] + lengths[i]].reshape(R, C)
        arrays[module] = out
    return arrays
