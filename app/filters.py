"""Sample filters of the run overview, as plain functions on the samples table.

Gloss search goes through `text.match_key`, so it ignores case, accents and
the final-sigma spelling: `εγω` finds `ΕΓΩ(1)` and `ποιος` finds `ΠΟΙΟΣ;`.
A query of several words finds samples whose glosses contain them as a
contiguous run, each word matching a gloss that contains it.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from signattention_core.text import match_key, split_glosses

# which gloss sequence the gloss search looks in
GLOSS_SOURCES = ("reference", "hypothesis", "either")

EXACT_CHOICES = ("any", "exact", "not exact")


@dataclass(frozen=True)
class SampleFilter:
    """The filters of the sample table; defaults keep every sample."""

    gloss_query: str = ""  # one gloss or a space-separated gloss sequence; empty keeps all
    gloss_source: str = "reference"  # one of GLOSS_SOURCES
    signers: tuple[str, ...] = ()  # keep these signers; empty keeps all
    splits: tuple[str, ...] = ()  # keep these splits; empty keeps all
    length: tuple[int, int] | None = None  # inclusive range of reference glosses
    exact: str = "any"  # one of EXACT_CHOICES
    bleu: tuple[float, float] | None = None  # inclusive range of sentence BLEU (0-100)
    wer: tuple[float, float] | None = None  # inclusive range of word error rate
    metric: str | None = None  # alignment metric column of `metric_values`, None for no range
    metric_range: tuple[float, float] | None = None  # inclusive range of that metric

    def __post_init__(self) -> None:
        if self.gloss_source not in GLOSS_SOURCES:
            raise ValueError(f"gloss_source {self.gloss_source!r} is not one of {GLOSS_SOURCES}")
        if self.exact not in EXACT_CHOICES:
            raise ValueError(f"exact {self.exact!r} is not one of {EXACT_CHOICES}")


def gloss_keys(tokens: Sequence[str]) -> tuple[str, ...]:
    """Return the match keys of a gloss sequence."""
    return tuple(match_key(token) for token in tokens)


def query_keys(query: str) -> tuple[str, ...]:
    """Split a gloss query into match keys of its words."""
    return tuple(match_key(word) for word in split_glosses(query))


def contains_run(keys: Sequence[str], query: Sequence[str]) -> bool:
    """Return True if `query` words match a contiguous run of `keys` (substring per gloss)."""
    if not query:
        return True
    width = len(query)
    for start in range(len(keys) - width + 1):
        if all(word in keys[start + offset] for offset, word in enumerate(query)):
            return True
    return False


def gloss_mask(key_column: pd.Series, query: str) -> np.ndarray:
    """Return a boolean mask of rows whose key tuple contains the query's run of words."""
    words = query_keys(query)
    if not words:
        return np.ones(len(key_column), dtype=bool)
    return np.fromiter((contains_run(keys, words) for keys in key_column), dtype=bool, count=len(key_column))


def apply(samples: pd.DataFrame, chosen: SampleFilter, metric_values: pd.Series | None = None) -> pd.DataFrame:
    """Return the rows of `samples` that pass every filter.

    `samples` needs the columns `reference_keys`, `hypothesis_keys` (tuples
    from `gloss_keys`), `signer`, `split`, `length`, `exact_match`,
    `sentence_bleu` and `wer`. `metric_values` is indexed by `sample_idx`.
    """
    mask = np.ones(len(samples), dtype=bool)
    if chosen.gloss_query.strip():
        in_reference = gloss_mask(samples["reference_keys"], chosen.gloss_query)
        in_hypothesis = gloss_mask(samples["hypothesis_keys"], chosen.gloss_query)
        by_source = {
            "reference": in_reference,
            "hypothesis": in_hypothesis,
            "either": in_reference | in_hypothesis,
        }
        mask &= by_source[chosen.gloss_source]
    if chosen.signers:
        mask &= samples["signer"].isin(chosen.signers).to_numpy()
    if chosen.splits:
        mask &= samples["split"].isin(chosen.splits).to_numpy()
    if chosen.length is not None:
        mask &= samples["length"].between(*chosen.length).to_numpy()
    if chosen.exact != "any":
        mask &= (samples["exact_match"] == (chosen.exact == "exact")).to_numpy()
    if chosen.bleu is not None:
        mask &= _between(samples["sentence_bleu"], chosen.bleu)
    if chosen.wer is not None:
        mask &= _between(samples["wer"], chosen.wer)
    if chosen.metric and chosen.metric_range is not None and metric_values is not None:
        values = samples["sample_idx"].map(metric_values)
        mask &= _between(values, chosen.metric_range)
    return samples[mask]


# scores computed in floating point land a few ulps outside the slider's ends (BLEU 100.00000000000004)
RANGE_TOLERANCE = 1e-9


def _between(values: pd.Series, bounds: tuple[float, float]) -> np.ndarray:
    """Return where values lie in the inclusive range, with a float tolerance at both ends."""
    low, high = bounds
    return values.between(low - RANGE_TOLERANCE, high + RANGE_TOLERANCE).to_numpy()
