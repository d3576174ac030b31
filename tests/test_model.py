"""Tests for the SignTransformer architecture and attention capture."""

import math

import pytest
import torch
from torch import nn

from signattention_core.model import Capture, SignTransformer, sinusoidal_table

N_FEATURES = 6
VOCAB = 11
D_MODEL = 16
HEADS = 2


def tiny_model(seed: int = 0, layers: int = 2, dtype=torch.float32) -> SignTransformer:
    torch.manual_seed(seed)
    model = SignTransformer(
        N_FEATURES, VOCAB, d_model=D_MODEL, nhead=HEADS,
        num_encoder_layers=layers, num_decoder_layers=layers, dim_feedforward=32, max_len=64,
    )
    return model.to(dtype).eval()


def padded_batch(seed: int = 0, dtype=torch.float32):
    """Four samples of 9, 5, 2 and 9 positions, and 6 target tokens each."""
    generator = torch.Generator().manual_seed(seed)
    src = torch.randn(4, 9, N_FEATURES, generator=generator, dtype=dtype)  # (B, P, E)
    mask = torch.zeros(4, 9, dtype=torch.bool)  # (B, P)
    mask[1, 5:] = True
    mask[2, 2:] = True
    src[mask] = 0.0
    tgt = torch.randint(0, VOCAB, (4, 6), generator=generator)  # (B, N)
    tgt[:, 0] = 2
    return src, mask, tgt


def test_state_dict_uses_study_names():
    keys = set(tiny_model(layers=1).state_dict())

    for key in (
        "src_keyp_emb.conv1d_1.weight",
        "src_keyp_emb.conv1d_1.bias",
        "src_keyp_emb.conv1d_4.weight",
        "src_keyp_emb.conv1d_4.bias",
        "src_pe.pe",
        "tgt_tok_emb.embedding.weight",
        "tgt_pe.pe",
        "transformer.encoder.layers.0.self_attn.in_proj_weight",
        "transformer.encoder.layers.0.linear1.weight",
        "transformer.encoder.layers.0.norm2.bias",
        "transformer.decoder.layers.0.self_attn.out_proj.weight",
        "transformer.decoder.layers.0.multihead_attn.in_proj_weight",
        "transformer.decoder.layers.0.norm3.weight",
        "transformer.encoder.norm.weight",
        "transformer.decoder.norm.weight",
        "generator.weight",
        "generator.bias",
    ):
        assert key in keys, key
    prefixes = {key.split(".")[0] for key in keys}
    assert prefixes == {"src_keyp_emb", "src_pe", "tgt_tok_emb", "tgt_pe", "transformer", "generator"}


def test_state_dict_matches_nn_transformer():
    model = tiny_model(layers=2)
    reference = nn.Transformer(
        d_model=D_MODEL, nhead=HEADS, num_encoder_layers=2, num_decoder_layers=2,
        dim_feedforward=32, batch_first=True,
    )
    ours = {key.removeprefix("transformer."): value.shape
            for key, value in model.state_dict().items() if key.startswith("transformer.")}
    theirs = {key: value.shape for key, value in reference.state_dict().items()}

    assert ours == theirs


def test_defaults_follow_pytorch():
    model = SignTransformer(150, 10)
    encoder_layer = model.transformer.encoder.layers[0]

    assert encoder_layer.self_attn.num_heads == 8
    assert encoder_layer.linear1.out_features == 2048
    assert model.d_model == 16
    assert not encoder_layer.norm_first
    assert not model.transformer.decoder.layers[0].norm_first
    assert model.transformer.encoder.layers[0].self_attn.batch_first


def test_output_shapes():
    model = tiny_model()
    src, mask, tgt = padded_batch()

    with torch.no_grad():
        memory = model.encode(src, mask)
        logits = model.decode(tgt, memory, mask)
        direct = model(src, mask, tgt)

    assert memory.shape == (4, 9, D_MODEL)
    assert logits.shape == (4, 6, VOCAB)
    assert torch.equal(logits, direct)


def test_keypoint_embedding_is_two_relu_convolutions():
    model = tiny_model()
    src, _, _ = padded_batch()
    embedding = model.src_keyp_emb
    w1 = embedding.conv1d_1.weight.squeeze(-1)  # (128, E)
    w2 = embedding.conv1d_4.weight.squeeze(-1)  # (D, 128)

    expected = torch.relu(torch.relu(src @ w1.T + embedding.conv1d_1.bias) @ w2.T + embedding.conv1d_4.bias)

    assert embedding.conv1d_1.weight.shape == (128, N_FEATURES, 1)
    torch.testing.assert_close(embedding(src), expected)


def test_token_embedding_scaled_by_sqrt_d():
    model = tiny_model()
    tokens = torch.tensor([[2, 5, 7]])

    expected = model.tgt_tok_emb.embedding.weight[tokens] * math.sqrt(D_MODEL)

    torch.testing.assert_close(model.tgt_tok_emb(tokens), expected)


def test_sinusoidal_table_values():
    table = sinusoidal_table(50, 8)

    assert table.shape == (1, 50, 8)
    for position in (0, 7, 49):
        for i in range(4):
            angle = position / 10000 ** (2 * i / 8)
            assert table[0, position, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert table[0, position, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_capture_keeps_logits_float32(seed):
    model = tiny_model(seed)
    src, mask, tgt = padded_batch(seed)

    with torch.no_grad():
        plain = model(src, mask, tgt)
        captured = model(src, mask, tgt, capture=Capture())

    torch.testing.assert_close(captured, plain, atol=1e-6, rtol=0)


def test_capture_keeps_logits_float64():
    model = tiny_model(3, dtype=torch.float64)
    src, mask, tgt = padded_batch(3, dtype=torch.float64)

    with torch.no_grad():
        plain = model(src, mask, tgt)
        captured = model(src, mask, tgt, capture=Capture())
        memory_plain = model.encode(src, mask)
        memory_captured = model.encode(src, mask, Capture())

    torch.testing.assert_close(captured, plain, atol=1e-12, rtol=0)
    torch.testing.assert_close(memory_captured, memory_plain, atol=1e-12, rtol=0)


def test_capture_with_gradients_enabled():
    model = tiny_model(4)
    src, mask, tgt = padded_batch(4)

    plain = model(src, mask, tgt)
    captured = model(src, mask, tgt, capture=Capture())

    torch.testing.assert_close(captured, plain, atol=1e-6, rtol=0)
    assert captured.requires_grad


def test_capture_shapes():
    model = tiny_model()
    src, mask, tgt = padded_batch()
    capture = Capture()

    with torch.no_grad():
        model(src, mask, tgt, capture=capture)

    assert len(capture.encoder_self) == 2
    assert len(capture.decoder_self) == 2
    assert len(capture.cross) == 2
    assert len(capture.self_block) == 2
    assert len(capture.cross_block) == 2
    assert capture.encoder_self[0].shape == (4, HEADS, 9, 9)
    assert capture.decoder_self[1].shape == (4, HEADS, 6, 6)
    assert capture.cross[0].shape == (4, HEADS, 6, 9)
    assert capture.self_block[0].shape == (4, 6, D_MODEL)
    assert capture.cross_block[1].shape == (4, 6, D_MODEL)


def test_capture_weights_respect_masks():
    model = tiny_model()
    src, mask, tgt = padded_batch()
    capture = Capture()

    with torch.no_grad():
        model(src, mask, tgt, capture=capture)

    for layer in range(2):
        encoder_self = capture.encoder_self[layer]  # (B, H, P, P)
        cross = capture.cross[layer]  # (B, H, N, P)
        decoder_self = capture.decoder_self[layer]  # (B, H, N, N)
        torch.testing.assert_close(encoder_self.sum(-1), torch.ones(4, HEADS, 9))
        torch.testing.assert_close(cross.sum(-1), torch.ones(4, HEADS, 6))
        torch.testing.assert_close(decoder_self.sum(-1), torch.ones(4, HEADS, 6))
        assert encoder_self[1, :, :, 5:].abs().max() == 0
        assert cross[2, :, :, 2:].abs().max() == 0
        upper = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
        assert decoder_self[:, :, upper].abs().max() == 0


def test_capture_block_outputs_before_residual():
    model = tiny_model(layers=1)
    src, mask, tgt = padded_batch()
    capture = Capture()
    layer = model.transformer.decoder.layers[0]

    with torch.no_grad():
        memory = model.encode(src, mask)
        model.decode(tgt, memory, mask, capture=capture)
        x = model.tgt_pe(model.tgt_tok_emb(tgt))  # (B, N, D)
        causal = nn.Transformer.generate_square_subsequent_mask(6)
        self_out = layer.self_attn(x, x, x, attn_mask=causal, need_weights=False)[0]
        after_self = layer.norm1(x + self_out)
        cross_out = layer.multihead_attn(
            after_self, memory, memory, key_padding_mask=mask, need_weights=False
        )[0]

    # the reference runs PyTorch's fused attention, which rounds differently
    torch.testing.assert_close(capture.self_block[0], self_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(capture.cross_block[0], cross_out, atol=1e-5, rtol=0)


def test_capture_replaces_previous_lists():
    model = tiny_model()
    src, mask, tgt = padded_batch()
    capture = Capture()

    with torch.no_grad():
        model(src, mask, tgt, capture=capture)
        model(src[:2], mask[:2], tgt[:2], capture=capture)

    assert len(capture.encoder_self) == 2
    assert capture.encoder_self[0].shape[0] == 2
    assert capture.cross[0].shape[0] == 2


def test_no_capture_skips_attention_weights():
    model = tiny_model()
    model.train()  # keeps the fused inference path out, so every attention module is called
    src, mask, tgt = padded_batch()
    requested = []

    def record(module, args, kwargs):
        requested.append(kwargs.get("need_weights"))

    handles = [
        module.register_forward_pre_hook(record, with_kwargs=True)
        for module in model.modules() if isinstance(module, nn.MultiheadAttention)
    ]
    try:
        model(src, mask, tgt)
    finally:
        for handle in handles:
            handle.remove()

    assert len(requested) == 6
    assert requested == [False] * 6


def test_wrong_feature_count_rejected():
    model = tiny_model()
    src = torch.zeros(2, 5, N_FEATURES + 1)
    mask = torch.zeros(2, 5, dtype=torch.bool)

    with pytest.raises(ValueError, match="E = 6"):
        model.encode(src, mask)


def test_all_padding_row_rejected():
    model = tiny_model()
    src = torch.zeros(3, 5, N_FEATURES)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[1] = True

    with pytest.raises(ValueError, match=r"batch rows \[1\] are all padding"):
        model.encode(src, mask)


def test_sequence_longer_than_table_rejected():
    model = tiny_model()
    src = torch.zeros(1, 65, N_FEATURES)
    mask = torch.zeros(1, 65, dtype=torch.bool)

    with pytest.raises(ValueError, match="exceeds the positional encoding length 64"):
        model.encode(src, mask)


def test_invalid_architecture_rejected():
    with pytest.raises(ValueError, match="nhead 3 must divide d_model 16"):
        SignTransformer(6, 10, d_model=16, nhead=3)
    with pytest.raises(ValueError, match="d_model must be even"):
        SignTransformer(6, 10, d_model=15, nhead=1)
