"""Batched greedy decoding and batched beam search.

Both decoders re-run the decoder over the whole prefix at every step instead of
caching keys and values. Hypotheses are at most 20 or so tokens long here, so
the quadratic cost is small, and each step is exactly the teacher-forced pass
that attention capture later repeats.

``max_len`` is the number of decoding steps. A hypothesis that ends with EOS has
at most ``max_len - 1`` tokens, and one still without EOS after ``max_len`` steps
is returned unchanged, with ``max_len`` tokens. Returned id lists contain
neither BOS nor EOS. Neither decoder forbids PAD or BOS, so an untrained model
may emit them.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator

import torch
from torch import Tensor

from signattention_core.model import SignTransformer

logger = logging.getLogger(__name__)

PAD_ID = 0
BOS_ID = 2
EOS_ID = 3


@torch.no_grad()
def greedy_decode(
    model: SignTransformer,
    src: Tensor,
    src_padding_mask: Tensor,
    max_len: int,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
    pad_id: int = PAD_ID,
) -> list[list[int]]:
    """Decode a batch by taking the most probable token at every step.

    Args:
        model: the translation model; it runs in eval mode and its mode is restored after.
        src: (B, P, E) features.
        src_padding_mask: (B, P) bool, True at padding.
        max_len: maximum number of decoding steps (see the module docstring).

    Returns:
        B lists of token ids without BOS and EOS. Decoding stops as soon as every
        sample has produced EOS.
    """
    _check_max_len(model, max_len)
    with _eval_mode(model):
        memory = model.encode(src, src_padding_mask)  # (B, P, D)
        batch_size = src.size(0)
        prefix = torch.full((batch_size, 1), bos_id, dtype=torch.long, device=src.device)
        finished = torch.zeros(batch_size, dtype=torch.bool, device=src.device)

        for _ in range(max_len):
            logits = model.decode(prefix, memory, src_padding_mask)[:, -1]  # (B, V)
            next_tokens = logits.argmax(dim=-1)  # (B,)

            # finished samples keep being fed PAD so the batch keeps its shape
            next_tokens = torch.where(finished, torch.full_like(next_tokens, pad_id), next_tokens)
            prefix = torch.cat([prefix, next_tokens.unsqueeze(1)], dim=1)  # (B, n + 1)
            finished |= next_tokens == eos_id
            if bool(finished.all()):
                break

    return [_strip(row, eos_id) for row in prefix[:, 1:].tolist()]


@torch.no_grad()
def beam_search(
    model: SignTransformer,
    src: Tensor,
    src_padding_mask: Tensor,
    beam_size: int,
    max_len: int,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
    length_penalty: float = 0.0,
) -> list[list[int]]:
    """Decode a batch with beam search over all samples and beams at once.

    The decoder runs on B * K rows per step, K = ``beam_size``. Each step ranks the
    2K best continuations of every sample by summed log-probability. Candidates
    ending in EOS among the top K become finished hypotheses, and the K best other
    candidates stay alive. A sample stops once it has K finished hypotheses; samples
    still unfinished after ``max_len`` steps add their alive beams to the finished
    ones. The result is the finished hypothesis with the best score, its summed
    log-probability divided by the GNMT length penalty ((5 + n) / 6) ** alpha
    (Wu et al. 2016), where n counts output tokens including EOS and alpha is
    ``length_penalty`` (0 compares summed log-probabilities). With ``beam_size=1``
    the output equals :func:`greedy_decode`.

    Returns:
        B lists of token ids without BOS and EOS.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    if length_penalty < 0:
        raise ValueError(f"length_penalty must be >= 0 (0 turns it off), got {length_penalty}")
    _check_max_len(model, max_len)

    with _eval_mode(model):
        batch_size = src.size(0)
        k = beam_size
        device = src.device
        memory = model.encode(src, src_padding_mask)  # (B, P, D)
        memory = memory.repeat_interleave(k, dim=0)  # (B*K, P, D)
        padding_mask = src_padding_mask.repeat_interleave(k, dim=0)  # (B*K, P)

        prefix = torch.full((batch_size * k, 1), bos_id, dtype=torch.long, device=device)
        # only the first beam is live at the start, so the first step expands one hypothesis
        scores = torch.full((batch_size, k), -math.inf, device=device)  # (B, K)
        scores[:, 0] = 0.0
        finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch_size)]
        done = [False] * batch_size
        row_offsets = torch.arange(batch_size, device=device).unsqueeze(1) * k  # (B, 1)

        for step in range(1, max_len + 1):
            logits = model.decode(prefix, memory, padding_mask)[:, -1]  # (B*K, V)
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            vocab_size = log_probs.size(-1)
            candidates = (scores.reshape(-1, 1) + log_probs).reshape(batch_size, k * vocab_size)
            n_candidates = min(2 * k, k * vocab_size)
            top_scores, top_index = candidates.topk(n_candidates, dim=1)  # (B, 2K)
            top_beams = top_index // vocab_size
            top_tokens = top_index % vocab_size
            is_eos = top_tokens == eos_id

            _collect_finished(
                finished, done, prefix, top_scores, top_beams, is_eos, k, step, length_penalty
            )

            # The K best candidates that do not end in EOS stay alive. Each beam yields
            # at most one EOS candidate, so the 2K candidates always include K others.
            keep = torch.sort((is_eos).to(torch.int8), dim=1, stable=True).indices[:, :k]  # (B, K)
            scores = top_scores.gather(1, keep)
            parent_rows = (row_offsets + top_beams.gather(1, keep)).reshape(-1)  # (B*K,)
            next_tokens = top_tokens.gather(1, keep).reshape(-1, 1)  # (B*K, 1)
            prefix = torch.cat([prefix[parent_rows], next_tokens], dim=1)  # (B*K, step + 1)

            for b in range(batch_size):
                done[b] = done[b] or len(finished[b]) >= k
            if all(done):
                break

        _collect_alive(finished, done, prefix, scores, k, length_penalty)

    return [max(hypotheses, key=lambda item: item[0])[1] for hypotheses in finished]


def _collect_finished(
    finished: list[list[tuple[float, list[int]]]],
    done: list[bool],
    prefix: Tensor,
    top_scores: Tensor,
    top_beams: Tensor,
    is_eos: Tensor,
    k: int,
    step: int,
    length_penalty: float,
) -> None:
    """Store the EOS candidates ranked within the top K of each unfinished sample."""
    hits = (is_eos[:, :k] & torch.isfinite(top_scores[:, :k])).nonzero().tolist()
    if not hits:
        return
    penalty = _length_penalty(step, length_penalty)
    scores = top_scores.tolist()
    beams = top_beams.tolist()
    for b, rank in hits:
        if done[b] or len(finished[b]) >= k:
            continue
        tokens = prefix[b * k + beams[b][rank], 1:].tolist()
        finished[b].append((scores[b][rank] / penalty, tokens))


def _collect_alive(
    finished: list[list[tuple[float, list[int]]]],
    done: list[bool],
    prefix: Tensor,
    scores: Tensor,
    k: int,
    length_penalty: float,
) -> None:
    """Add the alive beams of samples that ran out of steps to their finished hypotheses."""
    penalty = _length_penalty(prefix.size(1) - 1, length_penalty)
    rows = prefix[:, 1:].tolist()
    for b, sample_scores in enumerate(scores.tolist()):
        if done[b]:
            continue
        for beam, score in enumerate(sample_scores):
            if math.isfinite(score):
                finished[b].append((score / penalty, rows[b * k + beam]))


def _length_penalty(length: int, alpha: float) -> float:
    return ((5.0 + length) / 6.0) ** alpha


def _strip(row: list[int], eos_id: int) -> list[int]:
    """Cut a generated row at its first EOS."""
    return row[: row.index(eos_id)] if eos_id in row else row


def _check_max_len(model: SignTransformer, max_len: int) -> None:
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    if max_len > model.max_len:
        raise ValueError(
            f"max_len {max_len} exceeds the model's positional encoding length "
            f"{model.max_len}; lower max_len"
        )


@contextlib.contextmanager
def _eval_mode(model: SignTransformer) -> Iterator[None]:
    """Switch the model to eval mode for the block and restore its previous mode."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
