"""Teacher-forced capture against the step-by-step, hook-based reference."""

import numpy as np
import pytest
import torch

from signattention_core.capture import (
    AttentionHooks,
    PrecomputedEncoder,
    SampleCapture,
    capture_batch,
    capture_step_by_step,
    encode_batch,
    study_signed_diff,
    teacher_forced_input,
)
from signattention_core.decoding import BOS_ID, EOS_ID, PAD_ID, beam_search, greedy_decode
from signattention_core.model import SignTransformer

TOLERANCE = 1e-6
N_FEATURES = 6
VOCAB_SIZE = 12
MAX_LEN = 6
# positions of each sample; different lengths put padding into the batch
LENGTHS = (7, 3, 11, 5, 9)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # other processes share the CPU cores, and thread contention slows tiny models tenfold
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> SignTransformer:
    # seed 21 makes greedy and beam search end some hypotheses with EOS and cut others at MAX_LEN
    torch.manual_seed(21)
    model = SignTransformer(
        N_FEATURES, VOCAB_SIZE, d_model=16, nhead=2, num_encoder_layers=2,
        num_decoder_layers=2, dim_feedforward=32, dropout=0.1,
    )
    return model.eval()


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    src = torch.zeros(len(LENGTHS), max(LENGTHS), N_FEATURES)  # (B, P, E)
    padding_mask = torch.ones(len(LENGTHS), max(LENGTHS), dtype=torch.bool)  # (B, P)
    for row, length in enumerate(LENGTHS):
        src[row, :length] = 3 * torch.randn(length, N_FEATURES, generator=generator)
        padding_mask[row, :length] = False
    return src, padding_mask


def single(src: torch.Tensor, padding_mask: torch.Tensor, row: int):
    """Return one sample of the batch with its padding cut off."""
    length = int((~padding_mask[row]).sum())
    return src[row : row + 1, :length], padding_mask[row : row + 1, :length]


def assert_same_capture(batched: SampleCapture, reference: SampleCapture) -> None:
    # attention weights lie in [0, 1] and must agree to TOLERANCE absolute
    for name in ("encoder_self", "decoder_self", "cross"):
        got, expected = getattr(batched, name), getattr(reference, name)
        assert got.shape == expected.shape, name
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, err_msg=name)
    # block output norms reach 10 or more, where float32 resolves about 1e-6 relative
    for name in ("self_norm", "cross_norm", "signed_diff"):
        got, expected = getattr(batched, name), getattr(reference, name)
        assert got.shape == expected.shape, name
        np.testing.assert_allclose(got, expected, rtol=TOLERANCE, atol=TOLERANCE, err_msg=name)
    np.testing.assert_array_equal(batched.predicted, reference.predicted)


def test_teacher_forced_input_layout():
    tgt = teacher_forced_input([[5, 6], [], [7]], BOS_ID, PAD_ID, "cpu")
    expected = [[BOS_ID, 5, 6], [BOS_ID, PAD_ID, PAD_ID], [BOS_ID, 7, PAD_ID]]
    assert tgt.tolist() == expected


def test_capture_shapes_without_padding(model, batch):
    src, padding_mask = batch
    hypotheses = [[4], [], [5, 6, 7], [8, 9], [10, 11, 4, 5]]
    captured = capture_batch(model, src, padding_mask, hypotheses, BOS_ID, PAD_ID)

    assert len(captured) == len(LENGTHS)
    for sample, positions, tokens in zip(captured, LENGTHS, hypotheses, strict=True):
        n = len(tokens) + 1
        assert sample.encoder_self.shape == (2, 2, positions, positions)
        assert sample.decoder_self.shape == (2, 2, n, n)
        assert sample.cross.shape == (2, 2, n, positions)
        assert sample.self_norm.shape == (2, n)
        assert sample.cross_norm.shape == (2, n)
        assert sample.signed_diff.shape == (2, n)
        assert sample.predicted.shape == (n,)


def test_capture_rows_are_distributions(model, batch):
    src, padding_mask = batch
    captured = capture_batch(model, src, padding_mask, [[4, 5]] * len(LENGTHS), BOS_ID, PAD_ID)
    for sample in captured:
        for matrix in (sample.encoder_self, sample.decoder_self, sample.cross):
            np.testing.assert_allclose(matrix.sum(axis=-1), 1.0, atol=1e-5)
        # causal: no step attends to a later step
        assert np.all(np.triu(sample.decoder_self, k=1) == 0)


def test_greedy_rows_match_step_by_step(model, batch):
    src, padding_mask = batch
    hypotheses = greedy_decode(model, src, padding_mask, max_len=MAX_LEN)
    captured = capture_batch(model, src, padding_mask, hypotheses, BOS_ID, PAD_ID)

    for row, hypothesis in enumerate(hypotheses):
        sample_src, sample_mask = single(src, padding_mask, row)
        tokens, ended_with_eos, reference = capture_step_by_step(
            model, sample_src, sample_mask, None, MAX_LEN, BOS_ID, EOS_ID
        )
        assert tokens == hypothesis
        assert ended_with_eos == (len(hypothesis) < MAX_LEN)
        if ended_with_eos:
            assert_same_capture(captured[row], reference)
        else:
            # a hypothesis cut at MAX_LEN has no EOS step, so the capture contains one more
            # row than the decoder ran: the step that would have come next
            _, _, forced = capture_step_by_step(
                model, sample_src, sample_mask, hypothesis, MAX_LEN, BOS_ID, EOS_ID
            )
            assert_same_capture(captured[row], forced)
            np.testing.assert_allclose(
                captured[row].cross[:, :, :-1], reference.cross, rtol=0, atol=TOLERANCE
            )


def test_greedy_last_step_predicts_eos(model, batch):
    src, padding_mask = batch
    hypotheses = greedy_decode(model, src, padding_mask, max_len=MAX_LEN)
    captured = capture_batch(model, src, padding_mask, hypotheses, BOS_ID, PAD_ID)
    for hypothesis, sample in zip(hypotheses, captured, strict=True):
        assert sample.predicted[:-1].tolist() == hypothesis
        if len(hypothesis) < MAX_LEN:
            assert sample.predicted[-1] == EOS_ID


def test_beam_rows_match_step_by_step(model, batch):
    src, padding_mask = batch
    hypotheses = beam_search(model, src, padding_mask, beam_size=3, max_len=MAX_LEN)
    captured = capture_batch(model, src, padding_mask, hypotheses, BOS_ID, PAD_ID)

    for row, hypothesis in enumerate(hypotheses):
        sample_src, sample_mask = single(src, padding_mask, row)
        tokens, _, reference = capture_step_by_step(
            model, sample_src, sample_mask, hypothesis, MAX_LEN, BOS_ID, EOS_ID
        )
        assert tokens == hypothesis
        assert_same_capture(captured[row], reference)


def test_padding_leaves_weights_unchanged(model, batch):
    src, padding_mask = batch
    # hypotheses of different lengths pad the decoder input as well as the source
    hypotheses = [[4], [], [5, 6, 7, 8, 9, 10], [8, 9], [10, 11, 0, 2]]
    captured = capture_batch(model, src, padding_mask, hypotheses, BOS_ID, PAD_ID)

    for row, hypothesis in enumerate(hypotheses):
        sample_src, sample_mask = single(src, padding_mask, row)
        (alone,) = capture_batch(model, sample_src, sample_mask, [hypothesis], BOS_ID, PAD_ID)
        _, _, reference = capture_step_by_step(
            model, sample_src, sample_mask, hypothesis, MAX_LEN, BOS_ID, EOS_ID
        )
        assert_same_capture(captured[row], alone)
        assert_same_capture(captured[row], reference)


def test_signed_diff_is_prefix_mean():
    generator = torch.Generator().manual_seed(3)
    self_block = torch.randn(2, 4, 5, generator=generator)  # (L, N, D)
    cross_block = torch.randn(2, 4, 5, generator=generator)
    got = study_signed_diff(self_block, cross_block)  # (L, N)

    for step in range(4):
        expected = (self_block[:, : step + 1] - cross_block[:, : step + 1]).mean(dim=(1, 2))
        torch.testing.assert_close(got[:, step], expected)


def test_capture_rejects_training_mode(batch):
    src, padding_mask = batch
    torch.manual_seed(0)
    model = SignTransformer(N_FEATURES, VOCAB_SIZE, d_model=16, nhead=2, dim_feedforward=32)
    model.train()
    with pytest.raises(ValueError, match="eval mode"):
        capture_batch(model, src, padding_mask, [[]] * len(LENGTHS), BOS_ID, PAD_ID)


def test_capture_rejects_hypothesis_count(model, batch):
    src, padding_mask = batch
    with pytest.raises(ValueError, match="2 hypotheses for a batch of 5"):
        capture_batch(model, src, padding_mask, [[], []], BOS_ID, PAD_ID)


def test_hooks_removed_after_reference(model, batch):
    src, padding_mask = batch
    fastpath = torch.backends.mha.get_fastpath_enabled()
    sample_src, sample_mask = single(src, padding_mask, 0)
    capture_step_by_step(model, sample_src, sample_mask, [4, 5], MAX_LEN, BOS_ID, EOS_ID)

    for module in model.modules():
        assert not module._forward_hooks
        assert not module._forward_pre_hooks
    assert torch.backends.mha.get_fastpath_enabled() == fastpath


def test_encode_batch_matches_batched_encoder(model, batch):
    src, padding_mask = batch
    alone = encode_batch(model, src, padding_mask, per_sample=True)
    together = encode_batch(model, src, padding_mask, per_sample=False)

    for row, positions in enumerate(LENGTHS):
        assert alone.encoder_self[row].shape == (2, 2, positions, positions)
        np.testing.assert_allclose(alone.encoder_self[row], together.encoder_self[row], rtol=0, atol=1e-5)
        torch.testing.assert_close(alone.memory[row, :positions], together.memory[row, :positions])
    # per-sample memory stays zero at padding, which every later attention masks out
    assert torch.all(alone.memory[padding_mask] == 0)


def test_precomputed_encoder_decodes_like_model(model, batch):
    src, padding_mask = batch
    encoded = encode_batch(model, src, padding_mask)
    stand_in = PrecomputedEncoder(model, encoded)

    assert greedy_decode(stand_in, src, padding_mask, max_len=MAX_LEN) == greedy_decode(
        model, src, padding_mask, max_len=MAX_LEN
    )
    assert beam_search(stand_in, src, padding_mask, beam_size=3, max_len=MAX_LEN) == beam_search(
        model, src, padding_mask, beam_size=3, max_len=MAX_LEN
    )
    assert not model.training


def test_precomputed_encoder_rejects_other_batch(model, batch):
    src, padding_mask = batch
    stand_in = PrecomputedEncoder(model, encode_batch(model, src, padding_mask))
    with pytest.raises(ValueError, match="other than the one"):
        greedy_decode(stand_in, src.clone(), padding_mask, max_len=MAX_LEN)


def test_capture_reuses_encoded_batch(model, batch):
    src, padding_mask = batch
    encoded = encode_batch(model, src, padding_mask)
    hypotheses = [[4], [], [5, 6], [7], [8, 9, 10]]
    reused = capture_batch(model, src, padding_mask, hypotheses, BOS_ID, PAD_ID, encoded=encoded)
    fresh = capture_batch(model, src, padding_mask, hypotheses, BOS_ID, PAD_ID)
    for got, expected in zip(reused, fresh, strict=True):
        assert_same_capture(got, expected)


def test_encoder_capture_equals_stock_encoder():
    # large weights make attention sharp, where any change of matmul kernel shows in the weights
    torch.manual_seed(1)
    model = SignTransformer(
        150, VOCAB_SIZE, d_model=64, nhead=8, num_encoder_layers=2, num_decoder_layers=1,
        dim_feedforward=64,
    ).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(2.0)
    src = 0.5 * torch.randn(1, 60, 150, generator=torch.Generator().manual_seed(2))  # (1, P, E)
    padding_mask = torch.zeros(1, 60, dtype=torch.bool)  # (1, P)

    encoded = encode_batch(model, src, padding_mask)
    _, _, reference = capture_step_by_step(model, src, padding_mask, [], 1, BOS_ID, EOS_ID)

    # the stock layers with weights requested, as the study's hooks ran them
    with torch.no_grad(), AttentionHooks(model):
        stock_memory = model.encode(src, padding_mask)  # (1, P, D)
    torch.testing.assert_close(encoded.memory, stock_memory, atol=0, rtol=0)
    np.testing.assert_array_equal(encoded.encoder_self[0], reference.encoder_self)
