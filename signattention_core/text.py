"""Unicode handling for glosses and translations.

Greek glosses such as `ΕΓΩ(1)` or `ΠΟΙΟΣ;` arrive with mixed normalisation
forms, no-break spaces and stray spacing. Stored strings go through
`normalize_text`; searching and sorting go through `match_key`, which also
ignores case, accents and the final-sigma spelling.
"""

import re
import unicodedata

# every Unicode space separator plus tabs and line breaks
_SPACE_RUN = re.compile(r"[\s\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")

# zero-width characters that editors and exports leave inside words
_ZERO_WIDTH = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff]")


def normalize_text(value: str) -> str:
    """Normalise a gloss or translation string for storage.

    Applies Unicode NFC, removes zero-width characters, turns every kind of
    space (no-break spaces included) into a plain space, collapses runs of
    spaces and strips both ends. Case and accents are kept.
    """
    value = unicodedata.normalize("NFC", value)
    value = _ZERO_WIDTH.sub("", value)
    return _SPACE_RUN.sub(" ", value).strip()


def match_key(value: str) -> str:
    """Return a key for case- and accent-insensitive matching and sorting.

    `ΠΟΙΟΣ;`, `ποιος;` and `ποιός;` share one key: combining marks are
    dropped after NFD decomposition, the text is case-folded, and final
    sigma `ς` becomes `σ`.
    """
    decomposed = unicodedata.normalize("NFD", normalize_text(value))
    without_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = without_marks.casefold().replace("ς", "σ")
    return unicodedata.normalize("NFC", folded)


def split_glosses(value: str) -> list[str]:
    """Split a gloss sequence into normalised gloss tokens."""
    normalized = normalize_text(value)
    return normalized.split(" ") if normalized else []
