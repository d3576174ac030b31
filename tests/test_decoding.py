"""Tests for batched greedy decoding and beam search."""

import itertools

import pytest
import torch

from signattention_core.decoding import beam_search, greedy_decode
from signattention_core.model import SignTransformer

N_FEATURES = 5
BOS, EOS = 2, 3


def tiny_model(seed: int, vocab: int = 9, eos_bias: float = 1.0) -> SignTransformer:
    """A random model; ``eos_bias`` raises the EOS logit so hypotheses end at varied steps."""
    torch.manual_seed(seed)
    model = SignTransformer(
        N_FEATURES, vocab, d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=2,
        dim_feedforward=32, max_len=32,
    )
    with torch.no_grad():
        model.generator.bias[EOS] += eos_bias
    return model.eval()


def padded_batch(seed: int, lengths=(8, 5, 2, 8, 6, 3)):
    generator = torch.Generator().manual_seed(seed)
    src = torch.randn(len(lengths), max(lengths), N_FEATURES, generator=generator)  # (B, P, E)
    mask = torch.arange(max(lengths)).unsqueeze(0) >= torch.tensor(lengths).unsqueeze(1)  # (B, P)
    src[mask] = 0.0
    return src, mask


def reference_greedy(model, src, mask, max_len):
    """Decode each sample alone, unpadded, one token at a time."""
    outputs = []
    for row in range(src.size(0)):
        length = int((~mask[row]).sum())
        features = src[row : row + 1, :length]
        row_mask = torch.zeros(1, length, dtype=torch.bool)
        tokens = []
        with torch.no_grad():
            for _ in range(max_len):
                prefix = torch.tensor([[BOS, *tokens]])
                logits = model(features, row_mask, prefix)[0, -1]
                token = int(logits.argmax())
                if token == EOS:
                    break
                tokens.append(token)
        outputs.append(tokens)
    return outputs


def sequence_scores(model, src, mask, candidates, alpha):
    """Length-penalised summed log-probability of each (tokens, ended) candidate.

    A candidate that ended is scored with EOS appended. All candidates run in one batch,
    padded after their last input token, which the causal mask keeps from earlier rows.
    """
    targets = [[*tokens, EOS] if ended else list(tokens) for tokens, ended in candidates]
    width = max(len(target) for target in targets)
    prefixes = torch.zeros(len(targets), width, dtype=torch.long)  # (C, N)
    for row, target in enumerate(targets):
        prefixes[row, : len(target)] = torch.tensor([BOS, *target[:-1]])
    with torch.no_grad():
        logits = model(src.expand(len(targets), -1, -1), mask.expand(len(targets), -1), prefixes)
        log_probs = torch.log_softmax(logits, dim=-1)  # (C, N, V)
    scores = []
    for row, target in enumerate(targets):
        total = sum(log_probs[row, i, token].item() for i, token in enumerate(target))
        scores.append(total / ((5 + len(target)) / 6) ** alpha)
    return scores


@pytest.mark.parametrize("seed", range(4))
def test_beam_one_equals_greedy(seed):
    model = tiny_model(seed)
    src, mask = padded_batch(seed)

    greedy = greedy_decode(model, src, mask, max_len=10)
    beam = beam_search(model, src, mask, beam_size=1, max_len=10)
    beam_penalised = beam_search(model, src, mask, beam_size=1, max_len=10, length_penalty=1.0)

    assert beam == greedy
    assert beam_penalised == greedy


def test_greedy_lengths_vary_in_tests():
    # guards the other tests against models that always stop at once or never stop
    lengths = set()
    for seed in range(4):
        model = tiny_model(seed)
        src, mask = padded_batch(seed)
        lengths.update(len(tokens) for tokens in greedy_decode(model, src, mask, max_len=10))

    assert len(lengths) >= 3


@pytest.mark.parametrize("seed", range(3))
def test_greedy_matches_per_sample_reference(seed):
    model = tiny_model(seed)
    src, mask = padded_batch(seed)

    assert greedy_decode(model, src, mask, max_len=10) == reference_greedy(model, src, mask, 10)


def test_greedy_stops_when_all_finish():
    model = tiny_model(0, eos_bias=100.0)
    src, mask = padded_batch(0)
    calls = []
    decode = model.decode

    def counting_decode(*args, **kwargs):
        calls.append(args[0].shape)
        return decode(*args, **kwargs)

    model.decode = counting_decode
    result = greedy_decode(model, src, mask, max_len=10)

    assert result == [[] for _ in range(6)]
    assert len(calls) == 1


def test_max_len_caps_hypotheses():
    model = tiny_model(1, eos_bias=-100.0)
    src, mask = padded_batch(1)

    greedy = greedy_decode(model, src, mask, max_len=4)
    beam = beam_search(model, src, mask, beam_size=3, max_len=4)

    assert [len(tokens) for tokens in greedy] == [4] * 6
    assert [len(tokens) for tokens in beam] == [4] * 6


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_wide_beam_finds_best_sequence(alpha):
    # with a beam wider than every prefix set, beam search is exhaustive
    vocab, max_len = 5, 3
    model = tiny_model(7, vocab=vocab, eos_bias=0.5)
    src, mask = padded_batch(7, lengths=(6, 4))

    result = beam_search(model, src, mask, beam_size=vocab**max_len, max_len=max_len,
                         length_penalty=alpha)

    for row in range(2):
        length = int((~mask[row]).sum())
        features = src[row : row + 1, :length]
        row_mask = torch.zeros(1, length, dtype=torch.bool)
        candidates = []
        words = [token for token in range(vocab) if token != EOS]
        for n in range(max_len):
            for tokens in itertools.product(words, repeat=n):
                candidates.append((list(tokens), True))
        for tokens in itertools.product(words, repeat=max_len):
            candidates.append((list(tokens), False))
        scores = sequence_scores(model, features, row_mask, candidates, alpha)
        scored = [(score, tokens) for score, (tokens, _) in zip(scores, candidates, strict=True)]
        best_score, best = max(scored, key=lambda item: item[0])

        assert result[row] == best, f"best score {best_score:.4f} for {best}"


def test_beam_batch_equals_single_samples():
    model = tiny_model(2)
    src, mask = padded_batch(2)

    batched = beam_search(model, src, mask, beam_size=3, max_len=8, length_penalty=0.6)
    single = []
    for row in range(src.size(0)):
        length = int((~mask[row]).sum())
        single.extend(beam_search(
            model, src[row : row + 1, :length], torch.zeros(1, length, dtype=torch.bool),
            beam_size=3, max_len=8, length_penalty=0.6,
        ))

    assert batched == single


def test_decoding_restores_training_mode():
    model = tiny_model(0)
    model.train()
    src, mask = padded_batch(0)

    first = greedy_decode(model, src, mask, max_len=5)
    second = beam_search(model, src, mask, beam_size=2, max_len=5)

    assert model.training
    assert first == greedy_decode(model, src, mask, max_len=5)
    assert second == beam_search(model, src, mask, beam_size=2, max_len=5)


def test_invalid_arguments_rejected():
    model = tiny_model(0)
    src, mask = padded_batch(0)

    with pytest.raises(ValueError, match="beam_size must be at least 1"):
        beam_search(model, src, mask, beam_size=0, max_len=5)
    with pytest.raises(ValueError, match="length_penalty must be >= 0"):
        beam_search(model, src, mask, beam_size=2, max_len=5, length_penalty=-1.0)
    with pytest.raises(ValueError, match="exceeds the model's positional encoding length 32"):
        greedy_decode(model, src, mask, max_len=33)
    with pytest.raises(ValueError, match="max_len must be at least 1"):
        greedy_decode(model, src, mask, max_len=0)
