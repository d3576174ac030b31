"""Extract every attention weight of a trained run into an artifact folder.

For each batch of a corpus split the extraction decodes (greedy or beam
search), runs one teacher-forced pass over the final hypotheses with capture
on (:mod:`signattention_core.capture`), and streams one
:class:`~signattention_core.artifacts.SampleRecord` per sample into an
:class:`~signattention_core.artifacts.ArtifactWriter`. Only the current batch
is held in memory, plus the token lists that the run summary needs.

Frames are sampled deterministically (the first frame of each window, the
dataset's ``train=False`` mode), so the stored ``frame_index`` lists exactly
the frames the model saw.

Under ``torchrun`` every process takes the samples ``rank::world_size`` of the
split, writes its own part files, and rank 0 merges the summary and publishes
the folder after a barrier. ``sample_idx`` is always the index of the sample in
the split order, so a sharded artifact equals a single-process one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from signattention_core.artifacts import ArtifactWriter, SampleRecord
from signattention_core.capture import (
    PrecomputedEncoder,
    SampleCapture,
    capture_batch,
    encode_batch,
)
from signattention_core.checkpoint import LoadedRun, choose_device, load_run
from signattention_core.corpus import Corpus, Sample
from signattention_core.corpus.layout import SPLITS, canonical_split
from signattention_core.dataset import Batch, SignDataset, collate
from signattention_core.decoding import beam_search, greedy_decode
from signattention_core.evaluation import sentence_metrics, translation_metrics
from signattention_core.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer

logger = logging.getLogger(__name__)

DECODE_METHODS = ("greedy", "beam")
CHECKPOINTS = ("best", "last")
CHECKPOINT_FILES = {"best": "best.pt", "last": "checkpoint.pt"}
CORPUS_FILE = "corpus.json"

SIGNED_DIFF_DEFINITION = (
    "the study's signed mean difference: at step i, the mean over steps 0..i and over the D "
    "hidden units of (self-attention block output - cross-attention block output), as the "
    "study averaged the whole prefix output of each step-by-step decoder call"
)
STEP_DEFINITION = (
    "teacher-forced input [BOS, y_0, ..., y_(n-1)]; row i of each decoder matrix is decoding "
    "step i, which predicts y_i, and row n predicts EOS unless the hypothesis was cut at max_len"
)


@dataclass(frozen=True)
class ExtractionConfig:
    """Settings of one extraction, validated where it is created."""

    # training run folder (runs/NAME) with config.json, vocab.json, best.pt and corpus.json
    run_dir: Path
    # artifact folder to create (artifacts/NAME)
    out_dir: Path
    # corpus split to extract: "train", "val" or "test"
    split: str = "test"
    # decoding method: "greedy" or "beam"
    decode: str = "greedy"
    # beams per sample for beam search; ignored by greedy decoding
    beam_size: int = 5
    # GNMT length penalty exponent for beam search; 0 compares summed log-probabilities
    length_penalty: float = 0.0
    # maximum decoding steps per sample, EOS included; None uses the run's max_tokens + 1
    max_len: int | None = None
    # samples per batch, per process
    batch_size: int = 32
    # "auto", "cpu", "cuda", "cuda:N" or "mps"
    device: str = "auto"
    # replace an existing artifact folder
    force: bool = False
    # corpus folder; None reads it from the run's corpus.json
    corpus_dir: Path | None = None
    # extract only the first this many samples of the split; None extracts all
    limit: int | None = None
    # checkpoint to load: "best" (best.pt) or "last" (checkpoint.pt)
    checkpoint: str = "best"
    # encode each sample alone, without padding, so that the stored weights do not depend on the
    # batch. False encodes the padded batch at once, which is faster on a GPU, but float32
    # rounding then moves sharp weights by up to about 1e-5 between batch sizes.
    encoder_per_sample: bool = True
    # show a progress bar on rank 0
    progress: bool = True
    # store each sample's body and hand keypoints (x, y, float16) for the dashboard's pose player
    store_poses: bool = True

    def __post_init__(self) -> None:
        problems = []
        split = canonical_split(str(self.split))
        if split is None:
            problems.append(f"split {self.split!r} is invalid; accepted: {', '.join(SPLITS)} (dev reads as val)")
        else:
            # run.json and the dashboard name the split as the corpus stores it
            object.__setattr__(self, "split", split)
        if self.decode not in DECODE_METHODS:
            problems.append(f"decode {self.decode!r} is invalid; accepted: {', '.join(DECODE_METHODS)}")
        if self.checkpoint not in CHECKPOINTS:
            problems.append(f"checkpoint {self.checkpoint!r} is invalid; accepted: {', '.join(CHECKPOINTS)}")
        for name in ("beam_size", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("max_len", "limit"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                problems.append(f"{name} must be None or an integer >= 1, got {value!r}")
        if not isinstance(self.length_penalty, int | float) or self.length_penalty < 0:
            problems.append(f"length_penalty must be a number >= 0, got {self.length_penalty!r}")
        if problems:
            raise ValueError("invalid extraction settings: " + "; ".join(problems))
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.corpus_dir is not None:
            object.__setattr__(self, "corpus_dir", Path(self.corpus_dir))


@dataclass(frozen=True)
class Shard:
    """This process's place in a sharded extraction."""

    rank: int  # index of this process, 0-based
    world_size: int  # number of processes
    local_rank: int  # index of this process on its machine, for the GPU choice
    owns_group: bool  # True when this module initialised the process group and must destroy it

    @property
    def sharded(self) -> bool:
        return self.world_size > 1


def detect_shard(device_flag: str) -> Shard:
    """Read torchrun's environment and join its process group.

    Returns a single-process shard when ``WORLD_SIZE`` is unset or 1. The
    group uses gloo on the CPU and NCCL on CUDA.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Shard(rank=0, world_size=1, local_rank=0, owns_group=False)

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    owns_group = False
    if not torch.distributed.is_initialized():
        use_cuda = device_flag.startswith("cuda") or (device_flag == "auto" and torch.cuda.is_available())
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
        owns_group = True
    logger.info("sharded extraction: process %d of %d", rank, world_size)
    return Shard(rank=rank, world_size=world_size, local_rank=local_rank, owns_group=owns_group)


def file_sha256(path: Path) -> str:
    """Return the SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_corpus_reference(run_dir: Path) -> dict:
    """Read ``corpus.json`` ({"name", "path"}) of a run folder."""
    path = run_dir / CORPUS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found, so the run does not say which corpus it was trained on; "
            "pass the corpus folder with --corpus"
        )
    try:
        reference = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); pass the corpus folder with --corpus") from error
    if not isinstance(reference, dict):
        raise ValueError(f'{path} must be a JSON object with "name" and "path"; pass the corpus folder with --corpus')
    if not reference.get("path"):
        raise FileNotFoundError(
            f"{path} names no corpus (an imported study checkpoint has none); pass the corpus folder with --corpus"
        )
    return reference


def open_corpus(config: ExtractionConfig) -> Corpus:
    """Open the corpus given in the settings, or else the one named by the run's corpus.json."""
    if config.corpus_dir is not None:
        return Corpus.open(config.corpus_dir)

    path = Path(read_corpus_reference(config.run_dir)["path"])
    if not path.is_dir():
        raise FileNotFoundError(
            f"corpus folder {path} (from {config.run_dir / CORPUS_FILE}) not found; "
            "pass its new location with --corpus"
        )
    return Corpus.open(path)


def default_max_len(loaded: LoadedRun) -> int:
    """Return the decoding step limit: the run's max_tokens plus the EOS step.

    Without a max_tokens limit in the run's configuration, the positional
    encoding length of the model bounds the steps.
    """
    max_tokens = loaded.config.max_tokens
    if max_tokens is None:
        return int(loaded.model.max_len) - 1
    return min(int(max_tokens) + 1, int(loaded.model.max_len) - 1)


def hypothesis_strings(tokenizer: Tokenizer, ids: Sequence[int]) -> list[str]:
    """Map every decoded id to its token, one per decoding step.

    Unlike ``Tokenizer.decode`` this keeps PAD, BOS and UNK as "<pad>", "<bos>"
    and "<unk>", because each id is one decoder step whose attention is stored.
    """
    vocabulary = tokenizer.tokens
    out = []
    for value in ids:
        index = int(value)
        if not 0 <= index < len(vocabulary):
            raise ValueError(f"decoded token id {index} is outside the vocabulary of {len(vocabulary)} tokens")
        out.append(vocabulary[index])
    return out


def decode_batch(model, batch: Batch, config: ExtractionConfig, max_len: int) -> list[list[int]]:
    """Decode one batch with the configured method; ids exclude BOS and EOS."""
    if config.decode == "greedy":
        return greedy_decode(model, batch.src, batch.src_padding_mask, max_len=max_len, bos_id=BOS_ID, eos_id=EOS_ID)
    return beam_search(
        model,
        batch.src,
        batch.src_padding_mask,
        beam_size=config.beam_size,
        max_len=max_len,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        length_penalty=float(config.length_penalty),
    )


def decode_and_capture(
    model, batch: Batch, config: ExtractionConfig, max_len: int
) -> tuple[list[list[int]], list[SampleCapture]]:
    """Decode one batch and capture its attention; return the hypotheses and the captures.

    The encoder runs once, with capture on, and decoding and the capture share its memory.
    """
    encoded = encode_batch(model, batch.src, batch.src_padding_mask, per_sample=config.encoder_per_sample)
    hypothesis_ids = decode_batch(PrecomputedEncoder(model, encoded), batch, config, max_len)
    captured = capture_batch(
        model, batch.src, batch.src_padding_mask, hypothesis_ids, BOS_ID, PAD_ID, encoded=encoded
    )
    return hypothesis_ids, captured


def portable_path(target: Path, out_dir: Path) -> str:
    """Return a folder (the corpus, the training run) as run.json records it.

    The path is relative to the artifact folder when the two share a parent
    folder below the file-system root, so that a repository moved or cloned
    elsewhere still finds it. Otherwise the path is absolute.
    """
    target = Path(target).resolve()
    out_dir = Path(out_dir).resolve()
    common = Path(os.path.commonpath([target, out_dir]))
    if common == Path(common.anchor):
        return str(target)
    return os.path.relpath(target, out_dir)


def build_record(
    sample_idx: int,
    sample: Sample,
    split: str,
    reference_tokens: list[str],
    hypothesis_tokens: list[str],
    ends_with_eos: bool,
    frame_index: np.ndarray,
    n_frames: int,
    captured: SampleCapture,
    output_mode: str,
) -> SampleRecord:
    """Combine a sample's metadata, scores and captured arrays into one record."""
    scores = sentence_metrics(reference_tokens, hypothesis_tokens)

    # gold spans are per gloss, so they only line up with gloss targets
    gold_spans = None
    if sample.gloss_spans is not None and output_mode == "gloss":
        if len(sample.gloss_spans) == len(reference_tokens):
            gold_spans = [(int(start), int(end)) for start, end in sample.gloss_spans]
        else:
            logger.warning(
                "sample %r has %d gold spans for %d reference glosses; its gold spans are left out",
                sample.id, len(sample.gloss_spans), len(reference_tokens),
            )

    fields = {
        "sample_idx": sample_idx,
        "id": sample.id,
        "split": split,
        "signer": sample.signer,
        "repetition": sample.repetition,
        "sentence_group": sample.sentence_group,
        "reference": " ".join(reference_tokens),
        "hypothesis": " ".join(hypothesis_tokens),
        "reference_tokens": list(reference_tokens),
        "hypothesis_tokens": list(hypothesis_tokens),
        "text": sample.text or None,
        "exact_match": bool(scores["exact_match"]),
        "sentence_bleu": float(scores["sentence_bleu"]),
        "wer": float(scores["wer"]),
        "frame_index": frame_index,
        "n_frames": int(n_frames),
        "fps": sample.fps,
        "gold_spans": gold_spans,
        "encoder_self": captured.encoder_self,
        "decoder_self": captured.decoder_self,
        "cross": captured.cross,
        "self_norm": captured.self_norm,
        "cross_norm": captured.cross_norm,
        "signed_diff": captured.signed_diff,
        "ends_with_eos": ends_with_eos,
    }
    return SampleRecord(**fields)


def summarize_tokens(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]) -> dict:
    """Return corpus-level translation metrics, without the per-sample list."""
    summary = translation_metrics([list(r) for r in references], [list(h) for h in hypotheses])
    summary.pop("per_sample", None)
    return summary


def summarize_samples(samples: pd.DataFrame) -> dict:
    """Return corpus-level translation metrics from a merged samples table."""
    references = [list(tokens) for tokens in samples["reference_tokens"]]
    hypotheses = [list(tokens) for tokens in samples["hypothesis_tokens"]]
    return summarize_tokens(references, hypotheses)


def build_run_info(
    config: ExtractionConfig,
    loaded: LoadedRun,
    corpus: Corpus,
    dataset: SignDataset,
    max_len: int,
    n_selected: int,
    device: torch.device,
    shard: Shard,
) -> dict[str, Any]:
    """Describe the run, the corpus, the decoding and the capture for run.json."""
    checkpoint_path = config.run_dir / CHECKPOINT_FILES[config.checkpoint]
    model = loaded.model
    return {
        "run_name": config.run_dir.resolve().name,
        "run_dir": portable_path(config.run_dir, config.out_dir),
        "model": {
            **dict(getattr(model, "model_args", {})),
            "n_parameters": int(sum(p.numel() for p in model.parameters())),
        },
        "training_config": loaded.config.to_dict(),
        "checkpoint": checkpoint_path.name,
        "checkpoint_sha256": file_sha256(checkpoint_path),
        "checkpoint_epoch": loaded.info.get("epoch"),
        "corpus": {
            "name": corpus.name,
            "path": portable_path(corpus.root, config.out_dir),
            "split_size": len(corpus.split(config.split)),
            "dropped": {reason: list(ids) for reason, ids in dataset.dropped.items()},
            "extracted": n_selected,
        },
        "split": config.split,
        "decoding": {
            "method": config.decode,
            "beam_size": config.beam_size if config.decode == "beam" else 1,
            "length_penalty": float(config.length_penalty) if config.decode == "beam" else 0.0,
            "max_len": max_len,
            "max_len_counts": "decoding steps, EOS included",
            "frame_sampling": "deterministic: the first frame of each window of sample_rate frames",
        },
        "capture": {
            "method": "one batched teacher-forced pass over the final hypotheses",
            "encoder_per_sample": config.encoder_per_sample,
            "steps": STEP_DEFINITION,
            "signed_diff": SIGNED_DIFF_DEFINITION,
            "norms": "L2 norm over D of each block output (after the output projection, before the residual)",
        },
        "extraction": {
            "device": str(device),
            "batch_size": config.batch_size,
            "world_size": shard.world_size,
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
        },
        "vocabulary": list(loaded.tokenizer.tokens),
        "summary": {},
    }


def _shard_batches(indices: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    for start in range(0, len(indices), batch_size):
        yield list(indices[start : start + batch_size])


def extract(config: ExtractionConfig) -> Path:
    """Run the extraction and return the artifact folder.

    Under torchrun every process must call this with the same settings; each
    returns the artifact folder once rank 0 has published it.

    Raises:
        ArtifactError: when the output folder exists and ``force`` is off.
        FileNotFoundError, ValueError, CorpusError: for a bad run folder,
            corpus or setting, each naming the file or value and the fix.
    """
    shard = detect_shard(config.device)
    try:
        return _extract(config, shard)
    finally:
        if shard.owns_group:
            torch.distributed.destroy_process_group()


def _extract(config: ExtractionConfig, shard: Shard) -> Path:
    device = choose_device(config.device)
    if shard.sharded and device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", shard.local_rank % torch.cuda.device_count())
        # NCCL collectives run on the current device
        torch.cuda.set_device(device)

    loaded = load_run(config.run_dir, device=device, which=config.checkpoint)
    model = loaded.model.eval()
    corpus = open_corpus(config)
    dataset = SignDataset(
        corpus,
        config.split,
        loaded.tokenizer,
        loaded.transform,
        output_mode=loaded.config.output_mode,
        max_tokens=loaded.config.max_tokens,
        train=False,
        return_pose=config.store_poses,
    )
    n_selected = len(dataset) if config.limit is None else min(config.limit, len(dataset))
    if n_selected == 0:
        raise ValueError(
            f"split {config.split!r} of corpus {corpus.root} has no samples to extract "
            f"(dropped: { {reason: len(ids) for reason, ids in dataset.dropped.items()} })"
        )
    max_len = config.max_len or default_max_len(loaded)
    if max_len >= model.max_len:
        # the teacher-forced input contains BOS plus up to max_len tokens
        raise ValueError(
            f"max_len {max_len} needs {max_len + 1} decoder positions, but the model's positional "
            f"encoding has {model.max_len}; pass --max-len {model.max_len - 1} or less"
        )
    run_info = build_run_info(config, loaded, corpus, dataset, max_len, n_selected, device, shard)

    # each process takes every world_size-th sample; sample_idx stays the split index
    indices = list(range(shard.rank, n_selected, shard.world_size))
    writer_args = {"part": shard.rank, "n_parts": shard.world_size} if shard.sharded else {}
    references: list[list[str]] = []
    hypotheses: list[list[str]] = []
    cut_at_max_len: list[int] = []
    with ArtifactWriter(config.out_dir, run_info, force=config.force, **writer_args) as writer:
        progress = tqdm(
            total=len(indices),
            unit="sample",
            desc=f"extract {config.split}",
            disable=not config.progress or shard.rank != 0,
        )
        for batch_indices in _shard_batches(indices, config.batch_size):
            items = [dataset[index] for index in batch_indices]
            poses = [item.pop("pose") for item in items] if config.store_poses else None
            _extract_batch(
                model, collate(items).to(device), batch_indices, poses, dataset, config, max_len,
                loaded.tokenizer, writer, references, hypotheses, cut_at_max_len,
            )
            progress.update(len(batch_indices))
        progress.close()

        if not shard.sharded:
            writer.run_info["summary"] = summarize_tokens(references, hypotheses)
            writer.run_info["decoding"]["cut_at_max_len"] = cut_at_max_len

    if not shard.sharded:
        _log_summary(config.out_dir, writer.run_info["summary"], cut_at_max_len)
        return config.out_dir
    return _finish_shards(config, run_info, shard, cut_at_max_len)


def _extract_batch(
    model,
    batch: Batch,
    batch_indices: list[int],
    poses: list[np.ndarray] | None,
    dataset: SignDataset,
    config: ExtractionConfig,
    max_len: int,
    tokenizer: Tokenizer,
    writer: ArtifactWriter,
    references: list[list[str]],
    hypotheses: list[list[str]],
    cut_at_max_len: list[int],
) -> None:
    """Decode, capture and write one batch.

    `poses` contains the raw (F, 543, 3) pose of each sample in batch order, or is None to store no poses.
    """
    hypothesis_ids, captured = decode_and_capture(model, batch, config, max_len)

    lengths = batch.src_lengths.tolist()
    frame_index = batch.frame_index.cpu().numpy()
    n_frames = batch.n_frames.tolist()
    for row, sample_idx in enumerate(batch_indices):
        sample = dataset.samples[sample_idx]
        ids = hypothesis_ids[row]
        # decoding stops at EOS or after max_len steps, so only a full-length hypothesis lacks EOS
        ends_with_eos = len(ids) < max_len
        if not ends_with_eos:
            cut_at_max_len.append(sample_idx)
        if config.decode == "greedy" and captured[row].predicted[:-1].tolist() != list(ids):
            logger.warning(
                "sample %r: the teacher-forced pass predicts %s where greedy decoding chose %s; "
                "a near-tie in the logits flipped between the two passes",
                sample.id, captured[row].predicted[:-1].tolist(), list(ids),
            )

        reference_tokens = list(dataset.references[sample_idx])
        hypothesis_tokens = hypothesis_strings(tokenizer, ids)
        record = build_record(
            sample_idx=sample_idx,
            sample=sample,
            split=config.split,
            reference_tokens=reference_tokens,
            hypothesis_tokens=hypothesis_tokens,
            ends_with_eos=ends_with_eos,
            frame_index=frame_index[row, : lengths[row]],
            n_frames=n_frames[row],
            captured=captured[row],
            output_mode=dataset.output_mode,
        )
        if poses is not None:
            record.pose = poses[row]  # (F, 543, 3)
        writer.add_sample(record)
        references.append(reference_tokens)
        hypotheses.append(hypothesis_tokens)


def _finish_shards(config: ExtractionConfig, run_info: dict, shard: Shard, cut_at_max_len: list[int]) -> Path:
    """Wait for every part, then let rank 0 merge the summary and publish the folder."""
    gathered: list[list[int] | None] = [None] * shard.world_size
    torch.distributed.all_gather_object(gathered, cut_at_max_len)
    if shard.rank == 0:
        run_info = dict(run_info)
        run_info["decoding"] = {**run_info["decoding"], "cut_at_max_len": sorted(i for part in gathered for i in part)}
        try:
            ArtifactWriter.finalize_parts(
                config.out_dir, run_info, n_parts=shard.world_size, force=config.force, summarize=summarize_samples
            )
        finally:
            # the other processes wait here whether or not publishing worked
            torch.distributed.barrier()
        _log_summary(config.out_dir, json.loads((config.out_dir / "run.json").read_text(encoding="utf-8"))["summary"],
                     run_info["decoding"]["cut_at_max_len"])
    else:
        torch.distributed.barrier()
        if not (config.out_dir / "run.json").is_file():
            raise RuntimeError(f"process 0 did not publish {config.out_dir}; see its log for the error")
    return config.out_dir


def _log_summary(out_dir: Path, summary: dict, cut_at_max_len: list[int]) -> None:
    logger.info(
        "wrote %s: %d samples, BLEU-4 %.2f, mean sentence BLEU %.2f, WER %.3f, exact match %.3f",
        out_dir, summary.get("n_samples", 0), summary.get("bleu_4", float("nan")),
        summary.get("sentence_bleu", float("nan")), summary.get("wer", float("nan")),
        summary.get("exact_match", float("nan")),
    )
    if cut_at_max_len:
        logger.warning(
            "%d hypotheses reached max_len without EOS; their last step is the one that would "
            "have come next (sample_idx %s)", len(cut_at_max_len), cut_at_max_len[:10],
        )
