"""Measure training and decoding throughput, batched against a loop over single samples.

    python benchmarks/bench_training.py [--corpus DIR] [--config configs/demo.json]
                                        [--run DIR] [--samples 256] [--threads 1] [--device cpu]
    python benchmarks/bench_training.py --demo-run [--threads 2]

Without --corpus the "small" demo corpus is written to a temporary folder.
Items are loaded and transformed once before timing, so the figures measure
the model, the optimizer and the decoders, not pose file reading. After one
untimed warm-up pass, each figure is the fastest of --repeats passes. Each
line prints samples per second and the batched / single-sample ratio:

- training: one optimizer step per batch, against a forward and backward pass
  per sample with the gradients accumulated over the same batch (the same
  update up to padding and summation order);
- greedy and beam (K=5) decoding of the test items, batched against one
  sample at a time.

``--demo-run`` instead trains the configuration on the default demo corpus
(written to a temporary folder first, which is not timed) and prints the
epochs, wall and CPU time, and the test exact match, BLEU-4 and WER.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from signattention_core.checkpoint import load_run  # noqa: E402
from signattention_core.config import TrainConfig  # noqa: E402
from signattention_core.corpus import Corpus  # noqa: E402
from signattention_core.corpus.synthetic import write_demo_corpus  # noqa: E402
from signattention_core.dataset import SignDataset, collate, fit_tokenizer  # noqa: E402
from signattention_core.decoding import beam_search, greedy_decode  # noqa: E402
from signattention_core.device import choose_device  # noqa: E402
from signattention_core.evaluation import teacher_forced_loss  # noqa: E402
from signattention_core.model import SignTransformer  # noqa: E402
from signattention_core.training import fit  # noqa: E402
from signattention_core.transforms import n_features  # noqa: E402

BEAM_SIZE = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", help="corpus folder; default the run's corpus, or a fresh "
                        "'small' demo corpus")
    parser.add_argument("--config", default=str(REPO_ROOT / "configs" / "demo.json"),
                        help="training configuration of the untrained model")
    parser.add_argument("--run", help="run folder whose trained model, config and vocabulary to "
                        "use instead of --config; a trained model stops decoding at EOS")
    parser.add_argument("--samples", type=int, default=256,
                        help="training items timed; decoding uses up to this many test items")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed passes per figure; the fastest is reported")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    parser.add_argument("--demo-run", action="store_true",
                        help="train --config on the default demo corpus and report the test metrics")
    args = parser.parse_args()

    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    if args.demo_run:
        run_demo(args.config, args.corpus, device, args.threads)
        return

    if args.run:
        run = load_run(args.run, device=device, which="best")
        config, tokenizer, model = run.config, run.tokenizer, run.model
        source = f"run {args.run}"
        recorded = (run.info.get("corpus") or {}).get("path")
        corpus_arg = args.corpus or recorded
    else:
        config = TrainConfig.from_file(args.config)
        source = f"untrained model, config {Path(args.config).name}"
        corpus_arg = args.corpus

    with tempfile.TemporaryDirectory() as tmp:
        if corpus_arg:
            corpus_dir = Path(corpus_arg)
        else:
            corpus_dir = write_demo_corpus(Path(tmp) / "small", seed=0, size="small")
        corpus = Corpus.open(corpus_dir)
        if not args.run:
            tokenizer = fit_tokenizer(corpus, config.output_mode)
        transform = config.transform_config()

        train_set = SignDataset(corpus, "train", tokenizer, transform, config.output_mode,
                                config.max_tokens, train=True, seed=config.seed)
        test_set = SignDataset(corpus, "test", tokenizer, transform, config.output_mode,
                               config.max_tokens, train=False)
        # items are read once; the training items repeat when the split is smaller
        train_items = [train_set[index % len(train_set)] for index in range(args.samples)]
        test_items = [test_set[index] for index in range(min(len(test_set), args.samples))]

    if not args.run:
        torch.manual_seed(config.seed)
        model = SignTransformer(
            n_features(transform), len(tokenizer), config.d_model, config.nhead,
            config.num_encoder_layers, config.num_decoder_layers, config.dim_feedforward,
            config.dropout,
        ).to(device)
    max_steps = (config.max_tokens or 20) + 1

    print(f"{source}, corpus {corpus_dir.name}: D={config.d_model} H={config.nhead} "
          f"FF={config.dim_feedforward} L={config.num_encoder_layers}+{config.num_decoder_layers}, "
          f"batch {config.batch_size}, device {device}, {args.threads} thread(s)")
    print(f"{'task':<11} {'items':>6} {'batched/s':>10} {'single/s':>10} {'ratio':>7}")

    # decoding first, so that a loaded model is timed before the training steps change it
    for name, decoder in (("greedy", "greedy"), (f"beam k={BEAM_SIZE}", "beam")):
        def decode(batch_size: int, items: list[dict] = test_items, decoder: str = decoder) -> float:
            return time_decoding(model, items, batch_size, device, decoder, max_steps)

        decode(config.batch_size, test_items[: config.batch_size])  # warm-up, not timed
        batched = min(decode(config.batch_size) for _ in range(args.repeats))
        single = min(decode(1) for _ in range(args.repeats))
        report(name, len(test_items), batched, single)

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    def train_pass(single: bool, items: list[dict] = train_items) -> float:
        return time_training(model, optimizer, items, config.batch_size, device, single=single)

    train_pass(False, train_items[: config.batch_size])  # warm-up, not timed
    batched = min(train_pass(False) for _ in range(args.repeats))
    single = min(train_pass(True) for _ in range(args.repeats))
    report("training", len(train_items), batched, single)


def run_demo(config_path: str, corpus_arg: str | None, device: torch.device, threads: int) -> None:
    """Train a configuration on the default demo corpus and print time and test metrics."""
    with tempfile.TemporaryDirectory() as tmp:
        if corpus_arg:
            corpus_dir = Path(corpus_arg)
        else:
            corpus_dir = write_demo_corpus(Path(tmp) / "demo", seed=0, size="default")
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        result = fit(corpus_dir, config_path, Path(tmp) / "run", device=device, progress=False)
        wall = time.perf_counter() - wall_started
        cpu = time.process_time() - cpu_started

    metrics = result.test_metrics
    print(f"config {Path(config_path).name}, corpus {corpus_dir.name}, device {device}, "
          f"{threads} thread(s)")
    print(f"{len(result.history)} epochs (best checkpoint: epoch {result.best_epoch}), "
          f"{wall:.0f} s wall, {cpu:.0f} s CPU in this process")
    print(f"test split, {metrics['n_samples']} samples: exact match {metrics['exact_match']:.3f}, "
          f"BLEU-4 {metrics['bleu_4']:.2f}, WER {metrics['wer']:.3f}, "
          f"token accuracy {metrics['token_accuracy']:.3f}")


def time_training(model, optimizer, items, batch_size, device, single: bool) -> float:
    """Return the seconds one pass over ``items`` takes, stepping once per batch."""
    model.train()
    groups = [items[start:start + batch_size] for start in range(0, len(items), batch_size)]
    batches = [[collate([item]) for item in group] if single else [collate(group)] for group in groups]
    synchronize(device)
    started = time.perf_counter()
    for parts in batches:
        optimizer.zero_grad(set_to_none=True)
        for part in parts:
            loss, _ = teacher_forced_loss(model, part.to(device))
            # the mean over the batch, as the batched step computes it
            (loss / len(parts)).backward()
        optimizer.step()
    synchronize(device)
    return time.perf_counter() - started


@torch.no_grad()
def time_decoding(model, items, batch_size, device, decoder: str, max_steps: int) -> float:
    """Return the seconds decoding every item takes in batches of ``batch_size``."""
    batches = [collate(items[start:start + batch_size]) for start in range(0, len(items), batch_size)]
    synchronize(device)
    started = time.perf_counter()
    for batch in batches:
        batch = batch.to(device)
        if decoder == "greedy":
            greedy_decode(model, batch.src, batch.src_padding_mask, max_len=max_steps)
        else:
            beam_search(model, batch.src, batch.src_padding_mask, beam_size=BEAM_SIZE,
                        max_len=max_steps)
    synchronize(device)
    return time.perf_counter() - started


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def report(name: str, n_items: int, batched_seconds: float, single_seconds: float) -> None:
    batched_rate = n_items / batched_seconds
    single_rate = n_items / single_seconds
    print(f"{name:<11} {n_items:>6} {batched_rate:>10.1f} {single_rate:>10.1f} "
          f"{batched_rate / single_rate:>6.1f}x")


if __name__ == "__main__":
    main()
