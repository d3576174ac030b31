"""PyTorch dataset, batch collation and data loaders over a corpus split.

Shape letters: B batch, P positions, E features, N tokens.

Samples without a pose file, without tokens, or with more tokens than
`max_tokens` are dropped before any target is tokenised, so each kept
sample's target is computed from that same sample. Items are unpadded.
`collate` pads them to the longest in the batch and derives the padding mask
from the lengths, never from all-zero frames, because a real frame is all
zeros when no keypoint was detected.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    SequentialSampler,
)

from signattention_core.corpus import Corpus, Sample
from signattention_core.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, split_text
from signattention_core.transforms import TransformConfig, transform_pose

logger = logging.getLogger(__name__)

OUTPUT_MODES: tuple[str, ...] = ("gloss", "text")

# ids listed in a log line before the rest is summarised as a count
_MAX_IDS_LOGGED = 10


def sample_tokens(sample: Sample, output_mode: str) -> list[str]:
    """Return the target words of a sample, before ids, BOS and EOS.

    "gloss" splits the normalised gloss sequence on spaces. "text" keeps case
    and splits the normalised translation into words and punctuation marks
    (`tokenizer.split_text`).
    """
    if output_mode == "gloss":
        return sample.gloss.split()
    if output_mode == "text":
        return split_text(sample.text)
    raise ValueError(f"invalid output_mode {output_mode!r}; accepted: {', '.join(OUTPUT_MODES)}")


def fit_tokenizer(corpus: Corpus, output_mode: str = "gloss", split: str = "train") -> Tokenizer:
    """Fit a tokenizer on the targets of one split (all of its samples, in file order)."""
    return Tokenizer.fit(sample_tokens(sample, output_mode) for sample in corpus.split(split))


class SignDataset(Dataset):
    """Samples of one corpus split as (positions x features, token ids) pairs.

    `self.samples` lists the kept `corpus.Sample`s. Item i belongs to
    `self.samples[i]`, whose target words are `self.references[i]` and whose
    token ids, BOS and EOS included, are `self.targets[i]`. `self.dropped` maps
    each drop reason ("missing_pose", "no_tokens", "too_many_tokens") to the
    ids dropped for it. With `return_pose=True` each item also contains the raw
    pose under "pose", so that a caller that stores it does not read the file twice.

    In training (`train=True`) frame sampling draws a random frame per window
    from a generator seeded with (seed, epoch, index), so results do not depend
    on worker processes. Call `set_epoch` (or `set_loader_epoch`) at the start
    of every epoch, or every epoch samples the same frames.
    """

    def __init__(
        self,
        corpus: Corpus,
        split: str,
        tokenizer: Tokenizer,
        transform: TransformConfig,
        output_mode: str = "gloss",
        max_tokens: int | None = None,
        train: bool = False,
        seed: int = 0,
        return_pose: bool = False,
    ):
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"invalid output_mode {output_mode!r}; accepted: {', '.join(OUTPUT_MODES)}")
        if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                       or max_tokens < 1):
            raise ValueError(f"max_tokens must be None or an integer >= 1, got {max_tokens!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")

        self.corpus = corpus
        self.split = split
        self.tokenizer = tokenizer
        self.transform = transform
        self.output_mode = output_mode
        self.max_tokens = max_tokens
        self.train = train
        self.seed = seed
        self.return_pose = return_pose
        self.epoch = 0

        # drop first, then tokenise the kept samples only
        self.samples, self.references, self.dropped = self._select(corpus.split(split))
        self.targets = [[BOS_ID, *tokenizer.encode(words), EOS_ID] for words in self.references]
        self._log_selection(len(self.samples) + sum(len(ids) for ids in self.dropped.values()))

    def _select(self, samples: Sequence[Sample]) -> tuple[list[Sample], list[list[str]], dict[str, list[str]]]:
        kept_samples: list[Sample] = []
        words: list[list[str]] = []
        dropped: dict[str, list[str]] = {"missing_pose": [], "no_tokens": [], "too_many_tokens": []}
        for sample in samples:
            if not self.corpus.pose_path(sample.id).is_file():
                dropped["missing_pose"].append(sample.id)
                continue
            sequence = sample_tokens(sample, self.output_mode)
            if not sequence:
                dropped["no_tokens"].append(sample.id)
                continue
            if self.max_tokens is not None and len(sequence) > self.max_tokens:
                dropped["too_many_tokens"].append(sample.id)
                continue
            kept_samples.append(sample)
            words.append(sequence)
        return kept_samples, words, dropped

    def _log_selection(self, n_total: int) -> None:
        reasons = {
            "missing_pose": "with no pose file",
            "no_tokens": f"with an empty {self.output_mode}",
            "too_many_tokens": f"with more than {self.max_tokens} tokens",
        }
        for reason, ids in self.dropped.items():
            if ids:
                listed_ids = ", ".join(ids[:_MAX_IDS_LOGGED])
                more = f" and {len(ids) - _MAX_IDS_LOGGED} more" if len(ids) > _MAX_IDS_LOGGED else ""
                logger.warning("split %r: dropped %d sample(s) %s: %s%s", self.split, len(ids),
                               reasons[reason], listed_ids, more)

        n_tokens = sum(len(target) - 2 for target in self.targets)
        n_unknown = sum(target.count(UNK_ID) for target in self.targets)
        logger.info("split %r: kept %d of %d samples; %d of %d target tokens are not in the vocabulary",
                    self.split, len(self.samples), n_total, n_unknown, n_tokens)

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds training-time frame sampling."""
        self.epoch = int(epoch)

    def rng_for(self, index: int) -> np.random.Generator | None:
        """Return the frame-sampling generator for item `index`, or None outside training."""
        if not self.train:
            return None
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        pose = self.corpus.load_pose(sample.id)  # (F, 543, 3)
        out = transform_pose(pose, self.transform, self.rng_for(index), sample_id=sample.id)
        item = {
            "id": sample.id,
            "features": torch.from_numpy(out.features),  # (P, E)
            "frame_index": torch.from_numpy(out.frame_index),  # (P,)
            "tokens": torch.tensor(self.targets[index], dtype=torch.long),  # (N,)
            "n_frames": int(pose.shape[0]),
        }
        if self.return_pose:
            item["pose"] = pose  # (F, 543, 3) as read, because transform_pose does not modify it
        return item


@dataclass
class Batch:
    """Padded model inputs and targets of several samples."""

    ids: list[str]  # sample ids, in batch order
    src: torch.Tensor  # (B, P, E) float32, zero padded
    src_lengths: torch.Tensor  # (B,) long, positions before padding
    src_padding_mask: torch.Tensor  # (B, P) bool, True at padding (from src_lengths)
    frame_index: torch.Tensor  # (B, P) long, raw frame index of each position, -1 at padding
    tgt: torch.Tensor  # (B, N) long, BOS ... EOS then PAD
    tgt_lengths: torch.Tensor  # (B,) long, including BOS and EOS
    n_frames: torch.Tensor | None = None  # (B,) long, raw frames of each sample before sampling

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Return a copy with every tensor on `device`."""
        def move(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.to(device, non_blocking=non_blocking)

        return Batch(
            ids=list(self.ids),
            src=move(self.src),
            src_lengths=move(self.src_lengths),
            src_padding_mask=move(self.src_padding_mask),
            frame_index=move(self.frame_index),
            tgt=move(self.tgt),
            tgt_lengths=move(self.tgt_lengths),
            n_frames=move(self.n_frames),
        )


def collate(items: Sequence[dict]) -> Batch:
    """Pad `SignDataset` items into a `Batch` whose padding mask comes from the lengths."""
    if not items:
        raise ValueError("collate got an empty list of items; use a batch size >= 1")
    widths = {item["features"].shape[1] for item in items}
    if len(widths) != 1:
        raise ValueError(f"items have different feature sizes {sorted(widths)}; "
                         "transform every sample with the same TransformConfig")

    src_lengths = torch.tensor([item["features"].shape[0] for item in items], dtype=torch.long)
    tgt_lengths = torch.tensor([item["tokens"].shape[0] for item in items], dtype=torch.long)
    n_items, n_positions, n_tokens = len(items), int(src_lengths.max()), int(tgt_lengths.max())

    src = torch.zeros(n_items, n_positions, widths.pop(), dtype=torch.float32)  # (B, P, E)
    frame_index = torch.full((n_items, n_positions), -1, dtype=torch.long)  # (B, P)
    tgt = torch.full((n_items, n_tokens), PAD_ID, dtype=torch.long)  # (B, N)
    for row, item in enumerate(items):
        length = int(src_lengths[row])
        src[row, :length] = item["features"]
        frame_index[row, :length] = item["frame_index"]
        tgt[row, : int(tgt_lengths[row])] = item["tokens"]

    src_padding_mask = torch.arange(n_positions)[None, :] >= src_lengths[:, None]  # (B, P)
    return Batch(
        ids=[item["id"] for item in items],
        src=src,
        src_lengths=src_lengths,
        src_padding_mask=src_padding_mask,
        frame_index=frame_index,
        tgt=tgt,
        tgt_lengths=tgt_lengths,
        n_frames=torch.tensor([item["n_frames"] for item in items], dtype=torch.long),
    )


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int,
    distributed: bool = False,
    num_workers: int = 0,
) -> DataLoader:
    """Build a DataLoader that batches with `collate`.

    Shuffling uses a generator seeded with `seed`, so the order of every epoch
    is reproducible. With `distributed`, a DistributedSampler gives each
    process its share of the samples; `batch_size` is then per process.
    Workers are not persistent, so `set_epoch` on the dataset reaches them.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if distributed:
        if not torch.distributed.is_available() or not torch.distributed.is_initialized():
            raise RuntimeError("distributed=True needs an initialised process group; "
                               "call torch.distributed.init_process_group first (torchrun does not do it)")
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=False)
    elif shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(dataset)

    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=False,
    )


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Set the epoch on the loader's DistributedSampler and on its dataset, if they take one."""
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)
