"""Tests for signattention_core.dataset: label alignment, padding masks and loaders."""

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from signattention_core import holistic
from signattention_core.corpus import Corpus, CorpusError
from signattention_core.dataset import (
    Batch,
    SignDataset,
    collate,
    fit_tokenizer,
    make_loader,
    sample_tokens,
    set_loader_epoch,
)
from signattention_core.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer
from signattention_core.transforms import TransformConfig

# one row per sample: id, split, gloss, text, frames; sample k's pose has x = k everywhere
ROWS = [
    ("police1_signer1_rep1_sentences/sentences0000", "train", "ΕΓΩ(1) ΘΕΛΩ ΠΑΡΑΠΟΝΟ", "Θέλω να κάνω παράπονο.", 12),
    ("police1_signer1_rep1_sentences/sentences0001", "train", "ΠΟΙΟΣ; ΕΝΟΧΛΩ_ΕΣΕΝΑ", "Ποιος σας ενοχλεί;", 7),
    ("police1_signer1_rep1_sentences/sentences0002", "train", "ΣΠΙΤΙ ΕΓΩ(1) ΚΑΤΩ(1) ΜΑΓΑΖΙ", "Κάτω από το σπίτι μου.", 20),
    ("police1_signer1_rep1_sentences/sentences0003", "train", "ΠΡΟΒΛΗΜΑ ΤΙ", "Ποιο είναι το πρόβλημα;", 5),
    ("police1_signer1_rep1_sentences/sentences0004", "train", "ΩΡΑ ΓΙΑ ΗΣΥΧΙΑ ΑΚΟΥΩ ΦΑΣΑΡΙΑ", "Ώρα για ησυχία.", 16),
    ("police1_signer1_rep1_sentences/sentences0005", "train", "ΕΓΩ(1) ΤΙ", "", 9),
    ("police1_signer2_rep1_sentences/sentences0000", "val", "ΕΓΩ(1) ΑΓΝΩΣΤΟ", "Εγώ.", 8),
    ("police1_signer2_rep1_sentences/sentences0001", "test", "ΠΟΙΟΣ; ΘΕΛΩ", "Ποιος θέλει;", 10),
]


def write_tiny_corpus(root: Path, rows=ROWS, missing: tuple[int, ...] = ()) -> Path:
    """Write a corpus folder by hand; rows whose number is in `missing` get no pose file."""
    root.mkdir(parents=True)
    metadata = {"name": "tiny", "id": "tiny", "url": "", "input_language": "gsl", "output_language": "el",
                "input_types": ["pose"], "output_types": ["gloss", "text"]}
    (root / "metadata.json").write_text(json.dumps(metadata, ensure_ascii=False), encoding="utf-8")
    with open(root / "annotations.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "split", "gloss", "text", "n_frames"])
        for sample_id, split, gloss, text, n_frames in rows:
            writer.writerow([sample_id, split, gloss, text, n_frames])

    for number, (sample_id, _, _, _, n_frames) in enumerate(rows):
        if number in missing:
            continue
        pose = np.random.default_rng(number).random((n_frames, 1, holistic.N_POINTS, 3), dtype=np.float32)
        pose[:, 0, :, 0] = number  # x identifies the sample
        pose[:, 0, :, 1] = np.arange(n_frames, dtype=np.float32)[:, None] / 100  # y identifies the frame
        path = root / "poses" / f"{sample_id}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, pose)
    return root


@pytest.fixture
def corpus(tmp_path) -> Corpus:
    return Corpus.open(write_tiny_corpus(tmp_path / "tiny"))


def make_dataset(corpus: Corpus, split: str = "train", **kwargs) -> SignDataset:
    tokenizer = kwargs.pop("tokenizer", None) or fit_tokenizer(corpus, kwargs.get("output_mode", "gloss"))
    transform = kwargs.pop("transform", TransformConfig(sample_rate=3))
    return SignDataset(corpus, split, tokenizer, transform, **kwargs)


def sample_number(item: dict) -> int:
    """The sample number that write_tiny_corpus stored in the x coordinates."""
    return int(item["features"][0, 0])


# ---------------------------------------------------------------- label alignment


def test_missing_poses_keep_labels_aligned(tmp_path):
    corpus = Corpus.open(write_tiny_corpus(tmp_path / "tiny", missing=(1, 3)))
    dataset = make_dataset(corpus)

    assert [s.id for s in dataset.samples] == [ROWS[k][0] for k in (0, 2, 4, 5)]
    assert dataset.dropped["missing_pose"] == [ROWS[1][0], ROWS[3][0]]
    assert len(dataset) == 4
    for index, number in enumerate((0, 2, 4, 5)):
        item = dataset[index]
        tokens = item["tokens"].tolist()

        assert item["id"] == ROWS[number][0]
        assert sample_number(item) == number
        assert item["n_frames"] == ROWS[number][4]
        assert tokens[0] == BOS_ID
        assert tokens[-1] == EOS_ID
        assert dataset.tokenizer.decode(tokens) == ROWS[number][2].split()
        assert dataset.references[index] == ROWS[number][2].split()


def test_missing_poses_logged_with_ids(tmp_path, caplog):
    corpus = Corpus.open(write_tiny_corpus(tmp_path / "tiny", missing=(3,)))
    with caplog.at_level(logging.WARNING, logger="signattention_core.dataset"):
        make_dataset(corpus)

    assert "dropped 1 sample(s) with no pose file" in caplog.text
    assert ROWS[3][0] in caplog.text


def test_long_targets_dropped_before_tokenising(corpus):
    dataset = make_dataset(corpus, max_tokens=3)
    kept_numbers = [0, 1, 3, 5]  # rows 2 and 4 have 4 and 5 glosses

    assert dataset.dropped["too_many_tokens"] == [ROWS[2][0], ROWS[4][0]]
    for index, number in enumerate(kept_numbers):
        item = dataset[index]

        assert sample_number(item) == number
        assert dataset.tokenizer.decode(item["tokens"].tolist()) == ROWS[number][2].split()


def test_unknown_glosses_in_val_become_unk(corpus):
    tokenizer = fit_tokenizer(corpus)
    dataset = make_dataset(corpus, "val", tokenizer=tokenizer)
    item = dataset[0]

    assert item["tokens"].tolist() == [BOS_ID, tokenizer.token_to_id["ΕΓΩ(1)"], UNK_ID, EOS_ID]
    assert dataset.references[0] == ["ΕΓΩ(1)", "ΑΓΝΩΣΤΟ"]


def test_text_mode_splits_punctuation_and_drops_empty(corpus):
    dataset = make_dataset(corpus, output_mode="text")

    assert dataset.dropped["no_tokens"] == [ROWS[5][0]]
    assert dataset.references[1] == ["Ποιος", "σας", "ενοχλεί", ";"]
    assert dataset.tokenizer.decode(dataset[1]["tokens"].tolist()) == ["Ποιος", "σας", "ενοχλεί", ";"]


def test_sample_tokens_gloss_mode(corpus):
    sample = corpus.by_id(ROWS[2][0])

    assert sample_tokens(sample, "gloss") == ["ΣΠΙΤΙ", "ΕΓΩ(1)", "ΚΑΤΩ(1)", "ΜΑΓΑΖΙ"]


def test_invalid_output_mode_rejected(corpus):
    with pytest.raises(ValueError, match="accepted: gloss, text"):
        make_dataset(corpus, output_mode="words", tokenizer=Tokenizer.fit([]))


def test_invalid_split_rejected(corpus):
    with pytest.raises(CorpusError, match="unknown split 'training'"):
        make_dataset(corpus, "training", tokenizer=Tokenizer.fit([]))


def test_fit_tokenizer_uses_train_only(corpus):
    tokenizer = fit_tokenizer(corpus)

    assert "ΑΓΝΩΣΤΟ" not in tokenizer
    assert tokenizer.words[:3] == ["ΕΓΩ(1)", "ΘΕΛΩ", "ΠΑΡΑΠΟΝΟ"]


# ---------------------------------------------------------------- items and frame sampling


def test_item_shapes_and_frame_index(corpus):
    item = make_dataset(corpus)[0]  # 12 frames, every third kept

    assert item["features"].shape == (4, 150)
    assert item["features"].dtype == torch.float32
    assert item["frame_index"].tolist() == [0, 3, 6, 9]
    assert item["frame_index"].dtype == torch.long
    assert torch.allclose(item["features"][:, 1], item["frame_index"].float() / 100)


def test_return_pose_gives_raw_pose(corpus):
    plain = make_dataset(corpus)
    with_pose = make_dataset(corpus, return_pose=True, transform=TransformConfig(sample_rate=3, normalize="shoulders"))

    assert "pose" not in plain[0]
    for index in range(len(with_pose)):
        item = with_pose[index]
        raw = corpus.load_pose(with_pose.samples[index].id)  # (F, 543, 3)
        assert item["pose"].shape == raw.shape
        np.testing.assert_array_equal(item["pose"], raw)  # transforms leave the read array unchanged
        assert item["n_frames"] == raw.shape[0]


def test_training_sampling_changes_with_epoch(corpus):
    dataset = make_dataset(corpus, train=True, seed=3)
    first = dataset[2]["frame_index"].tolist()
    again = dataset[2]["frame_index"].tolist()
    later = []
    for epoch in range(1, 6):
        dataset.set_epoch(epoch)
        later.append(dataset[2]["frame_index"].tolist())

    assert first == again
    assert any(frames != first for frames in later)
    assert all(frame // 3 == window for frames in later for window, frame in enumerate(frames))


def test_evaluation_sampling_ignores_epoch(corpus):
    dataset = make_dataset(corpus, train=False)
    first = dataset[2]["frame_index"].tolist()
    dataset.set_epoch(4)

    assert dataset[2]["frame_index"].tolist() == first
    assert first == list(range(0, 20, 3))


# ---------------------------------------------------------------- collate


def test_collate_pads_with_mask_from_lengths(corpus):
    dataset = make_dataset(corpus)
    items = [dataset[1], dataset[0]]  # 7 frames -> 3 positions, 12 frames -> 4 positions
    # an all-zero real frame must not count as padding
    items[0]["features"][1] = 0
    batch = collate(items)

    assert batch.ids == [ROWS[1][0], ROWS[0][0]]
    assert batch.src.shape == (2, 4, 150)
    assert batch.src_lengths.tolist() == [3, 4]
    assert batch.src_padding_mask.tolist() == [[False, False, False, True], [False, False, False, False]]
    assert batch.frame_index.tolist() == [[0, 3, 6, -1], [0, 3, 6, 9]]
    assert (batch.src[0, 3] == 0).all()
    assert batch.n_frames.tolist() == [7, 12]


def test_collate_pads_targets(corpus):
    dataset = make_dataset(corpus)
    batch = collate([dataset[1], dataset[2]])  # 2 and 4 glosses

    assert batch.tgt.shape == (2, 6)
    assert batch.tgt_lengths.tolist() == [4, 6]
    assert batch.tgt[0, 0] == BOS_ID
    assert batch.tgt[0, 3] == EOS_ID
    assert batch.tgt[0, 4:].tolist() == [PAD_ID, PAD_ID]
    assert batch.tgt[1, 5] == EOS_ID


def test_collate_rejects_empty_and_mixed_widths(corpus):
    dataset = make_dataset(corpus)
    item = dataset[0]
    other = dict(item, features=torch.zeros(2, 10))

    with pytest.raises(ValueError, match="empty list"):
        collate([])
    with pytest.raises(ValueError, match="different feature sizes \\[10, 150\\]"):
        collate([item, other])


def test_batch_to_keeps_values(corpus):
    batch = collate([make_dataset(corpus)[0]])
    moved = batch.to("cpu")

    assert isinstance(moved, Batch)
    assert moved.ids == batch.ids
    assert torch.equal(moved.src, batch.src)
    assert torch.equal(moved.src_padding_mask, batch.src_padding_mask)
    assert len(moved) == 1


# ---------------------------------------------------------------- loaders


def test_loader_shuffle_reproducible(corpus):
    dataset = make_dataset(corpus)
    orders = []
    for _ in range(2):
        loader = make_loader(dataset, batch_size=2, shuffle=True, seed=5)
        orders.append([sample_id for batch in loader for sample_id in batch.ids])

    assert orders[0] == orders[1]
    assert sorted(orders[0]) == sorted(s.id for s in dataset.samples)


def test_loader_without_shuffle_keeps_order(corpus):
    dataset = make_dataset(corpus)
    loader = make_loader(dataset, batch_size=4, shuffle=False, seed=0)
    batches = list(loader)

    assert [len(batch) for batch in batches] == [4, 2]
    assert [i for batch in batches for i in batch.ids] == [s.id for s in dataset.samples]


def test_loader_epoch_reaches_workers(corpus):
    dataset = make_dataset(corpus, train=True, seed=1)
    loader = make_loader(dataset, batch_size=6, shuffle=False, seed=0, num_workers=1)
    by_epoch = {}
    for epoch in (0, 1, 2, 3):
        set_loader_epoch(loader, epoch)
        batch = next(iter(loader))
        dataset.set_epoch(epoch)
        expected = collate([dataset[i] for i in range(len(dataset))])

        assert torch.equal(batch.frame_index, expected.frame_index)
        by_epoch[epoch] = batch.frame_index.tolist()

    assert len({str(frames) for frames in by_epoch.values()}) > 1


def test_distributed_loader_needs_process_group(corpus):
    with pytest.raises(RuntimeError, match="init_process_group"):
        make_loader(make_dataset(corpus), batch_size=2, shuffle=True, seed=0, distributed=True)


def test_loader_rejects_bad_batch_size(corpus):
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        make_loader(make_dataset(corpus), batch_size=0, shuffle=False, seed=0)


def test_distributed_loader_shards_and_reshuffles(corpus, tmp_path):
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        dataset = make_dataset(corpus)
        loader = make_loader(dataset, batch_size=3, shuffle=True, seed=2, distributed=True)
        orders = []
        for epoch in range(4):
            set_loader_epoch(loader, epoch)
            orders.append([sample_id for batch in loader for sample_id in batch.ids])
    finally:
        torch.distributed.destroy_process_group()

    assert isinstance(loader.sampler, torch.utils.data.DistributedSampler)
    assert all(sorted(order) == sorted(s.id for s in dataset.samples) for order in orders)
    assert len({tuple(order) for order in orders}) > 1
    assert dataset.epoch == 3
