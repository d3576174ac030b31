"""Teacher-forced attention capture, and the step-by-step reference it must match.

With a causal decoder and dropout off, decoding step ``i`` depends only on
the tokens ``BOS, y_0 .. y_{i-1}``. One teacher-forced pass over the input
``[BOS, y_0, ..., y_{n-1}]`` therefore yields, in row ``i`` of every decoder
attention matrix, the weights that step ``i`` produced while decoding. The
``N = n + 1`` rows are steps ``0 .. n``, and step ``n`` predicts EOS when the
hypothesis ended with EOS. A hypothesis cut off at the maximum length has no
EOS step, so its last row is the step that would have come next.

:func:`capture_batch` captures a whole batch in one decoder pass, after
:func:`encode_batch` has encoded each sample. :func:`capture_step_by_step` reproduces the study's extraction (one
sample at a time, one decoder pass per step, forward hooks on the attention
modules) and serves as the reference that tests compare against and as the
baseline of ``benchmarks/bench_extraction.py``.

Shape letters: B batch, P positions, E features, D model width, H heads,
L layers, N decoder steps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from signattention_core.model import Capture, SignTransformer

logger = logging.getLogger(__name__)


@dataclass
class SampleCapture:
    """Everything captured for one sample, with padding removed, as float32 arrays."""

    encoder_self: np.ndarray  # (L, H, P, P) encoder self-attention weights
    decoder_self: np.ndarray  # (L, H, N, N) decoder self-attention weights, row i = step i
    cross: np.ndarray  # (L, H, N, P) cross-attention weights, row i = step i
    self_norm: np.ndarray  # (L, N) L2 norm over D of the self-attention block output
    cross_norm: np.ndarray  # (L, N) L2 norm over D of the cross-attention block output
    signed_diff: np.ndarray  # (L, N) the study's signed mean difference, see study_signed_diff
    predicted: np.ndarray  # (N,) int64 arg-max token of each step's output distribution


def teacher_forced_input(
    hypotheses: Sequence[Sequence[int]], bos_id: int, pad_id: int, device: torch.device | str
) -> Tensor:
    """Build the decoder input ``[BOS, y_0, ..., y_{n-1}]`` of each hypothesis.

    Args:
        hypotheses: token ids of each hypothesis, without BOS and EOS.

    Returns:
        (B, N) long tensor, N = longest hypothesis + 1, padded with ``pad_id``
        after each row's last token. Causal masking keeps padding out of the rows
        that belong to real steps, so no target padding mask is needed.
    """
    longest = max((len(tokens) for tokens in hypotheses), default=0)
    tgt = torch.full((len(hypotheses), longest + 1), pad_id, dtype=torch.long)
    tgt[:, 0] = bos_id
    for row, tokens in enumerate(hypotheses):
        if len(tokens):
            tgt[row, 1 : len(tokens) + 1] = torch.as_tensor(list(tokens), dtype=torch.long)
    return tgt.to(device)


def study_signed_diff(self_block: Tensor, cross_block: Tensor) -> Tensor:
    """Compute the study's signed mean difference of the two decoder attention blocks.

    The study decoded step by step, ran the decoder on the whole prefix at each
    step, and averaged the self-attention block output minus the
    cross-attention block output over every prefix row and hidden unit. Its
    value at step ``i`` is therefore the mean over steps ``0..i`` and over D of
    ``self_block - cross_block``. Positive values mean the self-attention block
    output is larger on average. A signed mean does not measure magnitude,
    because positive and negative units cancel, so the cross share uses norms.

    Args:
        self_block: (..., N, D) self-attention block outputs of real steps first.
        cross_block: (..., N, D) cross-attention block outputs.

    Returns:
        (..., N) float tensor. Rows past a sample's last real step mix in
        padding and must be discarded by the caller.
    """
    per_step = (self_block - cross_block).mean(dim=-1)  # (..., N)
    counts = torch.arange(1, per_step.shape[-1] + 1, device=per_step.device, dtype=per_step.dtype)
    return per_step.cumsum(dim=-1) / counts


@dataclass
class EncodedBatch:
    """Encoder output of a batch with the captured encoder self-attention of each sample."""

    src: Tensor  # (B, P, E) the features that were encoded
    memory: Tensor  # (B, P, D) encoder output, zero at padding when encoded per sample
    encoder_self: list[np.ndarray]  # per sample (L, H, P_b, P_b), padding removed


@torch.no_grad()
def encode_batch(
    model: SignTransformer, src: Tensor, src_padding_mask: Tensor, per_sample: bool = True
) -> EncodedBatch:
    """Encode a batch with capture on.

    By default each sample is encoded alone. The encoder's first layer receives
    the un-normalised keypoint embedding (values of 10 or more), and PyTorch's
    float32 convolution and matrix kernels round differently for different
    batch shapes, by one unit in the last place. Sharp attention amplifies that
    to about 1e-5 in the weights, so a batched, padded encoder would make the
    stored weights depend on the batch size and on which samples share a batch.
    Encoded alone, each sample gets exactly what a one-sample decode computes.

    Args:
        model: the model in eval mode, on the device of ``src``.
        src: (B, P, E) features, zero padded.
        src_padding_mask: (B, P) bool, True at padding.
        per_sample: encode each sample alone (True) or the padded batch at once
            (False: faster on a GPU, weights depend on the batch by float32 rounding).
    """
    _check_eval_mode(model)
    lengths = (~src_padding_mask).sum(dim=1).tolist()
    if not per_sample:
        capture = Capture()
        memory = model.encode(src, src_padding_mask, capture=capture)  # (B, P, D)
        weights = torch.stack(capture.encoder_self, dim=1).float().cpu().numpy()  # (B, L, H, P, P)
        return EncodedBatch(src, memory, [weights[b, :, :, :p, :p] for b, p in enumerate(lengths)])

    memory = src.new_zeros(src.shape[0], src.shape[1], model.d_model)  # (B, P, D)
    encoder_self = []
    for b, p in enumerate(lengths):
        capture = Capture()
        memory[b, :p] = model.encode(src[b : b + 1, :p], src_padding_mask[b : b + 1, :p], capture=capture)[0]
        encoder_self.append(torch.cat(capture.encoder_self).float().cpu().numpy())  # (L, H, P, P)
    return EncodedBatch(src, memory, encoder_self)


class PrecomputedEncoder:
    """Stand-in for the model whose ``encode`` returns an :class:`EncodedBatch`'s memory.

    ``greedy_decode`` and ``beam_search`` encode their batch first. Passing
    this object instead of the model lets them decode from the memory that
    :func:`encode_batch` already computed, so the encoder runs once per batch
    and decoding uses the same memory as the capture. Every other attribute
    comes from the wrapped model.
    """

    def __init__(self, model: SignTransformer, encoded: EncodedBatch):
        self._model = model
        self._encoded = encoded

    def encode(self, src: Tensor, src_padding_mask: Tensor, capture: Capture | None = None) -> Tensor:
        if src is not self._encoded.src:
            raise ValueError("PrecomputedEncoder got a batch other than the one encode_batch encoded")
        return self._encoded.memory

    def __getattr__(self, name: str):
        return getattr(self._model, name)


@torch.no_grad()
def capture_batch(
    model: SignTransformer,
    src: Tensor,
    src_padding_mask: Tensor,
    hypotheses: Sequence[Sequence[int]],
    bos_id: int,
    pad_id: int,
    encoder_per_sample: bool = True,
    encoded: EncodedBatch | None = None,
) -> list[SampleCapture]:
    """Capture every attention weight of a batch in one teacher-forced decoder pass.

    The encoder runs as :func:`encode_batch` describes, unless ``encoded``
    already contains its output. The decoder runs once for the whole batch.
    Its inputs are small, so padding moved its weights by at most 2e-7 in the
    tests (tests/test_capture.py).

    Args:
        model: the model in eval mode (dropout off), on the device of ``src``.
        src: (B, P, E) features, zero padded.
        src_padding_mask: (B, P) bool, True at padding.
        hypotheses: B token id lists, without BOS and EOS, as the decoder produced them.
        encoder_per_sample: passed to :func:`encode_batch` when ``encoded`` is None.
        encoded: the batch's :func:`encode_batch` result, to skip encoding again.

    Returns:
        One :class:`SampleCapture` per sample, in batch order.
    """
    _check_eval_mode(model)
    if len(hypotheses) != src.shape[0]:
        raise ValueError(f"got {len(hypotheses)} hypotheses for a batch of {src.shape[0]} samples")
    if encoded is None:
        encoded = encode_batch(model, src, src_padding_mask, per_sample=encoder_per_sample)

    # NOTE: the teacher-forced pass multiplies N-row matrices where step i of the decode
    # multiplied i + 1 rows, so the decoder rows match the step-by-step decode only up to
    # float32 rounding of the attention logits, about one last-place unit of the logit.
    # That stayed below 1e-6 for the test models, but reached 3e-6 for a random D = 64 model
    # and 2e-5 with its weights doubled (CPU, torch 2.13), where the logits grow large.
    tgt = teacher_forced_input(hypotheses, bos_id, pad_id, src.device)  # (B, N)
    capture = Capture()
    logits = model.decode(tgt, encoded.memory, src_padding_mask, capture=capture)  # (B, N, V)

    # stack layers and move each module to the host once per batch
    decoder_self = torch.stack(capture.decoder_self, dim=1).float().cpu().numpy()  # (B, L, H, N, N)
    cross = torch.stack(capture.cross, dim=1).float().cpu().numpy()  # (B, L, H, N, P)

    self_block = torch.stack(capture.self_block, dim=1).float()  # (B, L, N, D)
    cross_block = torch.stack(capture.cross_block, dim=1).float()  # (B, L, N, D)
    self_norm = torch.linalg.vector_norm(self_block, dim=-1).cpu().numpy()  # (B, L, N)
    cross_norm = torch.linalg.vector_norm(cross_block, dim=-1).cpu().numpy()  # (B, L, N)
    signed_diff = study_signed_diff(self_block, cross_block).cpu().numpy()  # (B, L, N)
    predicted = logits.argmax(dim=-1).cpu().numpy()  # (B, N)

    samples = []
    for b, tokens in enumerate(hypotheses):
        p = encoded.encoder_self[b].shape[-1]
        n = len(tokens) + 1
        samples.append(
            SampleCapture(
                encoder_self=encoded.encoder_self[b],
                decoder_self=decoder_self[b, :, :, :n, :n],
                cross=cross[b, :, :, :n, :p],
                self_norm=self_norm[b, :, :n],
                cross_norm=cross_norm[b, :, :n],
                signed_diff=signed_diff[b, :, :n],
                predicted=predicted[b, :n].astype(np.int64),
            )
        )
    return samples


# -- step-by-step reference -------------------------------------------------------------


class AttentionHooks:
    """Forward hooks on every ``nn.MultiheadAttention`` of the model, as the study used them.

    ``torch.nn`` Transformer layers call their attention modules with
    ``need_weights=False``. A forward pre-hook requests per-head weights
    instead, and a forward hook appends ``(output, weights)`` of each call to
    ``calls[module_name][layer]``. The model's fast paths are switched off while
    the hooks are installed, because they bypass the attention modules.
    """

    def __init__(self, model: SignTransformer):
        self.model = model
        self.calls: dict[str, list[list[tuple[Tensor, Tensor]]]] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._fastpath_was_enabled: bool | None = None

    def __enter__(self) -> AttentionHooks:
        transformer = self.model.transformer
        modules: dict[str, list[nn.MultiheadAttention]] = {
            "encoder_self": [layer.self_attn for layer in transformer.encoder.layers],
            "decoder_self": [layer.self_attn for layer in transformer.decoder.layers],
            "cross": [layer.multihead_attn for layer in transformer.decoder.layers],
        }
        for name, attention_modules in modules.items():
            self.calls[name] = [[] for _ in attention_modules]
            for layer, module in enumerate(attention_modules):
                self._handles.append(
                    module.register_forward_pre_hook(_request_head_weights, with_kwargs=True)
                )
                self._handles.append(module.register_forward_hook(self._recorder(name, layer)))
        self._fastpath_was_enabled = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self._fastpath_was_enabled is not None:
            torch.backends.mha.set_fastpath_enabled(self._fastpath_was_enabled)

    def clear(self) -> None:
        """Forget the recorded calls, keeping the hooks installed."""
        for per_layer in self.calls.values():
            for recorded in per_layer:
                recorded.clear()

    def _recorder(self, name: str, layer: int):
        def record(module, args, output):
            attn_output, attn_weights = output
            self.calls[name][layer].append((attn_output.detach(), attn_weights.detach()))

        return record


def _request_head_weights(module, args, kwargs):
    kwargs["need_weights"] = True
    kwargs["average_attn_weights"] = False
    return args, kwargs


def _check_eval_mode(model: nn.Module) -> None:
    if model.training:
        raise ValueError("capture needs the model in eval mode, so that dropout is off; call model.eval()")


@torch.no_grad()
def capture_step_by_step(
    model: SignTransformer,
    src: Tensor,
    src_padding_mask: Tensor,
    hypothesis: Sequence[int] | None,
    max_len: int,
    bos_id: int,
    eos_id: int,
) -> tuple[list[int], bool, SampleCapture]:
    """Decode one sample step by step with hooks on, as the study extracted attention.

    The encoder runs once. Step ``i`` runs the decoder on the prefix
    ``[BOS, y_0 .. y_{i-1}]`` and keeps the last row of each decoder matrix and
    of each block output. This costs one decoder pass per step per sample,
    which is what :func:`capture_batch` avoids.

    Args:
        src: (1, P, E) features of one sample, unpadded.
        src_padding_mask: (1, P) bool, all False.
        hypothesis: token ids to follow (for example a beam search result), or
            None to choose the arg-max token at each step (greedy decoding).
        max_len: maximum number of output tokens, EOS excluded, when decoding
            greedily. Ignored when ``hypothesis`` is given.

    Returns:
        ``(tokens, ended_with_eos, capture)``. ``tokens`` is the hypothesis
        without BOS and EOS. ``ended_with_eos`` is whether its last step
        predicted EOS, and is always True for a given hypothesis, whose
        ``len + 1`` steps all run. ``capture`` contains the rows of every step,
        with ``signed_diff`` computed the study's way from each whole prefix.
    """
    _check_eval_mode(model)
    if src.shape[0] != 1:
        raise ValueError(f"the step-by-step reference takes one sample, got a batch of {src.shape[0]}")

    with AttentionHooks(model) as hooks:
        memory = model.encode(src, src_padding_mask)  # (1, P, D)
        encoder_self = torch.stack([calls[0][1][0] for calls in hooks.calls["encoder_self"]])  # (L, H, P, P)
        hooks.clear()

        tokens: list[int] = []
        steps: list[dict[str, Tensor]] = []
        ended_with_eos = False
        forced = list(hypothesis) if hypothesis is not None else None
        while True:
            prefix = torch.tensor([[bos_id, *tokens]], dtype=torch.long, device=src.device)  # (1, i+1)
            logits = model.decode(prefix, memory, src_padding_mask)  # (1, i+1, V)
            steps.append(_last_rows(hooks))
            hooks.clear()
            predicted = int(logits[0, -1].argmax())
            steps[-1]["predicted"] = torch.tensor(predicted)

            i = len(tokens)
            if forced is not None:
                if i == len(forced):
                    ended_with_eos = True
                    break
                tokens.append(int(forced[i]))
                continue
            if predicted == eos_id:
                ended_with_eos = True
                break
            tokens.append(predicted)
            if len(tokens) >= max_len:
                break

    return tokens, ended_with_eos, _assemble_steps(encoder_self, steps)


def _last_rows(hooks: AttentionHooks) -> dict[str, Tensor]:
    """Take the newest step's rows from one decoder call recorded by the hooks."""
    self_rows, cross_rows, self_out, cross_out, study = [], [], [], [], []
    for self_calls, cross_calls in zip(hooks.calls["decoder_self"], hooks.calls["cross"], strict=True):
        (self_output, self_weights), = self_calls
        (cross_output, cross_weights), = cross_calls
        self_rows.append(self_weights[0, :, -1, :])  # (H, i+1)
        cross_rows.append(cross_weights[0, :, -1, :])  # (H, P)
        self_out.append(self_output[0, -1])  # (D,)
        cross_out.append(cross_output[0, -1])  # (D,)
        # the study averaged over the whole prefix output of each call
        study.append((self_output[0] - cross_output[0]).mean())
    return {
        "decoder_self": torch.stack(self_rows),  # (L, H, i+1)
        "cross": torch.stack(cross_rows),  # (L, H, P)
        "self_block": torch.stack(self_out),  # (L, D)
        "cross_block": torch.stack(cross_out),  # (L, D)
        "signed_diff": torch.stack(study),  # (L,)
    }


def _assemble_steps(encoder_self: Tensor, steps: list[dict[str, Tensor]]) -> SampleCapture:
    """Stack per-step rows into the matrices a teacher-forced pass produces."""
    n = len(steps)
    n_layers, n_heads = steps[0]["decoder_self"].shape[:2]
    decoder_self = torch.zeros(n_layers, n_heads, n, n)  # (L, H, N, N)
    for i, step in enumerate(steps):
        decoder_self[:, :, i, : i + 1] = step["decoder_self"].float().cpu()
    cross = torch.stack([step["cross"] for step in steps], dim=2)  # (L, H, N, P)
    self_block = torch.stack([step["self_block"] for step in steps], dim=1)  # (L, N, D)
    cross_block = torch.stack([step["cross_block"] for step in steps], dim=1)  # (L, N, D)
    signed_diff = torch.stack([step["signed_diff"] for step in steps], dim=1)  # (L, N)
    return SampleCapture(
        encoder_self=encoder_self.float().cpu().numpy(),
        decoder_self=decoder_self.numpy(),
        cross=cross.float().cpu().numpy(),
        self_norm=torch.linalg.vector_norm(self_block.float(), dim=-1).cpu().numpy(),
        cross_norm=torch.linalg.vector_norm(cross_block.float(), dim=-1).cpu().numpy(),
        signed_diff=signed_diff.float().cpu().numpy(),
        predicted=np.array([int(step["predicted"]) for step in steps], dtype=np.int64),
    )
