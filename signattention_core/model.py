"""Pose-to-gloss encoder-decoder Transformer with optional attention capture.

The architecture and the parameter names follow the SignAttention study's model,
so its weights load after the conversion in :mod:`signattention_core.checkpoint`:

- ``src_keyp_emb``: two 1x1 convolutions, each followed by a ReLU, embed the E
  features of every position (E -> 128 -> D).
- ``src_pe`` and ``tgt_pe``: fixed sinusoidal positional encodings, buffer ``pe``
  of shape (1, max_len, D), added to the embeddings and followed by dropout.
- ``tgt_tok_emb``: token embedding scaled by sqrt(D).
- ``transformer``: ``torch.nn.Transformer`` with ``batch_first=True`` and post-norm
  layers, so its keys are ``transformer.encoder.layers.N...``,
  ``transformer.decoder.layers.N...``, ``transformer.encoder.norm`` and
  ``transformer.decoder.norm``.
- ``generator``: linear map from D to the V vocabulary logits.

Shape letters: B batch, P positions, E features, D model width, H heads,
L layers, N tokens (decoder steps), V vocabulary size.

Without a :class:`Capture` the encoder and decoder run as the stock
``torch.nn`` modules, including PyTorch's fused inference paths. With one, every
layer runs through :func:`_encoder_layer_forward` / :func:`_decoder_layer_forward`,
which call the same submodules in the same post-norm order but request the
per-head attention weights.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

# width of the hidden layer between the two 1x1 convolutions, fixed by the study's model
KEYPOINT_HIDDEN = 128

# default length of the positional encoding tables, the maximum P and N
DEFAULT_MAX_LEN = 1024


@dataclass
class Capture:
    """Attention weights and block outputs recorded during one forward pass.

    Pass an empty instance to :meth:`SignTransformer.encode`, :meth:`SignTransformer.decode`
    or :meth:`SignTransformer.forward`; each call replaces the lists it fills. Lists are
    indexed by layer. Tensors keep their autograd graph, so record under
    ``torch.no_grad()`` unless gradients are wanted. Weights are the softmax outputs of
    ``nn.MultiheadAttention``; in training mode they are taken after attention dropout.
    """

    # encoder self-attention weights per layer, (B, H, P, P); filled by encode
    encoder_self: list[Tensor] = field(default_factory=list)
    # decoder self-attention weights per layer, (B, H, N, N); filled by decode
    decoder_self: list[Tensor] = field(default_factory=list)
    # decoder cross-attention weights per layer, (B, H, N, P); filled by decode
    cross: list[Tensor] = field(default_factory=list)
    # decoder self-attention block output per layer (after the output projection and
    # dropout, before the residual addition), (B, N, D); filled by decode
    self_block: list[Tensor] = field(default_factory=list)
    # decoder cross-attention block output per layer, before the residual addition, (B, N, D)
    cross_block: list[Tensor] = field(default_factory=list)


class KeypointEmbedding(nn.Module):
    """Two 1x1 convolutions with ReLU that map E features to D per position."""

    def __init__(self, n_features: int, d_model: int) -> None:
        super().__init__()
        # names as in the study's checkpoints
        self.conv1d_1 = nn.Conv1d(n_features, KEYPOINT_HIDDEN, kernel_size=1)
        self.conv1d_4 = nn.Conv1d(KEYPOINT_HIDDEN, d_model, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """Embed (B, P, E) features into (B, P, D)."""
        x = x.transpose(1, 2)  # (B, E, P)
        x = torch.relu(self.conv1d_1(x))  # (B, 128, P)
        x = torch.relu(self.conv1d_4(x))  # (B, D, P)
        return x.transpose(1, 2)  # (B, P, D)


def sinusoidal_table(max_len: int, d_model: int) -> Tensor:
    """Return the sinusoidal positional encoding table, shape (1, max_len, D).

    Even channels hold sin(pos / 10000^(2i/D)) and odd channels the matching cosine,
    as in Vaswani et al. (2017).
    """
    if d_model % 2 != 0:
        raise ValueError(f"d_model must be even for sinusoidal positional encodings, got {d_model}")
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)  # (max_len, 1)
    frequency = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )  # (D/2,)
    table = torch.zeros(1, max_len, d_model)
    table[0, :, 0::2] = torch.sin(position * frequency)
    table[0, :, 1::2] = torch.cos(position * frequency)
    return table


class PositionalEncoding(nn.Module):
    """Add fixed sinusoidal encodings to (B, S, D) inputs, then apply dropout."""

    def __init__(self, d_model: int, max_len: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("pe", sinusoidal_table(max_len, d_model))  # (1, max_len, D)

    def forward(self, x: Tensor) -> Tensor:
        length = x.size(1)
        if length > self.pe.size(1):
            raise ValueError(
                f"sequence of length {length} exceeds the positional encoding length "
                f"{self.pe.size(1)}; build the model with a larger max_len"
            )
        return self.dropout(x + self.pe[:, :length])


class TokenEmbedding(nn.Module):
    """Token embedding multiplied by sqrt(D)."""

    def __init__(self, vocab_size: int, d_model: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.scale = math.sqrt(d_model)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.embedding(tokens) * self.scale  # (B, N, D)


class SignTransformer(nn.Module):
    """Encoder-decoder Transformer from pose features to output tokens.

    Args:
        n_features: E, features per position.
        vocab_size: V, output vocabulary size including the special tokens.
        d_model: D, model width; must be even and divisible by ``nhead``.
        nhead: H, attention heads per layer.
        num_encoder_layers: encoder layers.
        num_decoder_layers: decoder layers.
        dim_feedforward: width of each layer's feed-forward block.
        dropout: dropout probability in the Transformer layers.
        max_len: length of both positional encoding tables, the maximum P and N.
        pe_dropout: dropout after adding positional encodings; the study kept the
            0.1 of its positional encoding module whatever its model dropout was.
    """

    def __init__(
        self,
        n_features: int,
        vocab_size: int,
        d_model: int = 16,
        nhead: int = 8,
        num_encoder_layers: int = 1,
        num_decoder_layers: int = 1,
        dim_feedforward: int = 2048,
        dropout: float = 0.2,
        max_len: int = DEFAULT_MAX_LEN,
        pe_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        _check_architecture(n_features, vocab_size, d_model, nhead, max_len)
        self.model_args: dict[str, Any] = {
            "n_features": n_features,
            "vocab_size": vocab_size,
            "d_model": d_model,
            "nhead": nhead,
            "num_encoder_layers": num_encoder_layers,
            "num_decoder_layers": num_decoder_layers,
            "dim_feedforward": dim_feedforward,
            "dropout": dropout,
            "max_len": max_len,
            "pe_dropout": pe_dropout,
        }
        self.n_features = n_features
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.max_len = max_len

        self.src_keyp_emb = KeypointEmbedding(n_features, d_model)
        self.src_pe = PositionalEncoding(d_model, max_len, pe_dropout)
        self.tgt_tok_emb = TokenEmbedding(vocab_size, d_model)
        self.tgt_pe = PositionalEncoding(d_model, max_len, pe_dropout)
        # The encoder is built here only to turn off nested tensors, a prototype API that
        # warns on every padded batch. Modules and parameter names stay nn.Transformer's.
        encoder_layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward, dropout, batch_first=True, norm_first=False
        )
        encoder = nn.TransformerEncoder(
            encoder_layer,
            num_encoder_layers,
            norm=nn.LayerNorm(d_model),
            enable_nested_tensor=False,
        )
        self.transformer = nn.Transformer(
            d_model=d_model,
            nhead=nhead,
            num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers,
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            custom_encoder=encoder,
            batch_first=True,
            norm_first=False,
        )
        self.generator = nn.Linear(d_model, vocab_size)

    def encode(
        self, src: Tensor, src_padding_mask: Tensor, capture: Capture | None = None
    ) -> Tensor:
        """Encode (B, P, E) features into the (B, P, D) memory.

        ``src_padding_mask`` is (B, P) bool, True at padding. Memory rows at padded
        positions are computed but masked out of every later attention.
        """
        self._check_source(src, src_padding_mask)
        x = self.src_pe(self.src_keyp_emb(src))  # (B, P, D)
        encoder = self.transformer.encoder
        if capture is None:
            return encoder(x, src_key_padding_mask=src_padding_mask)

        # nn.TransformerEncoder hands its layers an additive float mask. A bool mask would let
        # nn.MultiheadAttention take its fused inference kernel, which rounds differently and
        # moved sharp weights by about 1e-6, so the float mask keeps capture equal to the stock layers.
        layer_mask = torch.zeros(src_padding_mask.shape, dtype=x.dtype, device=x.device).masked_fill(
            src_padding_mask, float("-inf")
        )  # (B, P)
        weights = []
        for layer in encoder.layers:
            x, layer_weights = _encoder_layer_forward(layer, x, layer_mask)
            weights.append(layer_weights)
        if encoder.norm is not None:
            x = encoder.norm(x)
        capture.encoder_self = weights
        return x

    def decode(
        self,
        tgt: Tensor,
        memory: Tensor,
        src_padding_mask: Tensor,
        capture: Capture | None = None,
    ) -> Tensor:
        """Return (B, N, V) logits for (B, N) input tokens, BOS first, under a causal mask.

        Row ``i`` of the logits predicts token ``i + 1``. No target padding mask is
        applied: under the causal mask padding after EOS cannot reach earlier rows.
        """
        if tgt.dim() != 2 or tgt.size(0) != memory.size(0):
            raise ValueError(
                f"tgt must be (B, N) token ids with B = {memory.size(0)} like the memory, "
                f"got shape {tuple(tgt.shape)}"
            )
        n_tokens = tgt.size(1)
        x = self.tgt_pe(self.tgt_tok_emb(tgt))  # (B, N, D)
        causal_mask = nn.Transformer.generate_square_subsequent_mask(
            n_tokens, device=tgt.device, dtype=x.dtype
        )  # (N, N), -inf above the diagonal
        decoder = self.transformer.decoder

        if capture is None:
            x = decoder(
                x,
                memory,
                tgt_mask=causal_mask,
                tgt_is_causal=True,
                memory_key_padding_mask=src_padding_mask,
            )
            return self.generator(x)

        records: dict[str, list[Tensor]] = {
            "decoder_self": [], "cross": [], "self_block": [], "cross_block": []
        }
        for layer in decoder.layers:
            x, layer_record = _decoder_layer_forward(
                layer, x, memory, causal_mask, src_padding_mask
            )
            for name, value in layer_record.items():
                records[name].append(value)
        if decoder.norm is not None:
            x = decoder.norm(x)
        for name, values in records.items():
            setattr(capture, name, values)
        return self.generator(x)

    def forward(
        self,
        src: Tensor,
        src_padding_mask: Tensor,
        tgt: Tensor,
        capture: Capture | None = None,
    ) -> Tensor:
        """Return (B, N, V) teacher-forced logits for (B, P, E) features and (B, N) tokens."""
        memory = self.encode(src, src_padding_mask, capture)
        return self.decode(tgt, memory, src_padding_mask, capture)

    def _check_source(self, src: Tensor, src_padding_mask: Tensor) -> None:
        if src.dim() != 3 or src.size(-1) != self.n_features:
            raise ValueError(
                f"src must be (B, P, E) with E = {self.n_features} features, "
                f"got shape {tuple(src.shape)}"
            )
        if src_padding_mask.shape != src.shape[:2] or src_padding_mask.dtype != torch.bool:
            raise ValueError(
                f"src_padding_mask must be a bool tensor of shape {tuple(src.shape[:2])} "
                f"(True at padding), got {src_padding_mask.dtype} {tuple(src_padding_mask.shape)}"
            )
        if src.size(0) > 0 and bool(src_padding_mask.all(dim=1).any()):
            empty = torch.nonzero(src_padding_mask.all(dim=1)).flatten().tolist()
            raise ValueError(
                f"batch rows {empty} are all padding, which makes attention undefined; "
                "drop samples with no positions before batching"
            )


def _check_architecture(
    n_features: int, vocab_size: int, d_model: int, nhead: int, max_len: int
) -> None:
    problems = []
    if n_features < 1:
        problems.append(f"n_features must be positive, got {n_features}")
    if vocab_size < 1:
        problems.append(f"vocab_size must be positive, got {vocab_size}")
    if d_model < 2 or d_model % 2 != 0:
        problems.append(f"d_model must be even for sinusoidal encodings, got {d_model}")
    if nhead < 1 or d_model % nhead != 0:
        problems.append(f"nhead {nhead} must divide d_model {d_model}")
    if max_len < 1:
        problems.append(f"max_len must be positive, got {max_len}")
    if problems:
        raise ValueError("invalid model architecture: " + "; ".join(problems))


def _encoder_layer_forward(
    layer: nn.TransformerEncoderLayer, x: Tensor, padding_mask: Tensor
) -> tuple[Tensor, Tensor]:
    """Run one post-norm encoder layer and return its output and (B, H, P, P) weights.

    Same steps as ``nn.TransformerEncoderLayer.forward`` with ``norm_first=False``.
    """
    attended, weights = layer.self_attn(
        x, x, x,
        key_padding_mask=padding_mask,
        need_weights=True,
        average_attn_weights=False,
    )  # (B, P, D), (B, H, P, P)
    x = layer.norm1(x + layer.dropout1(attended))
    x = layer.norm2(x + _feed_forward(layer, x))
    return x, weights


def _decoder_layer_forward(
    layer: nn.TransformerDecoderLayer,
    x: Tensor,
    memory: Tensor,
    causal_mask: Tensor,
    padding_mask: Tensor,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Run one post-norm decoder layer and return its output and recorded tensors.

    Same steps as ``nn.TransformerDecoderLayer.forward`` with ``norm_first=False``;
    the block outputs are recorded before their residual additions.
    """
    attended, self_weights = layer.self_attn(
        x, x, x,
        attn_mask=causal_mask,
        need_weights=True,
        average_attn_weights=False,
    )  # (B, N, D), (B, H, N, N)
    self_block = layer.dropout1(attended)
    x = layer.norm1(x + self_block)

    attended, cross_weights = layer.multihead_attn(
        x, memory, memory,
        key_padding_mask=padding_mask,
        need_weights=True,
        average_attn_weights=False,
    )  # (B, N, D), (B, H, N, P)
    cross_block = layer.dropout2(attended)
    x = layer.norm2(x + cross_block)

    x = layer.norm3(x + _feed_forward(layer, x))
    record = {
        "decoder_self": self_weights,
        "cross": cross_weights,
        "self_block": self_block,
        "cross_block": cross_block,
    }
    return x, record


def _feed_forward(layer: nn.TransformerEncoderLayer | nn.TransformerDecoderLayer, x: Tensor) -> Tensor:
    """Feed-forward block of a stock layer, including its output dropout."""
    hidden = layer.dropout(layer.activation(layer.linear1(x)))
    output = layer.linear2(hidden)
    if isinstance(layer, nn.TransformerDecoderLayer):
        return layer.dropout3(output)
    return layer.dropout2(output)
