"""Normalisation and matching of Greek glosses and translations."""

import unicodedata

import pytest

from signattention_core.holistic import (
    COMPONENTS,
    N_POINTS,
    canonical_component,
    component_indices,
    point_index,
)
from signattention_core.text import match_key, normalize_text, split_glosses


def test_normalize_composes_nfd_input():
    decomposed = unicodedata.normalize("NFD", "ποιός")
    assert decomposed != "ποιός"
    assert normalize_text(decomposed) == "ποιός"


def test_normalize_collapses_no_break_spaces():
    assert normalize_text("\u00a0γεια  σας\u202fπώς \t") == "γεια σας πώς"


def test_normalize_removes_zero_width_characters():
    assert normalize_text("ΕΓΩ\u200b(1)") == "ΕΓΩ(1)"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("ΠΟΙΟΣ;", "ποιος;"),
        ("ΠΟΙΟΣ;", "ποιός;"),
        ("ΕΓΩ(1)", "εγώ(1)"),
        ("ΕΝΟΧΛΩ_ΕΣΕΝΑ", "ενοχλώ_εσένα"),
    ],
)
def test_match_key_ignores_case_accents_final_sigma(left, right):
    assert match_key(left) == match_key(right)


def test_match_key_keeps_distinct_glosses_apart():
    assert match_key("ΕΓΩ(1)") != match_key("ΕΓΩ(2)")


def test_split_glosses_handles_stray_spaces():
    assert split_glosses(" ΓΕΙΑ\u00a0 ΕΓΩ(1)  ΜΠΟΡΩ ") == ["ΓΕΙΑ", "ΕΓΩ(1)", "ΜΠΟΡΩ"]
    assert split_glosses("  ") == []


def test_holistic_layout_covers_543_points():
    covered = sorted(i for part in COMPONENTS.values() for i in range(part.start, part.stop))
    assert covered == list(range(N_POINTS))


def test_point_index_by_component_and_name():
    assert point_index("body", "LEFT_SHOULDER") == 11
    assert point_index("left_hand", "WRIST") == 501
    assert point_index("rhand", "PINKY_TIP") == 542
    assert point_index("face", "467") == 500
    assert point_index("face", "468") is None


def test_study_component_names_map_to_ours():
    assert canonical_component("lhand") == "left_hand"
    assert len(component_indices(["body", "lhand", "rhand"])) == 75
    with pytest.raises(ValueError, match="accepted: .*lhand"):
        canonical_component("torso")
