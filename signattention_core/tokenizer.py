"""Word-level tokenizer for gloss and text targets.

Ids 0-3 are the special tokens PAD, UNK, BOS and EOS. Words follow in order
of first appearance in the training sequences, as in the study's tokenizer.
Words are compared in Unicode NFC, so composed and decomposed spellings of
one Greek gloss (and the Greek question mark U+037E and `;`) are one token.
The vocabulary is saved as UTF-8 JSON `{"tokens": [...]}`, specials included,
so that the id of a token is its position in the list.
"""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS)

# a word (letters, digits, underscores and combining accents, with inner apostrophes or hyphens)
# or one punctuation mark
_WORD_CHAR = r"[\w\u0300-\u036f]"
_TEXT_TOKEN = re.compile(rf"{_WORD_CHAR}+(?:['’\-]{_WORD_CHAR}+)*|[^\w\s\u0300-\u036f]")


def _nfc(token: object) -> object:
    # non-strings pass through, so that the constructor can name them as invalid tokens
    return unicodedata.normalize("NFC", token) if isinstance(token, str) else token


def split_text(text: str) -> list[str]:
    """Split a translation into word and punctuation tokens, keeping case.

    Words keep inner apostrophes and hyphens ("don't", "Jean-Luc"). Every
    other punctuation mark is a token of its own, so "Πού μένεις;" gives
    ["Πού", "μένεις", ";"]. The text is put in NFC first.
    """
    return _TEXT_TOKEN.findall(unicodedata.normalize("NFC", text))


class Tokenizer:
    """Word-level vocabulary mapping words to ids and back, with PAD, UNK, BOS and EOS at ids 0-3."""

    PAD = PAD_ID
    UNK = UNK_ID
    BOS = BOS_ID
    EOS = EOS_ID

    def __init__(self, tokens: Sequence[str]):
        """Create a tokenizer from its full token list, specials first; tokens are stored in NFC.

        Raises:
            ValueError: if the list does not start with the four special
                tokens, repeats a token, or contains an empty or non-string token.
        """
        tokens = [_nfc(token) for token in tokens]
        if tuple(tokens[:4]) != SPECIAL_TOKENS:
            raise ValueError(f"vocabulary must start with {list(SPECIAL_TOKENS)}, got {tokens[:4]}")
        bad = [token for token in tokens if not isinstance(token, str) or not token or token != token.strip()]
        if bad:
            raise ValueError(f"vocabulary contains invalid tokens {bad[:5]}; tokens must be non-empty "
                             "strings without surrounding spaces")
        repeated = [token for token, count in Counter(tokens).items() if count > 1]
        if repeated:
            raise ValueError(f"vocabulary repeats tokens {repeated[:5]}; each token must appear once")

        self.tokens: list[str] = tokens
        self.token_to_id: dict[str, int] = {token: index for index, token in enumerate(tokens)}

    @classmethod
    def fit(cls, sequences: Iterable[Sequence[str]]) -> Tokenizer:
        """Build the vocabulary from token sequences, words in order of first appearance.

        Raises:
            ValueError: if a sequence is a plain string (split it first) or a
                word equals a special token or is empty.
        """
        tokens = list(SPECIAL_TOKENS)
        seen = set(tokens)
        for number, sequence in enumerate(sequences):
            if isinstance(sequence, str):
                raise ValueError(f"sequence {number} is the string {sequence!r}; pass a list of tokens")
            for word in map(_nfc, sequence):
                if word in SPECIAL_TOKENS:
                    raise ValueError(f"sequence {number} contains the special token {word!r} as a word; "
                                     "rename it in the corpus")
                if word not in seen:
                    seen.add(word)
                    tokens.append(word)
        return cls(tokens)

    @classmethod
    def from_token_to_id(cls, mapping: Mapping[str, int]) -> Tokenizer:
        """Build a tokenizer from a word -> id mapping such as the study's `token_to_idx`.

        Ids must be exactly 0..V-1. Whatever strings sit at ids 0-3 are taken
        as PAD, UNK, BOS and EOS and renamed to this module's special tokens.
        """
        ids = sorted(mapping.values())
        if ids != list(range(len(ids))) or len(ids) < 4:
            raise ValueError(f"token ids must be 0..V-1 with V >= 4 and no gaps, got {ids[:10]}...")
        by_id = {index: token for token, index in mapping.items()}
        renamed = [by_id[index] for index in range(4)]
        if tuple(renamed) != SPECIAL_TOKENS:
            logger.info("renamed special tokens %s to %s", renamed, list(SPECIAL_TOKENS))
        return cls([*SPECIAL_TOKENS, *(by_id[index] for index in range(4, len(ids)))])

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return _nfc(token) in self.token_to_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.tokens == other.tokens

    def __repr__(self) -> str:
        return f"Tokenizer({len(self)} tokens)"

    @property
    def words(self) -> list[str]:
        """The vocabulary without the special tokens."""
        return self.tokens[len(SPECIAL_TOKENS):]

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Map tokens (compared in NFC) to ids, unknown ones to UNK, without adding BOS or EOS."""
        if isinstance(tokens, str):
            raise ValueError(f"encode got the string {tokens!r}; pass a list of tokens")
        return [self.token_to_id.get(_nfc(token), UNK_ID) for token in tokens]

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Map ids to tokens, stopping at the first EOS and dropping PAD and BOS.

        UNK decodes to "<unk>".

        Raises:
            ValueError: for an id outside 0..V-1.
        """
        out: list[str] = []
        for value in ids:
            index = int(value)
            if index == EOS_ID:
                break
            if index in (PAD_ID, BOS_ID):
                continue
            if not 0 <= index < len(self.tokens):
                raise ValueError(f"token id {index} is outside the vocabulary of {len(self.tokens)} tokens")
            out.append(self.tokens[index])
        return out

    def to_dict(self) -> dict:
        """Return the JSON-ready form `{"tokens": [...]}`."""
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Tokenizer:
        """Rebuild a tokenizer from `to_dict()` output."""
        if not isinstance(data, Mapping) or not isinstance(data.get("tokens"), list):
            raise ValueError('vocabulary must be a JSON object with a "tokens" list')
        return cls(data["tokens"])

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as UTF-8 JSON, through a temporary file renamed into place."""
        path = Path(path)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(self.to_dict(), handle, ensure_ascii=False, indent=1)
                handle.write("\n")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Read a vocabulary written by `save`.

        Raises:
            ValueError: naming the file when it is not valid JSON or not a vocabulary.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls.from_dict(data)
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{path} is not a valid vocabulary file: {exc}; recreate it with Tokenizer.save") from exc
