"""Evaluation of a trained run: translation metrics and teacher-forced token statistics.

Sequences arrive as lists of tokens (glosses such as ``ΕΓΩ(1)`` or words of the
text). BLEU is computed with sacrebleu and ``tokenize="none"`` on the tokens
joined with single spaces, so its n-grams are exactly the model's tokens and no
punctuation or bracket inside a gloss is split off.

Shape letters: B batch, P positions, E features, N tokens, V vocabulary size.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jiwer
import sacrebleu
import torch
import torch.nn.functional as F
from sacrebleu.metrics import BLEU
from torch import Tensor
from tqdm import tqdm

from signattention_core.checkpoint import load_run
from signattention_core.corpus import Corpus
from signattention_core.dataset import SignDataset, make_loader
from signattention_core.decoding import beam_search, greedy_decode
from signattention_core.tokenizer import PAD_ID

logger = logging.getLogger(__name__)

DECODERS = ("greedy", "beam")
METRICS_FILE = "metrics.json"
TRANSLATIONS_FILE = "translations.csv"
TRANSLATION_COLUMNS = (
    "id", "split", "signer", "repetition", "sentence_group", "reference", "hypothesis",
    "exact_match", "sentence_bleu", "wer",
)

TOKENIZATION = (
    "sacrebleu tokenize='none' on the model's tokens joined with single spaces: "
    "each gloss (or word in text mode) is one token and nothing inside it is split"
)
MAX_NGRAM_ORDER = 4


def sentence_metrics(reference: Sequence[str], hypothesis: Sequence[str]) -> dict:
    """Score one hypothesis against its reference.

    Returns:
        ``sentence_bleu``: sacrebleu's sentence BLEU (0-100, effective n-gram order,
        exponential smoothing); ``wer``: word error rate (edits / reference tokens);
        ``exact_match``: whether both token lists are equal.
    """
    _check_tokens(reference, "reference")
    _check_tokens(hypothesis, "hypothesis")
    if not reference:
        raise ValueError("the reference has no tokens, so its word error rate is undefined")

    reference_text = " ".join(reference)
    hypothesis_text = " ".join(hypothesis)
    bleu = sacrebleu.sentence_bleu(
        hypothesis_text, [reference_text], tokenize="none", use_effective_order=True
    )
    return {
        # sacrebleu's brevity penalty and n-gram precisions can multiply to 100.00000000000004
        "sentence_bleu": min(float(bleu.score), 100.0),
        "wer": float(jiwer.wer(reference_text, hypothesis_text)),
        "exact_match": list(reference) == list(hypothesis),
    }


def translation_metrics(
    references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]
) -> dict:
    """Score a set of hypotheses against one reference each.

    Returns:
        A dict with these keys:

        - ``bleu_1`` .. ``bleu_4``: sacrebleu corpus BLEU with maximum n-gram
          order 1 to 4, on 0-100.
        - ``sentence_bleu``: the mean of the sentence scores, as the study reported it.
        - ``wer``: corpus word error rate, the substitutions, deletions and
          insertions of all samples over all reference tokens (0 or more).
        - ``exact_match``: the share of samples with identical token lists (0-1).
        - the edit counts, ``n_samples``, ``tokenization`` and ``bleu_signature``.
        - ``per_sample``: one :func:`sentence_metrics` dict per sample.

    Raises:
        ValueError: when the lists differ in length, are empty, a reference has
            no tokens, or a token is empty or contains whitespace.
    """
    if len(references) != len(hypotheses):
        raise ValueError(
            f"got {len(references)} references but {len(hypotheses)} hypotheses; "
            "pass one hypothesis per reference"
        )
    if not references:
        raise ValueError("no samples to score; the split is empty")

    per_sample = []
    for index, (reference, hypothesis) in enumerate(zip(references, hypotheses, strict=True)):
        try:
            per_sample.append(sentence_metrics(reference, hypothesis))
        except ValueError as error:
            raise ValueError(f"sample {index}: {error}") from error

    reference_texts = [" ".join(tokens) for tokens in references]
    hypothesis_texts = [" ".join(tokens) for tokens in hypotheses]

    # corpus BLEU-n for each maximum n-gram order
    scores = {}
    signature = ""
    for order in range(1, MAX_NGRAM_ORDER + 1):
        bleu = BLEU(tokenize="none", max_ngram_order=order)
        scores[f"bleu_{order}"] = float(bleu.corpus_score(hypothesis_texts, [reference_texts]).score)
        if order == MAX_NGRAM_ORDER:
            signature = str(bleu.get_signature())

    edits = jiwer.process_words(reference_texts, hypothesis_texts)
    n_samples = len(references)
    return {
        "n_samples": n_samples,
        **scores,
        "sentence_bleu": sum(item["sentence_bleu"] for item in per_sample) / n_samples,
        "wer": float(edits.wer),
        "substitutions": int(edits.substitutions),
        "deletions": int(edits.deletions),
        "insertions": int(edits.insertions),
        "reference_tokens": sum(len(tokens) for tokens in references),
        "exact_match": sum(item["exact_match"] for item in per_sample) / n_samples,
        "tokenization": TOKENIZATION,
        "bleu_signature": signature,
        "per_sample": per_sample,
    }


def _check_tokens(tokens: Sequence[str], role: str) -> None:
    if isinstance(tokens, str):
        raise ValueError(f"the {role} must be a list of tokens, got the string {tokens!r}")
    for token in tokens:
        if not isinstance(token, str) or not token or any(char.isspace() for char in token):
            raise ValueError(
                f"invalid {role} token {token!r} in {list(tokens)}; tokens must be non-empty "
                "strings without whitespace"
            )


# ---------------------------------------------------------------- teacher-forced statistics


@dataclass
class TokenStatistics:
    """Running sums of the teacher-forced loss and token accuracy over target tokens.

    Target tokens are the words and EOS; BOS and padding are not counted.
    """

    # sum of per-token cross-entropy, each multiplied by its class weight (1 without weights)
    loss_sum: float = 0.0
    # sum of the class weights of the counted tokens (their number without weights)
    weight_sum: float = 0.0
    # target tokens that the arg max of the logits predicts correctly
    correct: int = 0
    # target tokens counted
    tokens: int = 0

    def add(self, other: TokenStatistics) -> None:
        """Add another batch's sums to these."""
        self.loss_sum += other.loss_sum
        self.weight_sum += other.weight_sum
        self.correct += other.correct
        self.tokens += other.tokens

    @property
    def loss(self) -> float:
        """Mean (class-weighted) cross-entropy per target token; NaN before any token."""
        return self.loss_sum / self.weight_sum if self.weight_sum > 0 else float("nan")

    @property
    def accuracy(self) -> float:
        """Share of target tokens predicted correctly; NaN before any token."""
        return self.correct / self.tokens if self.tokens > 0 else float("nan")

    def to_tensor(self, device: torch.device | str = "cpu") -> Tensor:
        """Pack the sums into a float64 tensor of 4 values, e.g. for an all-reduce."""
        values = [self.loss_sum, self.weight_sum, self.correct, self.tokens]
        return torch.tensor(values, dtype=torch.float64, device=device)

    @classmethod
    def from_tensor(cls, values: Tensor) -> TokenStatistics:
        """Unpack a tensor made by :meth:`to_tensor`."""
        loss_sum, weight_sum, correct, tokens = values.tolist()
        return cls(loss_sum, weight_sum, round(correct), round(tokens))


def teacher_forced_loss(
    model: torch.nn.Module, batch, class_weights: Tensor | None = None
) -> tuple[Tensor, TokenStatistics]:
    """Run one teacher-forced pass and return the mean loss and the batch's statistics.

    The decoder reads ``batch.tgt[:, :-1]`` (BOS and the words) and predicts
    ``batch.tgt[:, 1:]`` (the words and EOS). The loss is the cross-entropy
    averaged over non-padding target tokens, weighted by ``class_weights`` (V,)
    when given, as ``torch.nn.CrossEntropyLoss`` averages it. The loss keeps its
    autograd graph for ``backward``.
    """
    tgt_in = batch.tgt[:, :-1]  # (B, N-1)
    tgt_out = batch.tgt[:, 1:]  # (B, N-1)
    logits = model(batch.src, batch.src_padding_mask, tgt_in)  # (B, N-1, V)
    vocab_size = logits.size(-1)

    losses = F.cross_entropy(
        logits.reshape(-1, vocab_size),
        tgt_out.reshape(-1),
        weight=class_weights,
        ignore_index=PAD_ID,
        reduction="none",
    ).reshape(tgt_out.shape)  # (B, N-1), zero at padding
    mask = tgt_out != PAD_ID  # (B, N-1)
    if class_weights is None:
        token_weights = mask.to(losses.dtype)
    else:
        token_weights = class_weights[tgt_out] * mask  # (B, N-1)
    loss_sum = losses.sum()
    weight_sum = token_weights.sum()
    loss = loss_sum / weight_sum.clamp_min(torch.finfo(losses.dtype).tiny)

    correct = ((logits.argmax(dim=-1) == tgt_out) & mask).sum()
    # one transfer from the device for all four sums
    values = torch.stack(
        [loss_sum.detach().double(), weight_sum.double(), correct.double(), mask.sum().double()]
    )
    return loss, TokenStatistics.from_tensor(values.cpu())


# ---------------------------------------------------------------- evaluation of a run folder


def evaluate_run(
    run_dir: str | Path,
    split: str = "test",
    decode: str = "greedy",
    beam_size: int = 5,
    corpus_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    which: str = "best",
    progress: bool = True,
) -> dict:
    """Decode one split with a run's checkpoint and write its metrics and translations.

    The test split with greedy decoding writes ``metrics.json`` and
    ``translations.csv`` in the run folder. Any other split or decoder writes
    ``metrics_<split>_<decoder>.json`` and ``translations_<split>_<decoder>.csv``
    (decoder ``greedy`` or ``beam<K>``), so it leaves the main result in place.
    Samples are selected as in training: samples with more than ``max_tokens``
    output tokens are dropped, and the count is recorded. References are the
    corpus tokens, so a word missing from the vocabulary counts as an error.

    Args:
        run_dir: the run folder.
        split: "train", "val" or "test".
        decode: "greedy" or "beam".
        beam_size: K for beam search.
        corpus_dir: the corpus; default the path in the run's ``corpus.json``.
        device: as :func:`signattention_core.device.choose_device` takes it; None picks one.
        batch_size: samples per decoding batch; default the run's batch size.
        which: "best" (best.pt) or "last" (checkpoint.pt).
        progress: show a progress bar.

    Returns:
        The dict written to the metrics file: the :func:`translation_metrics`
        figures without ``per_sample``, plus ``token_accuracy`` and ``loss``
        (teacher-forced, unweighted), the split, decoder and checkpoint.
    """
    if decode not in DECODERS:
        raise ValueError(f"invalid decoder {decode!r}; accepted: {', '.join(DECODERS)}")
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be an integer >= 1, got {beam_size!r}")

    run_dir = Path(run_dir)
    run = load_run(run_dir, device=device, which=which)
    config, model, tokenizer = run.config, run.model, run.tokenizer

    corpus_path = _resolve_corpus(run_dir, run.info.get("corpus"), corpus_dir)
    corpus = Corpus.open(corpus_path)
    dataset = SignDataset(
        corpus,
        split,
        tokenizer,
        run.transform,
        output_mode=config.output_mode,
        max_tokens=config.max_tokens,
        train=False,
    )
    if len(dataset) == 0:
        raise ValueError(
            f"split {split!r} of corpus {corpus_path} has no usable samples; "
            "evaluate another split or add samples to this one"
        )
    loader = make_loader(dataset, batch_size or config.batch_size, shuffle=False, seed=0)

    max_steps = _max_decoding_steps(config.max_tokens, run.info.get("max_train_tokens"), model.max_len)

    hypotheses, statistics, decode_seconds = _decode_split(
        model, loader, tokenizer, decode, beam_size, max_steps, progress, f"evaluate {split}"
    )

    scores = translation_metrics(dataset.references, hypotheses)
    per_sample = scores.pop("per_sample")
    decoder_name = "greedy" if decode == "greedy" else f"beam{beam_size}"
    metrics = {
        "split": split,
        "decode": decode,
        "beam_size": beam_size if decode == "beam" else None,
        "checkpoint": Path(run.info["checkpoint"]).name,
        "epoch": run.info.get("epoch"),
        "corpus": str(corpus_path),
        "output_mode": config.output_mode,
        "n_dropped": {reason: len(ids) for reason, ids in dataset.dropped.items()},
        **scores,
        "token_accuracy": statistics.accuracy,
        "loss": statistics.loss,
        "decode_seconds": decode_seconds,
        "decode_samples_per_second": len(dataset) / decode_seconds if decode_seconds > 0 else None,
    }

    if split == "test" and decode == "greedy":
        metrics_name, translations_name = METRICS_FILE, TRANSLATIONS_FILE
    else:
        metrics_name = f"metrics_{split}_{decoder_name}.json"
        translations_name = f"translations_{split}_{decoder_name}.csv"
    _write_translations(
        run_dir / translations_name, dataset.samples, dataset.references, hypotheses, per_sample
    )
    write_json_atomic(run_dir / metrics_name, metrics)
    logger.info(
        "%s split, %s decoding, %d samples: BLEU-4 %.2f, WER %.3f, exact match %.3f, "
        "token accuracy %.3f; wrote %s and %s",
        split, decoder_name, len(dataset), metrics["bleu_4"], metrics["wer"],
        metrics["exact_match"], metrics["token_accuracy"], metrics_name, translations_name,
    )
    return metrics


def _max_decoding_steps(max_tokens: int | None, max_train_tokens: int | None, max_len: int) -> int:
    """Return the decoding step limit: the words a hypothesis may contain, plus EOS.

    MAX_TOKENS bounds the words when set. Without it, twice the longest training
    target does (a heuristic cap, so that an untrained model stops early), and
    runs that did not record that length fall back to the positional encoding length.
    """
    if max_tokens is not None:
        words = max_tokens
    elif max_train_tokens:
        words = 2 * int(max_train_tokens)
    else:
        words = max_len - 1
    return min(words + 1, max_len)


def _decode_split(
    model: torch.nn.Module,
    loader,
    tokenizer,
    decode: str,
    beam_size: int,
    max_steps: int,
    progress: bool,
    description: str,
) -> tuple[list[list[str]], TokenStatistics, float]:
    """Decode every batch; return the hypotheses, teacher-forced statistics and decoding seconds."""
    model_device = next(model.parameters()).device
    statistics = TokenStatistics()
    hypotheses: list[list[str]] = []
    decode_seconds = 0.0
    bar = tqdm(total=len(loader.dataset), desc=description, unit="sample", disable=not progress)
    with torch.no_grad():
        for batch in loader:
            batch = batch.to(model_device)
            _, batch_statistics = teacher_forced_loss(model, batch)
            statistics.add(batch_statistics)

            started = time.perf_counter()
            if decode == "greedy":
                ids = greedy_decode(model, batch.src, batch.src_padding_mask, max_len=max_steps)
            else:
                ids = beam_search(
                    model, batch.src, batch.src_padding_mask, beam_size=beam_size, max_len=max_steps
                )
            decode_seconds += time.perf_counter() - started
            hypotheses.extend(tokenizer.decode(row) for row in ids)
            bar.update(len(batch))
    bar.close()
    return hypotheses, statistics, decode_seconds


def write_json_atomic(path: Path, data: object) -> None:
    """Write UTF-8 JSON through a temporary file renamed into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _resolve_corpus(run_dir: Path, recorded: dict | None, corpus_dir: str | Path | None) -> Path:
    """Return the corpus to evaluate on: the argument, else the one in corpus.json."""
    if corpus_dir is not None:
        return Path(corpus_dir)
    path = (recorded or {}).get("path")
    if not path:
        raise ValueError(
            f"{run_dir / 'corpus.json'} names no corpus (an imported checkpoint has none); "
            "pass the corpus folder with --corpus"
        )
    if not Path(path).is_dir():
        raise ValueError(
            f"corpus {path} recorded in {run_dir / 'corpus.json'} was not found; "
            "pass its new location with --corpus"
        )
    return Path(path)


def _write_translations(
    path: Path,
    samples: Sequence,
    references: Sequence[Sequence[str]],
    hypotheses: Sequence[Sequence[str]],
    per_sample: Sequence[dict],
) -> None:
    """Write one row per sample: ids, reference, hypothesis and sentence scores."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(TRANSLATION_COLUMNS)
            for sample, reference, hypothesis, scores in zip(
                samples, references, hypotheses, per_sample, strict=True
            ):
                writer.writerow([
                    sample.id,
                    sample.split,
                    sample.signer if sample.signer is not None else "",
                    sample.repetition if sample.repetition is not None else "",
                    sample.sentence_group,
                    " ".join(reference),
                    " ".join(hypothesis),
                    int(scores["exact_match"]),
                    f"{scores['sentence_bleu']:.4f}",
                    f"{scores['wer']:.4f}",
                ])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
