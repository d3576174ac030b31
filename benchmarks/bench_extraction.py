"""Benchmark attention extraction against the study's step-by-step method and plain inference.

On one model and one set of samples, the script measures samples per second of

- the full extraction: ``extraction.extract`` end to end in this process. It
  loads the run, opens the corpus, reads and transforms the poses, decodes,
  captures, computes the alignment metrics and writes the Parquet tables;
- the study's extraction: each sample's pose is read and transformed, then
  decoded step by step with forward hooks on the attention modules
  (``capture.capture_step_by_step``, one decoder pass per step). Its
  head-averaged prefix matrices go to one ``torch.save`` file per sample, as
  the study stored them;
- plain batched inference: greedy decoding without capture, on batches loaded
  before timing (model work only);
- batched capture: the model work of ``extract.py``
  (``extraction.decode_and_capture``), on the same preloaded batches;
- step by step with hooks, model work only, on preloaded samples.

It then prints the ratios, the largest difference between the batched and the
step-by-step weights, and the bytes per sample of the artifact folder against
``torch.save`` of the same tensors.

By default the model is the study's architecture (configs/study_gsl.json)
trained for a few epochs on the synthetic demo corpus, so that hypotheses have
realistic lengths. Both are built under --work-dir on the first run and reused
after. ``--run`` benchmarks an existing run instead.

    python benchmarks/bench_extraction.py --epochs 3 --device cpu
    python benchmarks/bench_extraction.py --run runs/demo --corpus data/demo-corpus
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from signattention_core.capture import SampleCapture, capture_step_by_step  # noqa: E402
from signattention_core.checkpoint import load_run  # noqa: E402
from signattention_core.config import TrainConfig  # noqa: E402
from signattention_core.corpus import Corpus  # noqa: E402
from signattention_core.corpus.synthetic import write_demo_corpus  # noqa: E402
from signattention_core.dataset import SignDataset, collate  # noqa: E402
from signattention_core.decoding import greedy_decode  # noqa: E402
from signattention_core.extraction import (  # noqa: E402
    ExtractionConfig,
    decode_and_capture,
    default_max_len,
    extract,
    read_corpus_reference,
)
from signattention_core.tokenizer import BOS_ID, EOS_ID  # noqa: E402
from signattention_core.training import train  # noqa: E402

CAPTURED = ("encoder_self", "decoder_self", "cross", "self_norm", "cross_norm", "signed_diff")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="folder for the corpus, run and outputs, reused between runs (default: a temporary folder)")
    parser.add_argument("--run", type=Path, default=None,
                        help="benchmark this trained run folder instead of training the study architecture")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="corpus folder for --run (default: the path in the run's corpus.json)")
    parser.add_argument("--size", default="default", choices=("small", "default"), help="demo corpus size (default: default)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the benchmark model (default: 3)")
    parser.add_argument("--split", default="test", help="split to extract (default: test)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N samples of the split")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per batch (default: 32)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (default: cpu)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs of each method; the fastest counts, as the machine may be shared (default: 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="PyTorch CPU threads; 0 keeps PyTorch's default (default: 1)")
    return parser.parse_args()


def prepare(work_dir: Path, size: str, epochs: int, device: str) -> tuple[Path, Path]:
    """Build the demo corpus and train the benchmark model unless they exist; return the run and corpus folders."""
    corpus_dir = work_dir / f"corpus-{size}"
    run_dir = work_dir / f"run-{size}-{epochs}"
    if not corpus_dir.is_dir():
        write_demo_corpus(corpus_dir, seed=0, size=size)
    if not (run_dir / "best.pt").is_file():
        config = TrainConfig.from_file(REPO_ROOT / "configs" / "study_gsl.json").replace(epochs=epochs, lr=3e-3)
        train(corpus_dir, config, run_dir, device=device, force=True, progress=False)
    return run_dir, corpus_dir


def timed(function, repeats: int):
    """Run a function `repeats` times; return its last result and the fastest time in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return result, best


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def study_sample_layout(capture: SampleCapture) -> dict:
    """Return what the study pickled for one sample: per layer, one head-averaged matrix per decoder call.

    The decoder call of step i returned the (i+1, i+1) self-attention and the
    (i+1, P) cross-attention of its whole prefix, and the study kept every call.
    """
    sample = {"encoder_sa": {}, "decoder_sa": {}, "decoder_ca": {}}
    for layer in range(capture.encoder_self.shape[0]):
        sample["encoder_sa"][layer] = [torch.from_numpy(capture.encoder_self[layer].mean(axis=0))]
    for layer in range(capture.cross.shape[0]):
        self_mean = capture.decoder_self[layer].mean(axis=0)  # (N, N)
        cross_mean = capture.cross[layer].mean(axis=0)  # (N, P)
        n_steps = cross_mean.shape[0]
        sample["decoder_sa"][layer] = [torch.from_numpy(self_mean[: i + 1, : i + 1].copy()) for i in range(n_steps)]
        sample["decoder_ca"][layer] = [torch.from_numpy(cross_mean[: i + 1].copy()) for i in range(n_steps)]
    return sample


def _size_ratio(label: str, ours: int, pickled: int) -> str:
    """Describe a size against the pickle as a ratio above 1, e.g. `2.00x smaller`."""
    if ours <= pickled:
        return f"{label} {pickled / ours:.2f}x smaller"
    return f"{label} {ours / pickled:.2f}x larger"


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-extraction-"))
    work_dir.mkdir(parents=True, exist_ok=True)

    if args.run is not None:
        run_dir = args.run
        corpus_dir = args.corpus or Path(read_corpus_reference(run_dir)["path"])
        source = f"run {run_dir}"
    else:
        print(f"preparing corpus and model in {work_dir} ...", flush=True)
        run_dir, corpus_dir = prepare(work_dir, args.size, args.epochs, args.device)
        source = f"the study's architecture trained {args.epochs} epochs on the {args.size} demo corpus"
    loaded = load_run(run_dir, device=args.device)
    model, device = loaded.model, next(loaded.model.parameters()).device
    corpus = Corpus.open(corpus_dir)
    dataset = SignDataset(corpus, args.split, loaded.tokenizer, loaded.transform,
                          output_mode=loaded.config.output_mode, max_tokens=loaded.config.max_tokens)
    n = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    max_len = default_max_len(loaded)

    # the model-only methods get the same samples, already loaded and transformed
    items = [dataset[i] for i in range(n)]
    batches = [collate(items[i : i + args.batch_size]).to(device) for i in range(0, n, args.batch_size)]
    positions = [int(item["features"].shape[0]) for item in items]
    study_dir = work_dir / "study-pickles"

    def plain():
        out = [greedy_decode(model, b.src, b.src_padding_mask, max_len=max_len) for b in batches]
        sync(device)
        return out

    def capture_with(encoder_per_sample: bool):
        config = ExtractionConfig(run_dir=run_dir, out_dir=work_dir / "unused", batch_size=args.batch_size,
                                  encoder_per_sample=encoder_per_sample)
        out = []
        for b in batches:
            out.extend(decode_and_capture(model, b, config, max_len)[1])
        sync(device)
        return out

    def batched_capture():
        return capture_with(encoder_per_sample=True)

    def batched_encoder_capture():
        return capture_with(encoder_per_sample=False)

    def step_by_step():
        out = []
        for item in items:
            src = item["features"].unsqueeze(0).to(device)  # (1, P, E)
            mask = torch.zeros(src.shape[:2], dtype=torch.bool, device=device)  # (1, P)
            out.append(capture_step_by_step(model, src, mask, None, max_len, BOS_ID, EOS_ID))
        return out

    def study_extraction():
        # read, decode step by step with hooks, and save one pickle per sample
        shutil.rmtree(study_dir, ignore_errors=True)
        study_dir.mkdir(parents=True)
        for index in range(n):
            item = dataset[index]
            src = item["features"].unsqueeze(0).to(device)  # (1, P, E)
            mask = torch.zeros(src.shape[:2], dtype=torch.bool, device=device)  # (1, P)
            _, _, capture = capture_step_by_step(model, src, mask, None, max_len, BOS_ID, EOS_ID)
            torch.save(study_sample_layout(capture), study_dir / f"{index:06d}.pt")
        return study_dir

    def full_extraction():
        config = ExtractionConfig(run_dir=run_dir, out_dir=work_dir / "artifact", split=args.split,
                                  batch_size=args.batch_size, device=args.device, force=True, limit=n,
                                  progress=False, corpus_dir=corpus_dir)
        return extract(config)

    # one untimed pass warms up kernels, allocators and lazy imports
    plain()
    full_extraction()
    hypotheses, plain_s = timed(plain, args.repeats)
    captured, batched_s = timed(batched_capture, args.repeats)
    _, batched_encoder_s = timed(batched_encoder_capture, args.repeats)
    reference, step_s = timed(step_by_step, args.repeats)
    _, study_s = timed(study_extraction, args.repeats)
    artifact_dir, full_s = timed(full_extraction, args.repeats)

    # exactness: batched capture against the step-by-step reference, same hypotheses only
    flat_hypotheses = [h for batch in hypotheses for h in batch]
    same = [i for i in range(n) if reference[i][0] == flat_hypotheses[i] and reference[i][1]]
    max_difference = max(
        (float(np.abs(getattr(captured[i], name) - getattr(reference[i][2], name)).max())
         for i in same for name in ("encoder_self", "decoder_self", "cross")),
        default=float("nan"),
    )

    # disk: the artifact folder against torch.save of the same tensors
    table_bytes = {path.name: path.stat().st_size for path in sorted(artifact_dir.iterdir()) if path.is_file()}
    artifact_bytes = sum(table_bytes.values())
    pickle_path = work_dir / "attention.pt"
    torch.save({i: {name: torch.from_numpy(np.ascontiguousarray(getattr(c, name))) for name in CAPTURED}
                for i, c in enumerate(captured)}, pickle_path)
    pickle_bytes = pickle_path.stat().st_size
    study_bytes = sum(path.stat().st_size for path in study_dir.iterdir())

    rates = {name: n / seconds for name, seconds in
             (("plain", plain_s), ("batched", batched_s), ("batched_encoder", batched_encoder_s),
              ("full", full_s), ("step", step_s), ("study", study_s))}
    steps = [len(h) + 1 for h in flat_hypotheses]
    print()
    print(f"model: {source}; {sum(p.numel() for p in model.parameters())} parameters, d_model {model.d_model}, "
          f"{loaded.config.nhead} heads, {loaded.config.num_encoder_layers}+{loaded.config.num_decoder_layers} layers; "
          f"device {device}, torch threads {torch.get_num_threads()}")
    print(f"samples: {n} from split {args.split!r} of {corpus_dir}; positions mean "
          f"{np.mean(positions):.1f} (max {max(positions)}), decoder steps mean {np.mean(steps):.1f} "
          f"(max {max(steps)}), batch size {args.batch_size}, max_len {max_len}")
    print()
    print(f"{'method':<62}{'samples/s':>12}{'seconds':>10}")
    rows = [
        ("full extraction (load, read, capture, metrics, Parquet)", "full", full_s),
        ("study's extraction (read, step by step, torch.save each)", "study", study_s),
        ("plain batched inference (greedy, no capture, model only)", "plain", plain_s),
        ("batched capture (greedy + teacher-forced pass, model only)", "batched", batched_s),
        ("  the same with the batched encoder (--batched-encoder)", "batched_encoder", batched_encoder_s),
        ("step by step with hooks (model only)", "step", step_s),
    ]
    for label, key, seconds in rows:
        print(f"{label:<62}{rates[key]:>12.1f}{seconds:>10.3f}")
    print()
    print(f"full extraction / study's extraction (speed): {rates['full'] / rates['study']:8.2f}x  (aim: >= 20)")
    print(f"full extraction time / plain inference time:  {full_s / plain_s:8.2f}   (aim: <= 2)")
    print(f"batched capture / step by step (speed):       {rates['batched'] / rates['step']:8.2f}x")
    print(f"batched capture time / plain inference time:  {batched_s / plain_s:8.2f}")
    print(f"  with the batched encoder:                   {batched_encoder_s / plain_s:8.2f}")
    print(f"full extraction time outside the model:       {full_s - batched_s:8.3f} s "
          f"({(full_s - batched_s) / full_s:.0%} of the full extraction; estimated as full minus batched capture)")
    print(f"max |batched - step by step| weight:          {max_difference:8.1e}  "
          f"({len(same)} of {n} samples with the same hypothesis)")
    print()
    print(f"artifact folder:                      {artifact_bytes / n:10.0f} bytes/sample "
          "(per-head weights, contributions, metrics, poses, metadata)")
    for name, size in table_bytes.items():
        print(f"  {name:<36}{size / n:10.0f} bytes/sample")
    attention_bytes = sum(size for name, size in table_bytes.items() if name.startswith("attention"))
    print(f"torch.save of the same tensors:       {pickle_bytes / n:10.0f} bytes/sample "
          f"({_size_ratio('attention table', attention_bytes, pickle_bytes)}, "
          f"{_size_ratio('whole artifact', artifact_bytes, pickle_bytes)})")
    print(f"torch.save in the study's layout:     {study_bytes / n:10.0f} bytes/sample "
          "(one file per sample, every step's prefix matrices, averaged over heads)")


if __name__ == "__main__":
    main()
