"""Tests for signattention_core.tokenizer: ids, round trips and Greek glosses."""

import json

import pytest

from signattention_core.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    Tokenizer,
    split_text,
)

GREEK_SEQUENCES = [
    ["ΕΓΩ(1)", "ΘΕΛΩ", "ΠΑΡΑΠΟΝΟ", "ΚΑΤΑΓΓΕΛΙΑ"],
    ["ΠΟΙΟΣ;", "ΕΝΟΧΛΩ_ΕΣΕΝΑ"],
    ["ΣΠΙΤΙ", "ΕΓΩ(1)", "ΚΑΤΩ(1)", "ΜΑΓΑΖΙ"],
]


def test_special_ids_fixed():
    tokenizer = Tokenizer.fit([])

    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert tokenizer.tokens == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert len(tokenizer) == 4
    assert (Tokenizer.PAD, Tokenizer.UNK, Tokenizer.BOS, Tokenizer.EOS) == (0, 1, 2, 3)


def test_fit_orders_by_first_appearance():
    tokenizer = Tokenizer.fit(GREEK_SEQUENCES)

    assert tokenizer.words == [
        "ΕΓΩ(1)", "ΘΕΛΩ", "ΠΑΡΑΠΟΝΟ", "ΚΑΤΑΓΓΕΛΙΑ", "ΠΟΙΟΣ;", "ΕΝΟΧΛΩ_ΕΣΕΝΑ", "ΣΠΙΤΙ", "ΚΑΤΩ(1)", "ΜΑΓΑΖΙ",
    ]
    assert tokenizer.token_to_id["ΕΓΩ(1)"] == 4
    assert tokenizer.token_to_id["ΜΑΓΑΖΙ"] == 12


def test_encode_decode_greek_round_trip():
    tokenizer = Tokenizer.fit(GREEK_SEQUENCES)
    for sequence in GREEK_SEQUENCES:
        ids = tokenizer.encode(sequence)

        assert BOS_ID not in ids
        assert EOS_ID not in ids
        assert tokenizer.decode(ids) == sequence


def test_unknown_words_map_to_unk():
    tokenizer = Tokenizer.fit(GREEK_SEQUENCES)
    ids = tokenizer.encode(["ΕΓΩ(1)", "ΑΓΝΩΣΤΟ", "ΚΑΤΩ(2)"])

    assert ids == [4, UNK_ID, UNK_ID]
    assert tokenizer.decode(ids) == ["ΕΓΩ(1)", "<unk>", "<unk>"]


def test_decode_stops_at_eos_and_drops_pad_bos():
    tokenizer = Tokenizer.fit(GREEK_SEQUENCES)

    assert tokenizer.decode([BOS_ID, 4, 5, EOS_ID, 6, PAD_ID]) == ["ΕΓΩ(1)", "ΘΕΛΩ"]
    assert tokenizer.decode([BOS_ID, 8, PAD_ID, PAD_ID]) == ["ΠΟΙΟΣ;"]
    assert tokenizer.decode([EOS_ID, 4]) == []


def test_decode_accepts_tensor_like_ids():
    torch = pytest.importorskip("torch")
    tokenizer = Tokenizer.fit(GREEK_SEQUENCES)

    assert tokenizer.decode(torch.tensor([2, 4, 3])) == ["ΕΓΩ(1)"]


def test_decode_rejects_out_of_range_id():
    tokenizer = Tokenizer.fit(GREEK_SEQUENCES)
    with pytest.raises(ValueError, match="token id 99 is outside the vocabulary of 13 tokens"):
        tokenizer.decode([4, 99])


def test_save_load_round_trip_keeps_greek(tmp_path):
    tokenizer = Tokenizer.fit(GREEK_SEQUENCES)
    path = tmp_path / "vocab.json"
    tokenizer.save(path)
    loaded = Tokenizer.load(path)
    raw = path.read_text(encoding="utf-8")

    assert loaded == tokenizer
    assert loaded.tokens == tokenizer.tokens
    assert "ΠΟΙΟΣ;" in raw  # written as UTF-8, not \u escapes
    assert json.loads(raw) == {"tokens": tokenizer.tokens}
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]
    for sequence in GREEK_SEQUENCES:
        assert loaded.decode(loaded.encode(sequence)) == sequence


def test_save_replaces_existing_file(tmp_path):
    path = tmp_path / "vocab.json"
    Tokenizer.fit([["A"]]).save(path)
    Tokenizer.fit([["B", "C"]]).save(path)

    assert Tokenizer.load(path).words == ["B", "C"]


def test_dict_round_trip():
    tokenizer = Tokenizer.fit(GREEK_SEQUENCES)

    assert Tokenizer.from_dict(tokenizer.to_dict()) == tokenizer


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not a valid vocabulary file"),
        ('{"words": []}', 'a "tokens" list'),
        ('{"tokens": ["A", "B"]}', "must start with"),
        ('{"tokens": ["<pad>", "<unk>", "<bos>", "<eos>", "A", "A"]}', "repeats tokens \\['A'\\]"),
        ('{"tokens": ["<pad>", "<unk>", "<bos>", "<eos>", ""]}', "invalid tokens"),
    ],
)
def test_load_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "vocab.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as error:
        Tokenizer.load(path)

    assert str(path) in str(error.value)


def test_fit_rejects_plain_string():
    with pytest.raises(ValueError, match="pass a list of tokens"):
        Tokenizer.fit(["ΕΓΩ(1) ΘΕΛΩ"])


def test_fit_rejects_special_token_word():
    with pytest.raises(ValueError, match="special token '<eos>'"):
        Tokenizer.fit([["A", "<eos>"]])


def test_from_token_to_id_renames_specials():
    mapping = {"[PAD]": 0, "[UNK]": 1, "[BOS]": 2, "[EOS]": 3, "ΕΓΩ(1)": 4, "ΠΟΙΟΣ;": 5}
    tokenizer = Tokenizer.from_token_to_id(mapping)

    assert tokenizer.tokens == [*SPECIAL_TOKENS, "ΕΓΩ(1)", "ΠΟΙΟΣ;"]


def test_from_token_to_id_rejects_gaps():
    with pytest.raises(ValueError, match="no gaps"):
        Tokenizer.from_token_to_id({"a": 0, "b": 1, "c": 2, "d": 3, "e": 5})


def test_split_text_separates_punctuation():
    assert split_text("Πού μένεις;") == ["Πού", "μένεις", ";"]
    assert split_text("Ναι, είμαι εδώ.") == ["Ναι", ",", "είμαι", "εδώ", "."]
    assert split_text("Don't panic: it's Jean-Luc!") == ["Don't", "panic", ":", "it's", "Jean-Luc", "!"]
    assert split_text("  ") == []


def test_real_gsl_glosses_round_trip(real_data, tmp_path):
    # split files hold `path|glosses`, one sample per line
    lines = (real_data / "gsl-annotations" / "gsl_split_SI_train.csv").read_text(encoding="utf-8").splitlines()
    sequences = [line.split("|", 1)[1].split() for line in lines if "|" in line]
    tokenizer = Tokenizer.fit(sequences)
    path = tmp_path / "vocab.json"
    tokenizer.save(path)
    loaded = Tokenizer.load(path)

    assert len(sequences) > 8000
    assert 250 < len(loaded.words) < 400
    assert loaded.tokens[4] == sequences[0][0]
    for sequence in sequences:
        assert loaded.decode(loaded.encode(sequence)) == sequence


def test_nfc_and_nfd_glosses_share_one_token():
    import unicodedata

    composed = unicodedata.normalize("NFC", "ΠΟΙΌΣ;")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    tokenizer = Tokenizer.fit([[composed], [decomposed]])
    assert tokenizer.words == [composed]
    assert tokenizer.encode([decomposed]) == tokenizer.encode([composed]) == [4]
    assert Tokenizer([*SPECIAL_TOKENS, decomposed]).tokens[4] == composed


def test_greek_question_mark_is_the_semicolon_token():
    tokenizer = Tokenizer.fit([["ΠΟΙΟΣ;"]])
    assert tokenizer.encode(["ΠΟΙΟΣ\u037e"]) == [4]
    assert split_text("Πού μένεις\u037e") == ["Πού", "μένεις", ";"]


def test_split_text_keeps_decomposed_accents_in_words():
    import unicodedata

    assert split_text(unicodedata.normalize("NFD", "Πού μένεις;")) == ["Πού", "μένεις", ";"]
    assert split_text("ποϊ\u0301ν") == ["ποΐν"]
