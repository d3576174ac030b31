"""Training loop: one process, or several under ``torchrun`` with DistributedDataParallel.

The loop mirrors the study's setup. Adam minimises the token cross-entropy
(optionally with scikit-learn's "balanced" class weights). After every epoch
the validation split is scored teacher-forced. ``best.pt`` keeps the epoch
with the lowest validation loss, while early stopping watches the validation
token accuracy and stops after ``patience`` epochs without a new maximum.
``checkpoint.pt`` always contains the latest epoch with the optimizer state, so
``--resume`` continues exactly where a run stopped. At the end the test split
is decoded with the best checkpoint (:func:`evaluation.evaluate_run`).

Every random choice (initial weights, dropout, data order, training-time frame
sampling) is seeded from ``config.seed`` and the epoch. Two runs with the same
seed on the CPU therefore produce identical weights, and a resumed run produces
the weights of an uninterrupted one.

Under ``torchrun`` (environment variables RANK, WORLD_SIZE, LOCAL_RANK) each
process trains on its share of every batch: the NCCL backend on CUDA, gloo on
the CPU. Only rank 0 writes files, shows progress and evaluates the test split.

Shape letters: B batch, P positions, E features, N tokens, V vocabulary size.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Subset
from tqdm import tqdm

from signattention_core.checkpoint import load_checkpoint, save_checkpoint
from signattention_core.config import ConfigError, TrainConfig
from signattention_core.corpus import Corpus
from signattention_core.dataset import SignDataset, fit_tokenizer, make_loader, set_loader_epoch
from signattention_core.device import choose_device
from signattention_core.evaluation import (
    TokenStatistics,
    evaluate_run,
    teacher_forced_loss,
    write_json_atomic,
)
from signattention_core.model import SignTransformer
from signattention_core.tokenizer import Tokenizer
from signattention_core.transforms import n_features

logger = logging.getLogger(__name__)

__all__ = [
    "DistributedInfo",
    "RunFolderError",
    "TrainingResult",
    "balanced_class_weights",
    "distributed_info",
    "evaluate_run",
    "fit",
    "seed_everything",
    "state_dict_digest",
    "train",
]

CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
CORPUS_FILE = "corpus.json"
LAST_CHECKPOINT = "checkpoint.pt"
BEST_CHECKPOINT = "best.pt"
METRICS_CSV = "metrics.csv"

# one row per epoch in metrics.csv, in this order
METRIC_COLUMNS = (
    "epoch",
    "train_loss",
    "train_token_accuracy",
    "val_loss",
    "val_token_accuracy",
    "train_samples",
    "train_seconds",
    "samples_per_second",
    "best_checkpoint",
    "epochs_without_improvement",
)

# config fields a resumed run may change; any other change would make it a different experiment
RESUMABLE_FIELDS = ("epochs", "patience", "num_workers")

# the positional encodings cover at least this many positions and tokens
MIN_MODEL_MAX_LEN = 1024


class RunFolderError(ValueError):
    """The run folder cannot be used as requested; the message names the folder and the fix."""


@dataclass(frozen=True)
class DistributedInfo:
    """This process's place in a (possibly single-process) training job."""

    # global rank of this process, 0 when not distributed
    rank: int = 0
    # number of processes in the job
    world_size: int = 1
    # rank within this machine, which selects the CUDA device
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and shows progress."""
        return self.rank == 0


@dataclass
class TrainingResult:
    """Outcome of :func:`fit` on one rank."""

    # the run folder
    out_dir: Path
    # the trained model after the last epoch (not the best one), unwrapped from DDP
    model: SignTransformer
    # one dict per epoch with the METRIC_COLUMNS keys, including epochs before a resume
    history: list[dict[str, Any]]
    # epoch of best.pt
    best_epoch: int
    # whether early stopping ended the run before config.epochs
    stopped_early: bool
    # test-split metrics from evaluate_run on rank 0; None elsewhere or without a test split
    test_metrics: dict[str, Any] | None = None
    # the configuration the run used, after any override
    config: TrainConfig = field(default_factory=TrainConfig)


def distributed_info() -> DistributedInfo:
    """Read RANK, WORLD_SIZE and LOCAL_RANK as ``torchrun`` sets them; defaults mean one process."""
    try:
        return DistributedInfo(
            rank=int(os.environ.get("RANK", "0")),
            world_size=int(os.environ.get("WORLD_SIZE", "1")),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        )
    except ValueError as error:
        raise RuntimeError(
            f"RANK, WORLD_SIZE and LOCAL_RANK must be integers: {error}; launch with torchrun"
        ) from error


def seed_everything(seed: int) -> None:
    """Seed Python's random module, NumPy and PyTorch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def balanced_class_weights(targets: Sequence[Sequence[int]], vocab_size: int) -> torch.Tensor:
    """Return (V,) loss weights from scikit-learn's "balanced" heuristic.

    Classes are the predicted ids of the training targets: each target without
    its leading BOS, so the words and EOS. With ``n`` predicted tokens over ``k``
    distinct classes, a class seen ``c`` times gets ``n / (k * c)``. Ids never
    predicted in training (PAD, UNK, BOS, unused words) get 1.
    """
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.concatenate([np.asarray(target[1:], dtype=np.int64) for target in targets])
    if labels.size == 0:
        raise ValueError("no training targets to compute class weights from")
    classes = np.unique(labels)
    weights = compute_class_weight("balanced", classes=classes, y=labels)
    out = torch.ones(vocab_size, dtype=torch.float32)  # (V,)
    out[torch.from_numpy(classes)] = torch.from_numpy(weights).float()
    return out


def state_dict_digest(model: torch.nn.Module) -> str:
    """Return a SHA-256 over every parameter and buffer, to compare weights across processes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode("utf-8"))
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train(
    corpus_dir: str | Path | None,
    config: TrainConfig | str | Path | Mapping[str, Any] | None,
    out_dir: str | Path,
    device: str | torch.device | None = None,
    resume: bool = False,
    force: bool = False,
    epochs: int | None = None,
    progress: bool = True,
) -> Path:
    """Train a model and return the run folder; see :func:`fit` for the arguments."""
    return fit(corpus_dir, config, out_dir, device, resume, force, epochs, progress).out_dir


def fit(
    corpus_dir: str | Path | None,
    config: TrainConfig | str | Path | Mapping[str, Any] | None,
    out_dir: str | Path,
    device: str | torch.device | None = None,
    resume: bool = False,
    force: bool = False,
    epochs: int | None = None,
    progress: bool = True,
) -> TrainingResult:
    """Train a model on a corpus, write the run folder and evaluate the test split.

    Args:
        corpus_dir: the corpus folder; with ``resume`` it may be None to reuse
            the one in the run's ``corpus.json``.
        config: a TrainConfig, a config file, a mapping of keys, or None with
            ``resume`` to reuse the run's configuration.
        out_dir: the run folder. It must be absent or empty unless ``resume``
            (continue from its ``checkpoint.pt``) or ``force`` (delete an earlier
            run folder there first).
        device: "auto" or None, "cpu", "cuda", "cuda:N" or "mps". Under torchrun a
            CUDA device is replaced by ``cuda:LOCAL_RANK``.
        resume: continue the run in ``out_dir``.
        force: replace an existing run folder.
        epochs: override ``config.epochs``, e.g. to extend a resumed run.
        progress: show a progress bar per epoch (rank 0 only).

    Raises:
        ConfigError, RunFolderError, CheckpointError, CorpusError: on invalid
            input, naming the file or value and the fix.
    """
    info = distributed_info()
    target = _training_device(device, info)
    created_group = False
    if info.distributed and not dist.is_initialized():
        backend = "nccl" if target.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        created_group = True
        logger.info("rank %d of %d joined the %s process group", info.rank, info.world_size, backend)
    try:
        return _fit(Path(out_dir), corpus_dir, config, target, info, resume, force, epochs, progress)
    finally:
        if created_group and dist.is_initialized():
            dist.destroy_process_group()


# ---------------------------------------------------------------- the training loop


@dataclass
class _RunState:
    """Bookkeeping that checkpoint.pt carries between epochs and across a resume."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_val_loss: float = math.inf
    best_val_token_accuracy: float = -math.inf
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    stopped_early: bool = False
    # words in the longest training target; evaluation bounds decoding by it when MAX_TOKENS is None
    max_train_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "history": [dict(row) for row in self.history],
            "best_val_loss": self.best_val_loss,
            "best_val_token_accuracy": self.best_val_token_accuracy,
            "best_epoch": self.best_epoch,
            "epochs_without_improvement": self.epochs_without_improvement,
            "stopped_early": self.stopped_early,
            "max_train_tokens": self.max_train_tokens,
        }

    def record_epoch(
        self,
        epoch: int,
        train: TokenStatistics,
        val: TokenStatistics,
        n_samples: int,
        seconds: float,
        patience: int | None,
    ) -> dict[str, Any]:
        """Update the best epoch and the early-stopping count; append and return the metrics row.

        The best checkpoint follows the validation loss, early stopping the validation token
        accuracy, as in the study.
        """
        improved_loss = val.loss < self.best_val_loss
        if improved_loss:
            self.best_val_loss = val.loss
            self.best_epoch = epoch
        if val.accuracy > self.best_val_token_accuracy:
            self.best_val_token_accuracy = val.accuracy
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        self.stopped_early = patience is not None and self.epochs_without_improvement >= patience

        row = {
            "epoch": epoch,
            "train_loss": train.loss,
            "train_token_accuracy": train.accuracy,
            "val_loss": val.loss,
            "val_token_accuracy": val.accuracy,
            "train_samples": n_samples,
            "train_seconds": seconds,
            "samples_per_second": n_samples / seconds if seconds > 0 else float("nan"),
            "best_checkpoint": int(improved_loss),
            "epochs_without_improvement": self.epochs_without_improvement,
        }
        self.history.append(row)
        return row

    @classmethod
    def from_checkpoint(cls, payload: Mapping[str, Any]) -> _RunState:
        return cls(
            history=[dict(row) for row in payload.get("history", [])],
            best_val_loss=float(payload.get("best_val_loss", math.inf)),
            best_val_token_accuracy=float(payload.get("best_val_token_accuracy", -math.inf)),
            best_epoch=int(payload.get("best_epoch", 0)),
            epochs_without_improvement=int(payload.get("epochs_without_improvement", 0)),
            stopped_early=bool(payload.get("stopped_early", False)),
        )


def _fit(
    out_dir: Path,
    corpus_dir: str | Path | None,
    config_source: Any,
    device: torch.device,
    info: DistributedInfo,
    resume: bool,
    force: bool,
    epochs: int | None,
    progress: bool,
) -> TrainingResult:
    # rank 0 prepares the run folder and the vocabulary; every rank gets the same plan
    plan = _on_main(
        info, device, lambda: _prepare(out_dir, corpus_dir, config_source, resume, force, epochs)
    )
    config = TrainConfig.from_dict(plan["config"])
    tokenizer = Tokenizer(plan["tokens"])
    checkpoint = plan["checkpoint"]
    if info.is_main:
        corpus = plan.pop("corpus_object")
    else:
        # another machine may keep the corpus elsewhere, so its own --corpus comes first
        corpus = Corpus.open(corpus_dir if corpus_dir is not None else plan["corpus"])

    data = _build_data(corpus, config, tokenizer, info)
    model = _build_model(config, tokenizer, checkpoint).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    if checkpoint is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    trained: torch.nn.Module = model
    if info.distributed:
        device_ids = [device.index] if device.type == "cuda" else None
        trained = DistributedDataParallel(model, device_ids=device_ids)

    class_weights = None
    if config.use_class_weights:
        class_weights = balanced_class_weights(data.train_set.targets, len(tokenizer)).to(device)

    state = _RunState.from_checkpoint(checkpoint) if checkpoint is not None else _RunState()
    state.max_train_tokens = max(len(target) - 2 for target in data.train_set.targets)
    start_epoch = int(checkpoint["epoch"]) + 1 if checkpoint is not None else 1
    if info.is_main:
        n_parameters = sum(parameter.numel() for parameter in model.parameters())
        logger.info(
            "training %s: %d train and %d val samples, vocabulary %d, %d parameters, device %s, "
            "%d process(es), batch %d per process, epochs %d to %d",
            out_dir, len(data.train_set), len(data.val_set), len(tokenizer), n_parameters,
            device, info.world_size, data.batch_size, start_epoch, config.epochs,
        )
    if state.stopped_early:
        logger.info("the run stopped early at epoch %d; nothing left to train", start_epoch - 1)

    epoch = start_epoch
    while epoch <= config.epochs and not state.stopped_early:
        _seed_epoch(data.train_loader, config.seed, epoch, info)
        train_statistics, n_samples, seconds = _train_epoch(
            trained, data.train_loader, optimizer, class_weights, device, info,
            progress=progress and info.is_main, description=f"epoch {epoch}/{config.epochs}",
        )
        val_statistics = _validate(model, data.val_loader, class_weights, device, info)
        row = state.record_epoch(
            epoch, train_statistics, val_statistics, n_samples, seconds, config.patience
        )
        if info.is_main:
            _write_epoch_files(out_dir, model, optimizer, config, tokenizer, epoch, state, row)
            _log_epoch(row, state, config.epochs)
        epoch += 1

    if info.distributed:
        dist.barrier()

    test_metrics = None
    if info.is_main:
        logger.info(
            "best checkpoint: epoch %d (val loss %.4f)", state.best_epoch, state.best_val_loss
        )
        if corpus.split("test"):
            test_metrics = evaluate_run(
                out_dir, "test", corpus_dir=corpus.root, device=device, progress=progress
            )
        else:
            logger.warning("corpus %s has no test split; skipped the final evaluation", corpus.root)

    return TrainingResult(
        out_dir=out_dir,
        model=model,
        history=state.history,
        best_epoch=state.best_epoch,
        stopped_early=state.stopped_early,
        test_metrics=test_metrics,
        config=config,
    )


@dataclass
class _Data:
    """Datasets and loaders of one process."""

    train_set: SignDataset
    val_set: SignDataset
    train_loader: Any
    val_loader: Any
    # samples per step in this process
    batch_size: int


def _build_data(corpus: Corpus, config: TrainConfig, tokenizer: Tokenizer, info: DistributedInfo) -> _Data:
    transform = config.transform_config()
    train_set = SignDataset(
        corpus, "train", tokenizer, transform, config.output_mode, config.max_tokens,
        train=True, seed=config.seed,
    )
    val_set = SignDataset(
        corpus, "val", tokenizer, transform, config.output_mode, config.max_tokens, train=False
    )
    for dataset in (train_set, val_set):
        if len(dataset) == 0:
            raise ValueError(
                f"split {dataset.split!r} of corpus {corpus.root} has no usable samples; training "
                "needs samples in train and val (val picks the best checkpoint and stops early)"
            )

    # NOTE: under DDP each process averages the loss over its own tokens and DDP averages the
    # gradients of the processes, which weighs tokens slightly differently from one process
    # with the whole batch. DistributedSampler also repeats a few samples when the training
    # split does not divide by the number of processes.
    batch_size = _per_process_batch_size(config.batch_size, info)
    train_loader = make_loader(
        train_set, batch_size, shuffle=True, seed=config.seed,
        distributed=info.distributed, num_workers=config.num_workers,
    )
    # each process scores every world_size-th validation sample, so nothing is counted twice
    val_shard = Subset(val_set, range(info.rank, len(val_set), info.world_size))
    val_loader = make_loader(val_shard, batch_size, shuffle=False, seed=config.seed)
    return _Data(train_set, val_set, train_loader, val_loader, batch_size)


def _build_model(
    config: TrainConfig, tokenizer: Tokenizer, checkpoint: Mapping[str, Any] | None
) -> SignTransformer:
    """Build the model with seeded initial weights, or the checkpoint's weights on a resume."""
    seed_everything(config.seed)
    model = SignTransformer(
        n_features=n_features(config.transform_config()),
        vocab_size=len(tokenizer),
        d_model=config.d_model,
        nhead=config.nhead,
        num_encoder_layers=config.num_encoder_layers,
        num_decoder_layers=config.num_decoder_layers,
        dim_feedforward=config.dim_feedforward,
        dropout=config.dropout,
        max_len=_model_max_len(config),
    )
    if checkpoint is not None:
        model.load_state_dict(checkpoint["state_dict"])
    return model


def _log_epoch(row: Mapping[str, Any], state: _RunState, epochs: int) -> None:
    logger.info(
        "epoch %d/%d: train loss %.4f acc %.3f | val loss %.4f acc %.3f | %.1f samples/s%s",
        row["epoch"], epochs, row["train_loss"], row["train_token_accuracy"],
        row["val_loss"], row["val_token_accuracy"], row["samples_per_second"],
        " | saved best.pt" if row["best_checkpoint"] else "",
    )
    if state.stopped_early:
        logger.info(
            "early stopping: validation token accuracy has not risen for %d epochs (best %.3f)",
            state.epochs_without_improvement, state.best_val_token_accuracy,
        )


def _train_epoch(
    model: torch.nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    class_weights: torch.Tensor | None,
    device: torch.device,
    info: DistributedInfo,
    progress: bool,
    description: str,
) -> tuple[TokenStatistics, int, float]:
    """Run one epoch of updates; return the statistics, samples and seconds of all processes."""
    model.train()
    statistics = TokenStatistics()
    n_samples = 0
    started = time.perf_counter()
    bar = tqdm(total=len(loader), desc=description, unit="batch", disable=not progress, leave=False)
    for batch in loader:
        batch = batch.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss, batch_statistics = teacher_forced_loss(model, batch, class_weights)
        loss.backward()
        optimizer.step()

        statistics.add(batch_statistics)
        n_samples += len(batch)
        elapsed = time.perf_counter() - started
        bar.set_postfix_str(
            f"loss={statistics.loss:.4f} acc={statistics.accuracy:.3f} "
            f"samples/s={n_samples / elapsed:.1f}",
            refresh=False,
        )
        bar.update(1)
    bar.close()
    seconds = time.perf_counter() - started

    if info.distributed:
        counts = torch.tensor([n_samples], dtype=torch.float64, device=device)
        packed = torch.cat([statistics.to_tensor(device), counts])
        dist.all_reduce(packed)
        statistics = TokenStatistics.from_tensor(packed[:4].cpu())
        n_samples = round(packed[4].item())
        # the slowest process sets the epoch time, so samples/s is the whole job's throughput
        elapsed = torch.tensor([seconds], dtype=torch.float64, device=device)
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
        seconds = elapsed.item()
    return statistics, n_samples, seconds


@torch.no_grad()
def _validate(
    model: SignTransformer,
    loader,
    class_weights: torch.Tensor | None,
    device: torch.device,
    info: DistributedInfo,
) -> TokenStatistics:
    """Score the validation split teacher-forced, summed over all processes."""
    model.eval()
    statistics = TokenStatistics()
    for batch in loader:
        batch = batch.to(device, non_blocking=True)
        _, batch_statistics = teacher_forced_loss(model, batch, class_weights)
        statistics.add(batch_statistics)
    if info.distributed:
        packed = statistics.to_tensor(device)
        dist.all_reduce(packed)
        statistics = TokenStatistics.from_tensor(packed.cpu())
    return statistics


def _seed_epoch(loader, seed: int, epoch: int, info: DistributedInfo) -> None:
    """Seed dropout, data order and frame sampling from (seed, epoch), so a resume repeats them."""
    torch.manual_seed(_derived_seed(seed, epoch, info.rank))
    set_loader_epoch(loader, epoch)
    generator = getattr(loader.sampler, "generator", None)
    if generator is not None:
        generator.manual_seed(_derived_seed(seed, epoch))


def _derived_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] >> 1)


def _write_epoch_files(
    out_dir: Path,
    model: SignTransformer,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    tokenizer: Tokenizer,
    epoch: int,
    state: _RunState,
    row: Mapping[str, Any],
) -> None:
    """Write best.pt (when the validation loss fell), checkpoint.pt and metrics.csv."""
    if row["best_checkpoint"]:
        save_checkpoint(
            out_dir / BEST_CHECKPOINT, model, config, tokenizer, epoch,
            extra={
                "val_loss": row["val_loss"],
                "val_token_accuracy": row["val_token_accuracy"],
                "max_train_tokens": state.max_train_tokens,
            },
        )
    save_checkpoint(
        out_dir / LAST_CHECKPOINT, model, config, tokenizer, epoch,
        extra={"optimizer": optimizer.state_dict(), **state.to_dict()},
    )
    _write_metrics_csv(out_dir / METRICS_CSV, state.history)


def _write_metrics_csv(path: Path, history: Sequence[Mapping[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS)
            writer.writeheader()
            for row in history:
                writer.writerow({key: _format_metric(row[key]) for key in METRIC_COLUMNS})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _format_metric(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


# ---------------------------------------------------------------- setup


def _prepare(
    out_dir: Path,
    corpus_dir: str | Path | None,
    config_source: Any,
    resume: bool,
    force: bool,
    epochs: int | None,
) -> dict[str, Any]:
    """Check and create the run folder, read or fit the vocabulary; rank 0 only."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RunFolderError(f"--out {out_dir} is a file; choose a folder for the run")

    checkpoint = None
    if resume:
        last = out_dir / LAST_CHECKPOINT
        if not last.is_file():
            raise RunFolderError(
                f"cannot resume: {last} not found; start the run without --resume"
            )
        checkpoint = load_checkpoint(last)
        config = _resumed_config(checkpoint, config_source, last)
        corpus_path = _resumed_corpus(out_dir, corpus_dir)
    else:
        if config_source is None:
            raise ConfigError("no configuration given; pass --config FILE")
        if corpus_dir is None:
            raise RunFolderError("no corpus given; pass --corpus DIR")
        config = _as_config(config_source)
        corpus_path = Path(corpus_dir)
        _check_run_folder(out_dir, force)

    if epochs is not None:
        config = config.replace(epochs=epochs)

    corpus = Corpus.open(corpus_path)
    if checkpoint is not None:
        tokenizer = Tokenizer(checkpoint["tokens"])
    else:
        tokenizer = fit_tokenizer(corpus, config.output_mode, "train")
        if len(tokenizer.words) == 0:
            raise ValueError(
                f"the train split of corpus {corpus_path} has no {config.output_mode} tokens; "
                "add training samples with annotations"
            )
        # an earlier run is deleted only once the new configuration and corpus proved valid
        if force and out_dir.is_dir() and any(out_dir.iterdir()):
            logger.warning("--force: deleting the earlier run in %s", out_dir)
            shutil.rmtree(out_dir)

    # the folder records what the run uses before the first epoch starts
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / CONFIG_FILE, config.to_dict())
    tokenizer.save(out_dir / VOCAB_FILE)
    write_json_atomic(
        out_dir / CORPUS_FILE, {"name": corpus.name, "path": str(corpus.root.resolve())}
    )
    return {
        "config": config.to_dict(),
        "tokens": list(tokenizer.tokens),
        "checkpoint": checkpoint,
        "corpus": str(corpus.root.resolve()),
        "corpus_object": corpus,
    }


def _as_config(source: Any) -> TrainConfig:
    if isinstance(source, TrainConfig):
        return source
    if isinstance(source, (str, Path)):
        return TrainConfig.from_file(source)
    if isinstance(source, Mapping):
        return TrainConfig.from_dict(source)
    raise ConfigError(
        f"config must be a TrainConfig, a file path or a mapping, got {type(source).__name__}"
    )


def _resumed_config(checkpoint: Mapping[str, Any], source: Any, path: Path) -> TrainConfig:
    """Return the checkpoint's config; a given config may differ only in RESUMABLE_FIELDS."""
    stored = TrainConfig.from_dict(checkpoint["config"], source=f"{path} config")
    if source is None:
        return stored
    given = _as_config(source)
    changed = {
        name: (old, given.to_dict()[name])
        for name, old in stored.to_dict().items()
        if given.to_dict()[name] != old and name not in RESUMABLE_FIELDS
    }
    if changed:
        listed = "; ".join(f"{name.upper()} {old!r} -> {new!r}" for name, (old, new) in changed.items())
        raise ConfigError(
            f"cannot resume {path.parent} with a different configuration ({listed}); only "
            f"{', '.join(name.upper() for name in RESUMABLE_FIELDS)} may change. Resume without "
            "--config, or start a new run folder"
        )
    return stored.replace(**{name: getattr(given, name) for name in RESUMABLE_FIELDS})


def _resumed_corpus(out_dir: Path, corpus_dir: str | Path | None) -> Path:
    if corpus_dir is not None:
        return Path(corpus_dir)
    recorded = out_dir / CORPUS_FILE
    try:
        path = json.loads(recorded.read_text(encoding="utf-8")).get("path")
    except (OSError, ValueError, AttributeError) as error:
        raise RunFolderError(
            f"cannot read the corpus path from {recorded} ({error}); pass --corpus DIR"
        ) from error
    if not path:
        raise RunFolderError(f"{recorded} names no corpus; pass --corpus DIR")
    return Path(path)


def _check_run_folder(out_dir: Path, force: bool) -> None:
    """Reject a non-empty folder, unless ``force`` is set and it contains an earlier run."""
    if not out_dir.is_dir():
        return
    present = sorted(path.name for path in out_dir.iterdir())
    if not present:
        return
    if not force:
        shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
        raise RunFolderError(
            f"run folder {out_dir} already contains files ({shown}); pass --resume to continue "
            "the run, --force to replace it, or choose another --out"
        )
    if not ((out_dir / CONFIG_FILE).is_file() or (out_dir / LAST_CHECKPOINT).is_file()):
        raise RunFolderError(
            f"--force replaces only run folders, and {out_dir} has neither {CONFIG_FILE} nor "
            f"{LAST_CHECKPOINT}; choose another --out"
        )


def _on_main(info: DistributedInfo, device: torch.device, task: Callable[[], dict]) -> dict:
    """Run ``task`` on rank 0 and send its result (or its failure) to every rank."""
    if not info.distributed:
        return task()

    if info.is_main:
        try:
            result = task()
        except Exception as error:
            failure = f"{type(error).__name__}: {error}"
            dist.broadcast_object_list([None, failure], src=0, device=_object_device(device))
            raise
        # the corpus object stays on rank 0; the other ranks open the corpus themselves
        shared = {key: value for key, value in result.items() if key != "corpus_object"}
        dist.broadcast_object_list([shared, None], src=0, device=_object_device(device))
        return result

    received: list[Any] = [None, None]
    dist.broadcast_object_list(received, src=0, device=_object_device(device))
    if received[1] is not None:
        raise RuntimeError(f"rank 0 failed to prepare the run: {received[1]}")
    return received[0]


def _object_device(device: torch.device) -> torch.device | None:
    return device if device.type == "cuda" else None


def _training_device(flag: str | torch.device | None, info: DistributedInfo) -> torch.device:
    device = choose_device(flag)
    if not info.distributed:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
        return device
    if device.type == "mps":
        raise ValueError(
            "distributed training runs on CUDA or on the CPU, not on MPS; pass --device cpu"
        )
    return device


def _per_process_batch_size(batch_size: int, info: DistributedInfo) -> int:
    if not info.distributed:
        return batch_size
    per_process = max(1, batch_size // info.world_size)
    if per_process * info.world_size != batch_size:
        logger.warning(
            "BATCH_SIZE %d is not divisible by %d processes; each takes %d samples per step "
            "(%d in all)", batch_size, info.world_size, per_process, per_process * info.world_size,
        )
    return per_process


def _model_max_len(config: TrainConfig) -> int:
    """Length of the positional encoding tables: enough for every position and token."""
    longest_target = (config.max_tokens or 0) + 2
    return max(MIN_MODEL_MAX_LEN, config.max_frames, longest_target)

