"""Tests for the translation metrics and the teacher-forced token statistics."""

import math

import pytest
import sacrebleu
import torch

from signattention_core.dataset import collate
from signattention_core.evaluation import (
    TokenStatistics,
    sentence_metrics,
    teacher_forced_loss,
    translation_metrics,
)
from signattention_core.model import SignTransformer

REFERENCES = [
    ["ΕΓΩ(1)", "ΠΟΙΟΣ;", "ΕΝΟΧΛΩ_ΕΣΕΝΑ"],
    ["ΓΕΙΑ", "ΕΣΥ"],
    ["ΕΓΩ(1)", "ΟΝΟΜΑ", "ΓΙΩΡΓΟΣ", "ΕΙΝΑΙ"],
]


def test_perfect_hypotheses():
    metrics = translation_metrics(REFERENCES, REFERENCES)
    for order in range(1, 5):
        assert metrics[f"bleu_{order}"] == pytest.approx(100.0)
    assert metrics["sentence_bleu"] == pytest.approx(100.0)
    assert metrics["wer"] == 0.0
    assert metrics["exact_match"] == 1.0
    assert metrics["n_samples"] == 3
    assert [item["exact_match"] for item in metrics["per_sample"]] == [True, True, True]


def test_edit_counts_and_wer():
    hypotheses = [
        ["ΕΓΩ(1)", "ΠΟΙΟΣ;"],  # one deletion
        ["ΓΕΙΑ", "ΕΣΥ"],  # exact
        ["ΕΓΩ(1)", "ΟΝΟΜΑ", "ΜΑΡΙΑ", "ΕΙΝΑΙ", "ΕΙΝΑΙ"],  # one substitution, one insertion
    ]
    metrics = translation_metrics(REFERENCES, hypotheses)
    assert metrics["deletions"] == 1
    assert metrics["substitutions"] == 1
    assert metrics["insertions"] == 1
    assert metrics["reference_tokens"] == 9
    assert metrics["wer"] == pytest.approx(3 / 9)
    assert metrics["exact_match"] == pytest.approx(1 / 3)
    per_sample_wer = [item["wer"] for item in metrics["per_sample"]]
    assert per_sample_wer == pytest.approx([1 / 3, 0.0, 2 / 4])


def test_bleu_matches_sacrebleu_on_joined_tokens():
    hypotheses = [["ΕΓΩ(1)", "ΠΟΙΟΣ;"], ["ΓΕΙΑ"], ["ΕΓΩ(1)", "ΟΝΟΜΑ", "ΜΑΡΙΑ", "ΕΙΝΑΙ"]]
    metrics = translation_metrics(REFERENCES, hypotheses)
    joined_references = [" ".join(tokens) for tokens in REFERENCES]
    joined_hypotheses = [" ".join(tokens) for tokens in hypotheses]
    for order in range(1, 5):
        expected = sacrebleu.BLEU(tokenize="none", max_ngram_order=order).corpus_score(
            joined_hypotheses, [joined_references]
        )
        assert metrics[f"bleu_{order}"] == pytest.approx(expected.score)
    assert metrics["bleu_1"] > metrics["bleu_4"]


def test_gloss_punctuation_not_split():
    # sacrebleu's default 13a tokeniser splits "ΠΟΙΟΣ;" into "ΠΟΙΟΣ ;", so "ΠΟΙΟΣ" would match
    default = sacrebleu.BLEU(max_ngram_order=1).corpus_score(["ΠΟΙΟΣ"], [["ΠΟΙΟΣ;"]])
    assert default.score > 0.0

    metrics = translation_metrics([["ΠΟΙΟΣ;"]], [["ΠΟΙΟΣ"]])
    assert metrics["bleu_1"] == 0.0
    assert metrics["wer"] == 1.0


def test_tokenisation_stated():
    metrics = translation_metrics(REFERENCES, REFERENCES)
    assert "tokenize='none'" in metrics["tokenization"]
    assert "tok:none" in metrics["bleu_signature"]


def test_sentence_bleu_of_exact_match_is_100():
    glosses = ["ΧΘΕΣ", "ΑΥΤΟΣ", "ΚΛΕΒΩ(1)", "ΚΙΝΗΤΟ", "ΕΓΩ(1)", "ΑΣΤΥΝΟΜΙΑ", "ΘΕΛΩ"]
    assert sentence_metrics(glosses, glosses)["sentence_bleu"] == 100.0


def test_sentence_bleu_uses_effective_order():
    # a two-token exact match has no 3- or 4-grams; effective order still gives 100
    scores = sentence_metrics(["ΓΕΙΑ", "ΕΣΥ"], ["ΓΕΙΑ", "ΕΣΥ"])
    assert scores["sentence_bleu"] == pytest.approx(100.0)
    assert scores["exact_match"] is True


def test_empty_hypothesis_scores_zero():
    scores = sentence_metrics(["ΓΕΙΑ", "ΕΣΥ"], [])
    assert scores["sentence_bleu"] == 0.0
    assert scores["wer"] == 1.0
    assert scores["exact_match"] is False


def test_invalid_inputs_rejected():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        translation_metrics(REFERENCES[:2], REFERENCES[:1])
    with pytest.raises(ValueError, match="split is empty"):
        translation_metrics([], [])
    with pytest.raises(ValueError, match="sample 1: the reference has no tokens"):
        translation_metrics([["ΓΕΙΑ"], []], [["ΓΕΙΑ"], ["ΓΕΙΑ"]])
    with pytest.raises(ValueError, match="without whitespace"):
        sentence_metrics(["ΓΕΙΑ ΕΣΥ"], ["ΓΕΙΑ"])
    with pytest.raises(ValueError, match="must be a list of tokens"):
        sentence_metrics("ΓΕΙΑ", ["ΓΕΙΑ"])


def tiny_batch():
    torch.manual_seed(0)
    items = [
        {"id": "a", "features": torch.randn(5, 6), "frame_index": torch.arange(5),
         "tokens": torch.tensor([2, 4, 5, 6, 3]), "n_frames": 5},
        {"id": "b", "features": torch.randn(3, 6), "frame_index": torch.arange(3),
         "tokens": torch.tensor([2, 7, 3]), "n_frames": 3},
    ]
    return collate(items)


def tiny_model():
    torch.manual_seed(0)
    return SignTransformer(n_features=6, vocab_size=8, d_model=8, nhead=2,
                           dim_feedforward=16, dropout=0.0, max_len=16).eval()


def test_teacher_forced_loss_ignores_padding():
    model, batch = tiny_model(), tiny_batch()
    loss, statistics = teacher_forced_loss(model, batch)

    logits = model(batch.src, batch.src_padding_mask, batch.tgt[:, :-1])  # (B, N-1, V)
    targets = batch.tgt[:, 1:]  # (B, N-1)
    expected = torch.nn.CrossEntropyLoss(ignore_index=0)(logits.reshape(-1, 8), targets.reshape(-1))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert statistics.tokens == 4 + 2
    assert statistics.weight_sum == 6.0
    assert statistics.loss == pytest.approx(expected.item(), rel=1e-6)
    correct = ((logits.argmax(-1) == targets) & (targets != 0)).sum().item()
    assert statistics.correct == correct
    assert statistics.accuracy == pytest.approx(correct / 6)
    assert loss.requires_grad


def test_teacher_forced_loss_class_weights():
    model, batch = tiny_model(), tiny_batch()
    weights = torch.tensor([1.0, 1.0, 1.0, 0.5, 2.0, 1.0, 3.0, 0.25])
    loss, statistics = teacher_forced_loss(model, batch, weights)

    logits = model(batch.src, batch.src_padding_mask, batch.tgt[:, :-1])
    targets = batch.tgt[:, 1:]
    criterion = torch.nn.CrossEntropyLoss(weight=weights, ignore_index=0)
    expected = criterion(logits.reshape(-1, 8), targets.reshape(-1))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # targets 4, 5, 6, EOS and 7, EOS
    assert statistics.weight_sum == pytest.approx(2.0 + 1.0 + 3.0 + 0.5 + 0.25 + 0.5)


def test_token_statistics_sum_and_pack():
    total = TokenStatistics()
    total.add(TokenStatistics(loss_sum=3.0, weight_sum=2.0, correct=1, tokens=2))
    total.add(TokenStatistics(loss_sum=1.0, weight_sum=2.0, correct=2, tokens=2))
    assert total.loss == 1.0
    assert total.accuracy == 0.75
    assert TokenStatistics.from_tensor(total.to_tensor()) == total
    assert math.isnan(TokenStatistics().loss)
    assert math.isnan(TokenStatistics().accuracy)
