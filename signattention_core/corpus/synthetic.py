"""Synthetic Greek Sign Language corpus built from a kinematic signer model.

The demo corpus has the same layout as a real one (see `layout`), so every
stage of the product can run without the GSL recordings. It is made from a
model of the MediaPipe Holistic skeleton, not from noise:

- Each gloss is a sign with a handshape (21-point hand configuration), a hand
  orientation, a location on the body, a movement path and one or two hands.
  A gloss always maps to the same sign, whatever the corpus seed.
- Sentences of 1 to 8 glosses come from a small grammar of service dialogues
  (police, hospital, pharmacy, bank) with Greek gloss names and a Greek
  translation.
- Signers differ in body proportions, position in the frame, speed, movement
  amplitude and handedness. Every sentence is performed by every signer
  several times, with small variations between repetitions.
- Transitions between signs are interpolated, and elbows come from two-link
  inverse kinematics, so arm lengths stay constant.
- Hand detections drop out (NaN) in short runs, as MediaPipe's do. They drop
  out more often when the hand moves fast, is near the face or rests at the
  bottom edge of the frame.

`annotations.csv` records the gold frame span [start, end) of every gloss.
Generation is deterministic: the same seed and size give byte-identical files.

Geometry is computed in pixels of a virtual 848x480 camera at 30 fps, the
GSL recording format. It is written in MediaPipe's conventions: x and y are
divided by the frame width and height. z is relative to the hips for the body,
to the wrist for a hand and to the head centre for the face, and is divided by
the width.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from signattention_core import holistic
from signattention_core.corpus.layout import Sample, write_corpus

logger = logging.getLogger(__name__)

FPS = 30.0
FRAME_WIDTH = 848  # pixels of the virtual camera, as the GSL recordings
FRAME_HEIGHT = 480

# the held-out signer of the signer-independent split, as GSL holds out signer 3
HELDOUT_SIGNER = "signer3"

GENERATOR_VERSION = 1


# ---------------------------------------------------------------- sizes


@dataclass(frozen=True)
class DemoSize:
    """How many signers, sentences and repetitions a demo corpus has."""

    n_signers: int  # signers, named signer1..signerN; signer3 is held out for val and test
    n_sentences: int  # distinct sentences drawn from the grammar
    repetitions: tuple[int, int]  # inclusive range of repetitions per signer and sentence
    val_repetitions: int  # the held-out signer's first repetitions that form val; later ones form test
    duration_scale: float  # factor on every sign, transition and rest duration


DEMO_SIZES: dict[str, DemoSize] = {
    # about 1,600 samples of about 100 frames: GSL-like lengths, still quick to train.
    # NOTE: it takes about 1.1 GB on disk, 86% of it face points that the study's model does not read.
    "default": DemoSize(n_signers=7, n_sentences=54, repetitions=(3, 5), val_repetitions=2, duration_scale=1.0),
    # for tests: 72 samples of about 50 frames
    "small": DemoSize(n_signers=3, n_sentences=12, repetitions=(2, 2), val_repetitions=1, duration_scale=0.5),
}


def demo_size(size: str | DemoSize) -> DemoSize:
    """Return the DemoSize for a preset name (or pass a DemoSize through).

    Raises:
        ValueError: if the name is unknown or the size cannot hold a signer-independent split.
    """
    if isinstance(size, DemoSize):
        preset = size
    else:
        try:
            preset = DEMO_SIZES[size]
        except KeyError:
            raise ValueError(f"unknown demo corpus size {size!r}; accepted: {', '.join(DEMO_SIZES)}") from None
    heldout = int(HELDOUT_SIGNER.removeprefix("signer"))
    low, high = preset.repetitions
    if preset.n_signers < heldout:
        raise ValueError(f"demo size has {preset.n_signers} signers; at least {heldout} are needed "
                         f"because {HELDOUT_SIGNER} is held out for val and test")
    if not 1 <= low <= high:
        raise ValueError(f"demo size repetitions {preset.repetitions} is not a range (min, max) with 1 <= min <= max")
    if not 1 <= preset.val_repetitions < high:
        raise ValueError(f"demo size val_repetitions {preset.val_repetitions} must be at least 1 and below "
                         f"the maximum repetitions {high}, so that test keeps some")
    if preset.n_sentences < 1 or preset.duration_scale <= 0:
        raise ValueError("demo size needs n_sentences >= 1 and a positive duration_scale")
    return preset


# ---------------------------------------------------------------- handshapes

# Handshape parameters are 18 angles in degrees. The first five belong to the
# thumb: abduction (away from the index, in the palm plane), opposition
# (towards the palm side) and flexion at CMC, MCP and IP. Then come flexion at
# MCP, PIP and DIP for the index, middle, ring and little finger, and last the
# finger spread.
N_HAND_PARAMETERS = 18
_STRAIGHT = (0.0, 0.0, 0.0)
_CURLED = (85.0, 100.0, 60.0)
_THUMB_ACROSS = (25.0, 60.0, 25.0, 40.0, 30.0)


def _handshape(thumb: tuple, fingers: Sequence[tuple], spread: float) -> np.ndarray:
    return np.array([*thumb, *itertools.chain.from_iterable(fingers), spread], dtype=np.float64)


HANDSHAPES: dict[str, np.ndarray] = {
    "flat": _handshape((10, 5, 0, 10, 10), [_STRAIGHT] * 4, 2),
    "open": _handshape((55, 0, 0, 0, 0), [_STRAIGHT] * 4, 14),
    "fist": _handshape(_THUMB_ACROSS, [_CURLED] * 4, 0),
    "fist_thumb_side": _handshape((5, 0, 0, 0, 0), [_CURLED] * 4, 0),
    "index": _handshape(_THUMB_ACROSS, [_STRAIGHT, _CURLED, _CURLED, _CURLED], 0),
    "v": _handshape(_THUMB_ACROSS, [_STRAIGHT, _STRAIGHT, _CURLED, _CURLED], 12),
    "w": _handshape(_THUMB_ACROSS, [_STRAIGHT, _STRAIGHT, _STRAIGHT, _CURLED], 10),
    "c": _handshape((45, 40, 10, 20, 15), [(35, 40, 25)] * 4, 3),
    "o": _handshape((35, 70, 15, 30, 30), [(55, 70, 40)] * 4, 0),
    "y": _handshape((70, 0, 0, 0, 0), [_CURLED, _CURLED, _CURLED, _STRAIGHT], 8),
    "l": _handshape((80, 0, 0, 0, 0), [_STRAIGHT, _CURLED, _CURLED, _CURLED], 0),
    "claw": _handshape((45, 30, 10, 50, 40), [(10, 80, 60)] * 4, 12),
    "bent": _handshape((10, 5, 0, 10, 10), [(80, 0, 0)] * 4, 0),
    "pinch": _handshape((35, 65, 15, 30, 30), [(50, 60, 40), _STRAIGHT, _STRAIGHT, _STRAIGHT], 10),
    # the idle hand between signs; no sign uses it
    "relaxed": _handshape((25, 15, 10, 15, 10), [(20, 30, 20)] * 4, 6),
}
SIGN_HANDSHAPES: tuple[str, ...] = tuple(name for name in HANDSHAPES if name != "relaxed")

# Hand geometry in units of the hand length (wrist to the tip of the straight
# middle finger). Local axes: a towards the thumb side across the palm, b from
# the wrist towards the fingers, c out of the palm (the side the palm faces).
_FINGER_BASES = np.array([[0.11, 0.46, 0.0], [0.03, 0.48, 0.0], [-0.05, 0.46, 0.0], [-0.12, 0.41, 0.0]])
_FINGER_SEGMENTS = np.array([[0.23, 0.14, 0.10], [0.25, 0.15, 0.11], [0.23, 0.14, 0.10], [0.18, 0.11, 0.09]])
_FINGER_SPREAD_SHARE = np.array([1.0, 0.3, -0.3, -1.0])  # share of the spread angle, positive towards the thumb
_THUMB_BASE = np.array([0.11, 0.10, 0.02])
_THUMB_SEGMENTS = np.array([0.25, 0.17, 0.14])
_HAND_CENTRE = 0.45  # the hand centre lies this far from the wrist along the finger direction


# ---------------------------------------------------------------- orientations, locations, movements

# Signer frame: l points towards the dominant side, y down, z away from the
# camera, all in pixels. Orientations give the finger direction and the palm
# normal in that frame; both are orthonormalised before use.
ORIENTATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "up_forward": ((0, -1, 0), (0, 0, -1)),  # fingers up, palm towards the camera
    "up_medial": ((0, -1, 0), (-1, 0, 0)),  # fingers up, palm towards the midline
    "up_back": ((0, -1, 0), (0, 0, 1)),  # fingers up, palm towards the signer
    "medial_down": ((-1, 0, 0), (0, 1, 0)),  # fingers across the body, palm down
    "medial_up": ((-1, 0, 0), (0, -1, 0)),  # fingers across the body, palm up
    "medial_back": ((-1, 0, 0), (0, 0, 1)),  # fingers across the body, palm towards the signer
    "forward_down": ((0, 0.3, -1), (0, 1, 0.3)),  # fingers towards the camera, palm down
    "forward_medial": ((0, 0, -1), (-1, 0, 0)),  # fingers towards the camera, palm towards the midline
    "diagonal": ((-0.7, -0.7, 0), (0, 0, -1)),  # fingers up and across, palm towards the camera
    "down_back": ((0, 1, 0), (0, 0, 1)),  # fingers down, palm towards the signer
    "point_in": ((-0.3, 0.3, 1), (0, 1, 0)),  # fingers towards the signer's chest
    "out_down": ((1, 0.2, -0.3), (0, 1, 0)),  # fingers towards the dominant side, palm down
}
# orientations for signs derived from their gloss; the last two only suit the written-out signs
SIGN_ORIENTATIONS: tuple[str, ...] = tuple(name for name in ORIENTATIONS if name not in ("point_in", "out_down"))

# where the hand centre goes; computed per signer by `SignerProfile.location`
LOCATIONS: tuple[str, ...] = (
    "forehead", "temple", "nose", "mouth", "chin", "cheek", "ear", "neck", "chest", "chest_nd",
    "shoulder", "shoulder_nd", "stomach", "neutral", "neutral_high", "neutral_side", "neutral_low",
    "neutral_centre",
)
# locations on the midline, where two hands of a symmetric sign are held apart
_MIDLINE_LOCATIONS = frozenset({"forehead", "nose", "mouth", "chin", "neck", "chest", "stomach", "neutral_centre"})

MOVEMENTS: tuple[str, ...] = (
    "hold", "tap", "nod", "line", "arc", "shake", "twist", "wiggle", "circle", "zigzag",
)
# movements whose direction changes what the path looks like
_DIRECTED_MOVEMENTS = frozenset({"line", "arc", "shake", "wiggle", "circle", "zigzag"})
# periodic movements: the second hand of an alternating sign runs half a period behind
_PERIODIC_MOVEMENTS = frozenset({"tap", "nod", "shake", "twist", "wiggle", "circle", "zigzag"})
# base duration of a sign at speed 1, in frames at 30 fps
_MOVEMENT_FRAMES: dict[str, int] = {
    "hold": 12, "tap": 14, "nod": 14, "line": 14, "arc": 16, "shake": 16, "twist": 16,
    "wiggle": 18, "circle": 18, "zigzag": 18,
}

HAND_ARRANGEMENTS: tuple[str, ...] = ("one_hand", "symmetric", "alternating", "base")


@dataclass(frozen=True)
class SignDefinition:
    """The phonological parameters of one sign, in the dominant hand's terms."""

    gloss: str  # the gloss this sign realises
    hands: str  # "one_hand", "symmetric" (mirrored), "alternating" (mirrored, half a period apart) or "base"
    handshape: str  # key of HANDSHAPES at the start of the sign
    end_handshape: str  # key of HANDSHAPES at the end; equal to handshape when the shape does not change
    orientation: str  # key of ORIENTATIONS
    location: str  # key of LOCATIONS, or "base" (on the other hand) when hands is "base"
    movement: str  # one of MOVEMENTS
    direction: float  # degrees in the frontal plane: 0 towards the dominant side, 90 up
    size: float  # movement size, in shoulder half-widths
    base_handshape: str  # handshape of the non-dominant hand when hands is "base", else ""
    frames: int  # duration at signer speed 1, in frames at 30 fps

    def differences(self, other: SignDefinition) -> int:
        """Count the parameters in which two signs differ (hands, handshape, orientation, location, movement)."""
        count = int(self.hands != other.hands)
        count += int((self.handshape, self.end_handshape) != (other.handshape, other.end_handshape))
        count += int(self.orientation != other.orientation)
        count += int(self.location != other.location)
        if self.movement != other.movement:
            count += 1
        elif self.movement in _DIRECTED_MOVEMENTS:
            gap = abs((self.direction - other.direction + 180.0) % 360.0 - 180.0)
            count += int(gap >= 45.0)
        return count


# Signs with an iconic form, written out; the rest are derived from the gloss name.
_HANDMADE_SIGNS: dict[str, dict] = {
    # index finger taps the signer's own chest
    "ΕΓΩ(1)": dict(hands="one_hand", handshape="index", orientation="point_in", location="chest", movement="tap"),
    # index finger pushes towards the addressee
    "ΕΣΥ": dict(hands="one_hand", handshape="index", orientation="forward_down", location="neutral_high", movement="hold"),
    # index finger points to the side, at a third person
    "ΑΥΤΟΣ": dict(hands="one_hand", handshape="index", orientation="out_down", location="neutral_side", movement="line",
                  direction=0.0, size=0.5),
    # fist nods at shoulder height
    "ΝΑΙ": dict(hands="one_hand", handshape="fist", orientation="up_forward", location="neutral_high", movement="nod"),
    # raised index finger wags from side to side
    "ΟΧΙ": dict(hands="one_hand", handshape="index", orientation="up_forward", location="neutral_high", movement="shake",
                direction=0.0),
    # flat hand moves off the forehead, as a salute
    "ΓΕΙΑ": dict(hands="one_hand", handshape="flat", orientation="up_forward", location="forehead", movement="line",
                 direction=20.0, size=1.0),
    # flat hand moves from the chin forwards and down
    "ΕΥΧΑΡΙΣΤΩ": dict(hands="one_hand", handshape="flat", orientation="up_back", location="chin", movement="line",
                      direction=-60.0, size=1.0),
    # both open hands, palms up, shake
    "ΤΙ;": dict(hands="symmetric", handshape="open", orientation="medial_up", location="neutral", movement="shake",
                direction=0.0),
    # index finger circles in front of the body
    "ΠΟΥ;": dict(hands="one_hand", handshape="index", orientation="up_medial", location="neutral", movement="circle",
                 direction=90.0),
    # both index fingers twist in front of the body
    "ΠΟΝΑΩ": dict(hands="symmetric", handshape="index", orientation="medial_back", location="neutral_centre",
                  movement="twist"),
    # thumb and fingers rub, as counting money
    "ΛΕΦΤΑ": dict(hands="one_hand", handshape="pinch", orientation="up_forward", location="neutral", movement="wiggle",
                  direction=0.0),
    # two fingers tap the other wrist, as taking a pulse
    "ΓΙΑΤΡΟΣ": dict(hands="base", handshape="v", orientation="medial_down", location="base", movement="tap",
                    base_handshape="fist"),
}


def _gloss_rng(gloss: str, salt: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{gloss}#{salt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def sign_definition(gloss: str, salt: int = 0) -> SignDefinition:
    """Derive a sign from the gloss name alone, so a gloss is the same sign in every corpus.

    Glosses with an iconic form (ΕΓΩ(1), ΕΣΥ, ΝΑΙ, ...) use a written-out
    definition. Others draw their parameters from a hash of `gloss` and
    `salt`; `LEXICON` raises `salt` until a sign differs enough from the
    signs before it.
    """
    rng = _gloss_rng(gloss, salt)
    handmade = _HANDMADE_SIGNS.get(gloss)
    if handmade is not None:
        fields = {"direction": 0.0, "size": 0.8, "base_handshape": "", **handmade}
        fields.setdefault("end_handshape", fields["handshape"])
        extra = 0
    else:
        hands = str(rng.choice(HAND_ARRANGEMENTS, p=[0.6, 0.15, 0.1, 0.15]))
        handshape = str(rng.choice(SIGN_HANDSHAPES))
        end_handshape = str(rng.choice(SIGN_HANDSHAPES)) if rng.random() < 0.25 else handshape
        movement = str(rng.choice(MOVEMENTS))
        fields = dict(
            hands=hands,
            handshape=handshape,
            end_handshape=end_handshape,
            orientation=str(rng.choice(SIGN_ORIENTATIONS)),
            location="base" if hands == "base" else str(rng.choice(LOCATIONS)),
            movement=movement,
            direction=float(rng.integers(0, 8) * 45.0),
            size=float(np.round(rng.uniform(0.6, 1.2), 2)),
            base_handshape=str(rng.choice(("flat", "fist", "c", "index"))) if hands == "base" else "",
        )
        extra = int(rng.integers(0, 4))
    frames = _MOVEMENT_FRAMES[fields["movement"]] + extra + int(fields["hands"] != "one_hand")
    return SignDefinition(gloss=gloss, frames=frames, **fields)


# ---------------------------------------------------------------- grammar

SCENARIOS: tuple[str, ...] = ("general", "police", "hospital", "pharmacy", "bank")

# slot fillers: each maps slot keys to a gloss and its Greek phrases
_SLOTS: dict[str, list[dict[str, str]]] = {
    "item": [
        {"item": "ΤΣΑΝΤΑ", "item_the": "την τσάντα", "item_mine": "την τσάντα μου"},
        {"item": "ΚΙΝΗΤΟ", "item_the": "το κινητό", "item_mine": "το κινητό μου"},
        {"item": "ΤΑΥΤΟΤΗΤΑ", "item_the": "την ταυτότητα", "item_mine": "την ταυτότητά μου"},
        {"item": "ΚΑΡΤΑ", "item_the": "την κάρτα", "item_mine": "την κάρτα μου"},
    ],
    "past": [
        {"past": "ΧΘΕΣ", "past_text": "χθες"},
        {"past": "ΣΗΜΕΡΑ", "past_text": "σήμερα"},
    ],
    "future": [
        {"future": "ΑΥΡΙΟ", "future_text": "αύριο"},
        {"future": "ΣΗΜΕΡΑ", "future_text": "σήμερα"},
    ],
    "pain": [
        {"pain": "ΚΕΦΑΛΙ", "pain_the": "το κεφάλι", "pain_for": "για τον πονοκέφαλο"},
        {"pain": "ΣΤΟΜΑΧΙ", "pain_the": "το στομάχι", "pain_for": "για το στομάχι"},
        {"pain": "ΔΟΝΤΙ", "pain_the": "το δόντι", "pain_for": "για τον πονόδοντο"},
    ],
    "place": [
        {"place": "ΑΣΤΥΝΟΜΙΑ", "place_the": "η αστυνομία"},
        {"place": "ΝΟΣΟΚΟΜΕΙΟ", "place_the": "το νοσοκομείο"},
        {"place": "ΦΑΡΜΑΚΕΙΟ", "place_the": "το φαρμακείο"},
        {"place": "ΤΡΑΠΕΖΑ", "place_the": "η τράπεζα"},
    ],
}

# (scenario, slots, gloss template, translation template)
_TEMPLATES: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("general", (), "ΓΕΙΑ", "γεια σας"),
    ("general", (), "ΕΥΧΑΡΙΣΤΩ", "ευχαριστώ"),
    ("general", (), "ΝΑΙ", "ναι"),
    ("general", (), "ΟΧΙ", "όχι"),
    ("general", (), "ΕΝΤΑΞΕΙ", "εντάξει"),
    ("general", (), "ΕΥΧΑΡΙΣΤΩ ΠΟΛΥ", "ευχαριστώ πολύ"),
    ("general", (), "ΟΧΙ ΠΡΟΒΛΗΜΑ", "κανένα πρόβλημα"),
    ("general", (), "ΝΑΙ ΕΝΤΑΞΕΙ ΕΥΧΑΡΙΣΤΩ", "ναι, εντάξει, ευχαριστώ"),
    ("general", (), "ΕΣΥ ΟΝΟΜΑ ΤΙ;", "πώς σας λένε;"),
    ("general", (), "ΕΣΥ ΠΕΡΙΜΕΝΩ ΛΙΓΟ ΠΑΡΑΚΑΛΩ", "περιμένετε λίγο, παρακαλώ"),
    ("general", (), "ΓΕΙΑ ΕΓΩ(1) ΜΠΟΡΩ ΒΟΗΘΩ ΕΣΥ ΤΙ;", "γεια σας, πώς μπορώ να σας βοηθήσω;"),
    ("general", ("place",), "{place} ΠΟΥ;", "πού είναι {place_the};"),
    ("police", (), "ΕΓΩ(1) ΘΕΛΩ ΚΑΝΩ ΚΑΤΑΓΓΕΛΙΑ", "θέλω να κάνω καταγγελία"),
    ("police", (), "ΠΟΙΟΣ; ΕΝΟΧΛΩ_ΕΣΕΝΑ", "ποιος σας ενοχλεί;"),
    ("police", (), "ΑΣΤΥΝΟΜΙΑ ΕΡΧΟΜΑΙ ΤΩΡΑ", "η αστυνομία έρχεται τώρα"),
    ("police", (), "ΠΟΤΕ; ΑΥΤΟΣ ΚΛΕΒΩ(1)", "πότε έγινε η κλοπή;"),
    ("police", (), "ΕΣΥ ΤΑΥΤΟΤΗΤΑ ΔΙΝΩ ΠΑΡΑΚΑΛΩ", "δώστε μου την ταυτότητά σας, παρακαλώ"),
    ("police", ("item",), "{item} ΕΣΥ ΧΑΝΩ ΠΟΥ;", "πού χάσατε {item_the};"),
    ("police", ("past", "item"), "{past} ΑΥΤΟΣ ΚΛΕΒΩ(1) {item} ΕΓΩ(1)", "{past_text} μου έκλεψαν {item_the}"),
    ("police", ("item", "past"), "ΕΓΩ(1) ΧΑΝΩ {item} {past}", "{past_text} έχασα {item_mine}"),
    ("police", ("past", "item"), "{past} ΑΥΤΟΣ ΚΛΕΒΩ(1) {item} ΕΓΩ(1) ΑΣΤΥΝΟΜΙΑ ΘΕΛΩ",
     "{past_text} μου έκλεψαν {item_the}, θέλω να έρθει η αστυνομία"),
    ("police", ("item", "past"), "ΓΕΙΑ ΕΓΩ(1) ΧΑΝΩ {item} {past} ΕΣΥ ΒΟΗΘΩ ΜΠΟΡΩ",
     "γεια σας, {past_text} έχασα {item_mine}, μπορείτε να με βοηθήσετε;"),
    ("hospital", ("pain",), "ΕΓΩ(1) ΠΟΝΑΩ {pain}", "με πονάει {pain_the} μου"),
    ("hospital", ("pain",), "{pain} ΠΟΝΑΩ ΠΟΤΕ;", "από πότε σας πονάει {pain_the};"),
    ("hospital", (), "ΕΓΩ(1) ΠΥΡΕΤΟΣ ΕΧΩ ΧΘΕΣ", "έχω πυρετό από χθες"),
    ("hospital", ("future",), "ΕΓΩ(1) ΘΕΛΩ ΡΑΝΤΕΒΟΥ ΓΙΑΤΡΟΣ {future}", "θέλω ραντεβού με γιατρό {future_text}"),
    ("hospital", (), "ΓΙΑΤΡΟΣ ΕΡΧΟΜΑΙ ΠΟΤΕ;", "πότε έρχεται ο γιατρός;"),
    ("hospital", (), "ΕΣΥ ΠΑΙΡΝΩ ΦΑΡΜΑΚΟ ΣΗΜΕΡΑ ΑΥΡΙΟ", "πάρτε το φάρμακο σήμερα και αύριο"),
    ("hospital", ("pain",), "ΓΕΙΑ ΕΓΩ(1) ΠΟΝΑΩ {pain} ΠΟΛΥ ΓΙΑΤΡΟΣ ΘΕΛΩ",
     "γεια σας, με πονάει πολύ {pain_the} μου, θέλω γιατρό"),
    ("pharmacy", ("pain",), "ΕΓΩ(1) ΘΕΛΩ ΦΑΡΜΑΚΟ {pain}", "θέλω ένα φάρμακο {pain_for}"),
    ("pharmacy", (), "ΕΣΥ ΣΥΝΤΑΓΗ ΕΧΩ", "έχετε συνταγή;"),
    ("pharmacy", (), "ΦΑΡΜΑΚΟ ΠΟΣΟ; ΛΕΦΤΑ", "πόσο κοστίζει το φάρμακο;"),
    ("pharmacy", (), "ΕΓΩ(1) ΠΛΗΡΩΝΩ ΚΑΡΤΑ ΜΠΟΡΩ", "μπορώ να πληρώσω με κάρτα;"),
    ("pharmacy", (), "ΦΑΡΜΑΚΕΙΟ ΑΝΟΙΓΩ ΠΟΤΕ;", "πότε ανοίγει το φαρμακείο;"),
    ("pharmacy", ("pain",), "ΕΓΩ(1) ΘΕΛΩ ΦΑΡΜΑΚΟ {pain} ΣΥΝΤΑΓΗ ΕΓΩ(1) ΕΧΩ",
     "θέλω ένα φάρμακο {pain_for}, έχω συνταγή"),
    ("bank", (), "ΕΓΩ(1) ΘΕΛΩ ΑΝΟΙΓΩ_ΛΟΓΑΡΙΑΣΜΟ", "θέλω να ανοίξω λογαριασμό"),
    ("bank", (), "ΕΓΩ(1) ΘΕΛΩ ΠΑΙΡΝΩ ΛΕΦΤΑ", "θέλω να κάνω ανάληψη"),
    ("bank", (), "ΚΑΡΤΑ ΕΓΩ(1) ΧΑΝΩ ΤΙ; ΚΑΝΩ", "έχασα την κάρτα μου, τι να κάνω;"),
    ("bank", (), "ΤΡΑΠΕΖΑ ΑΝΟΙΓΩ ΠΟΤΕ;", "πότε ανοίγει η τράπεζα;"),
    ("bank", (), "ΛΕΦΤΑ ΠΟΣΟ; ΕΣΥ ΘΕΛΩ", "πόσα χρήματα θέλετε;"),
    ("bank", (), "ΓΙΑΤΙ; ΚΑΡΤΑ ΔΟΥΛΕΥΩ ΟΧΙ", "γιατί δεν δουλεύει η κάρτα;"),
    ("bank", ("future",), "ΓΕΙΑ ΕΓΩ(1) ΘΕΛΩ ΑΝΟΙΓΩ_ΛΟΓΑΡΙΑΣΜΟ {future} ΜΠΟΡΩ",
     "γεια σας, θέλω να ανοίξω λογαριασμό, μπορώ {future_text};"),
    ("bank", (), "ΓΕΙΑ ΕΓΩ(1) ΘΕΛΩ ΠΑΙΡΝΩ ΛΕΦΤΑ ΚΑΡΤΑ ΕΓΩ(1) ΧΑΝΩ",
     "γεια σας, θέλω να κάνω ανάληψη γιατί έχασα την κάρτα μου"),
)

# share of sentences per length in glosses, close to GSL's (about 4 glosses per sentence)
_LENGTH_SHARES: dict[int, float] = {1: 0.10, 2: 0.14, 3: 0.18, 4: 0.18, 5: 0.14, 6: 0.11, 7: 0.09, 8: 0.06}


@dataclass(frozen=True)
class Sentence:
    """One distinct sentence of the demo grammar."""

    group: str  # sentence id and sentence group, e.g. "s017"
    scenario: str  # one of SCENARIOS
    glosses: tuple[str, ...]  # gloss sequence, 1 to 8 glosses
    text: str  # Greek translation


def grammar_sentences() -> list[tuple[str, tuple[str, ...], str]]:
    """Expand every template of the grammar: (scenario, glosses, text) in template order."""
    sentences = []
    for scenario, slots, gloss_template, text_template in _TEMPLATES:
        for fillers in itertools.product(*(_SLOTS[slot] for slot in slots)):
            values: dict[str, str] = {}
            for filler in fillers:
                values.update(filler)
            glosses = tuple(gloss_template.format(**values).split(" "))
            sentences.append((scenario, glosses, text_template.format(**values)))
    return sentences


def choose_sentences(rng: np.random.Generator, n_sentences: int) -> list[Sentence]:
    """Draw distinct sentences with GSL-like lengths, ordered by scenario and numbered s000, s001, ..."""
    candidates = grammar_sentences()
    if n_sentences > len(candidates):
        raise ValueError(f"the demo grammar has {len(candidates)} distinct sentences; "
                         f"n_sentences {n_sentences} is too many")
    by_length: dict[int, list[int]] = {}
    for index, (_, glosses, _) in enumerate(candidates):
        by_length.setdefault(len(glosses), []).append(index)

    # largest-remainder quotas per length, then fill any shortfall from what is left
    lengths = sorted(_LENGTH_SHARES)
    exact = np.array([_LENGTH_SHARES[length] for length in lengths]) * n_sentences
    quotas = np.floor(exact).astype(int)
    for position in np.argsort(-(exact - quotas), kind="stable")[: n_sentences - quotas.sum()]:
        quotas[position] += 1
    chosen: list[int] = []
    for length, quota in zip(lengths, quotas):
        pool = by_length.get(length, [])
        take = min(int(quota), len(pool))
        chosen.extend(int(i) for i in rng.choice(pool, size=take, replace=False))
    rest = sorted(set(range(len(candidates))) - set(chosen))
    chosen.extend(int(i) for i in rng.choice(rest, size=n_sentences - len(chosen), replace=False))

    chosen.sort(key=lambda i: (SCENARIOS.index(candidates[i][0]), i))
    return [
        Sentence(group=f"s{number:03d}", scenario=candidates[i][0], glosses=candidates[i][1], text=candidates[i][2])
        for number, i in enumerate(chosen)
    ]


def _build_lexicon() -> dict[str, SignDefinition]:
    """Give every gloss of the grammar a sign that differs from all others in at least 2 parameters."""
    glosses: list[str] = list(_HANDMADE_SIGNS)
    for _, sentence_glosses, _ in grammar_sentences():
        glosses.extend(gloss for gloss in sentence_glosses if gloss not in glosses)
    lexicon: dict[str, SignDefinition] = {}
    for gloss in glosses:
        for salt in range(1000):
            sign = sign_definition(gloss, salt)
            if all(sign.differences(other) >= 2 for other in lexicon.values()):
                break
            if gloss in _HANDMADE_SIGNS:
                raise ValueError(f"the written-out sign of {gloss} is too close to another sign")
        lexicon[gloss] = sign
    return lexicon


LEXICON: dict[str, SignDefinition] = _build_lexicon()
VOCABULARY: tuple[str, ...] = tuple(LEXICON)


# ---------------------------------------------------------------- signers


@dataclass(frozen=True)
class SignerProfile:
    """Body proportions and signing style of one synthetic signer; lengths in pixels of the 848x480 frame."""

    name: str  # "signer1", "signer2", ...
    left_handed: bool  # the dominant hand is the left one; the arms mirror a right-handed signer
    centre_x: float  # x of the body midline
    shoulder_y: float  # y of the shoulder line
    shoulder_half_width: float  # half the distance between the shoulders
    upper_arm: float  # shoulder to elbow
    forearm: float  # elbow to wrist
    hand_length: float  # wrist to the tip of the straight middle finger
    head_width: float  # half-width of the head
    head_height: float  # half-height of the head
    neck: float  # shoulder line to chin
    torso: float  # shoulder line to hip line
    speed: float  # signing speed factor; durations are divided by it
    amplitude: float  # factor on movement sizes
    space_height: float  # shift of the signing space, in shoulder half-widths (positive is lower)
    jitter: float  # standard deviation of keypoint noise
    dropout_rate: float  # factor on the probability that a hand detection drops out

    @property
    def side(self) -> float:
        """Image x direction of the dominant side: -1 for a right-handed signer, +1 for a left-handed one."""
        return 1.0 if self.left_handed else -1.0

    def head_centre(self) -> np.ndarray:
        """Centre of the head in the signer frame (l, y, z)."""
        return np.array([0.0, self.shoulder_y - self.neck - self.head_height, -0.15 * self.shoulder_half_width])

    def location(self, name: str) -> np.ndarray:
        """Return where the hand centre goes for a location, in the signer frame (l, y, z)."""
        hw, hh = self.head_width, self.head_height
        sw, torso, forearm = self.shoulder_half_width, self.torso, self.forearm
        head = self.head_centre()
        shoulder_y = self.shoulder_y
        space_y = shoulder_y + self.space_height * sw
        offsets = {
            "forehead": head + (0.1 * hw, -0.6 * hh, -1.2 * hw),
            "temple": head + (0.95 * hw, -0.35 * hh, -0.5 * hw),
            "nose": head + (0.0, 0.1 * hh, -1.6 * hw),
            "mouth": head + (0.0, 0.45 * hh, -1.4 * hw),
            "chin": head + (0.0, 0.95 * hh, -1.3 * hw),
            "cheek": head + (0.85 * hw, 0.3 * hh, -0.9 * hw),
            "ear": head + (1.3 * hw, 0.0, 0.0),
            "neck": (0.1 * sw, shoulder_y - 0.3 * self.neck, -0.7 * hw),
            "chest": (0.15 * sw, shoulder_y + 0.3 * torso, -0.5 * sw),
            "chest_nd": (-0.5 * sw, shoulder_y + 0.3 * torso, -0.45 * sw),
            "shoulder": (0.9 * sw, shoulder_y + 0.1 * torso, -0.45 * sw),
            "shoulder_nd": (-0.85 * sw, shoulder_y + 0.1 * torso, -0.45 * sw),
            "stomach": (0.1 * sw, shoulder_y + 0.62 * torso, -0.55 * sw),
            "neutral": (0.35 * sw, space_y + 0.45 * torso, -1.1 * forearm),
            "neutral_high": (0.55 * sw, space_y - 0.05 * torso, -1.2 * forearm),
            "neutral_side": (1.5 * sw, space_y + 0.4 * torso, -0.7 * forearm),
            "neutral_low": (0.3 * sw, space_y + 0.7 * torso, -1.0 * forearm),
            "neutral_centre": (-0.1 * sw, space_y + 0.35 * torso, -1.2 * forearm),
            # for the non-dominant hand, in its own mirrored frame: held as a base, idle during
            # one-handed signs, and (for both hands) resting between sentences
            "base": (0.15 * sw, space_y + 0.5 * torso, -1.0 * forearm),
            "idle": (0.55 * sw, shoulder_y + 0.75 * torso, -0.5 * sw),
            "lap": (0.65 * sw, shoulder_y + 0.98 * torso, -0.35 * sw),
        }
        try:
            return np.asarray(offsets[name], dtype=np.float64)
        except KeyError:
            raise ValueError(f"unknown sign location {name!r}; accepted: {', '.join(offsets)}") from None


def draw_signers(rng: np.random.Generator, n_signers: int) -> list[SignerProfile]:
    """Draw signer1..signerN; from 4 signers up, one training signer is left-handed.

    The left-handed one is the second-to-last signer, or the last when that
    would be the held-out signer3. The held-out signer is always right-handed,
    so the test split does not ask a model to read a mirrored signer it never
    saw in training.
    """
    left_handed = None
    if n_signers >= 4:
        left_handed = f"signer{n_signers - 1}" if f"signer{n_signers - 1}" != HELDOUT_SIGNER else f"signer{n_signers}"
    signers = []
    for index in range(n_signers):
        sw = 85.0 * rng.uniform(0.92, 1.08)

        def part(ratio: float, sw: float = sw) -> float:
            # one body part, proportional to the shoulders give or take 5%
            return float(ratio * sw * rng.uniform(0.95, 1.05))

        signers.append(SignerProfile(
            name=f"signer{index + 1}",
            left_handed=f"signer{index + 1}" == left_handed,
            centre_x=float(FRAME_WIDTH / 2 + rng.normal(0.0, 12.0)),
            shoulder_y=float(235.0 + rng.normal(0.0, 8.0)),
            shoulder_half_width=float(sw),
            upper_arm=part(1.45),
            forearm=part(1.25),
            hand_length=part(0.9),
            head_width=part(0.42),
            head_height=part(0.56),
            neck=part(0.4),
            torso=part(2.6),
            speed=float(rng.uniform(0.85, 1.2)),
            amplitude=float(rng.uniform(0.85, 1.15)),
            space_height=float(rng.uniform(-0.1, 0.1)),
            jitter=float(rng.uniform(0.5, 1.2)),
            dropout_rate=float(rng.uniform(0.6, 1.4)),
        ))
    return signers


# ---------------------------------------------------------------- performance plans


@dataclass(frozen=True)
class Performance:
    """Everything about one sample except its pose, which `render_performance` computes."""

    index: int  # position in the corpus; seeds the sample's own random stream
    sample: Sample  # the annotation row
    sentence: Sentence  # what is signed
    signer: SignerProfile  # who signs it
    signs: tuple[SignDefinition, ...]  # one sign per gloss
    spans: tuple[tuple[int, int], ...]  # [start, end) frames of each sign
    rests: tuple[int, int]  # frames at rest before the first transition and after the last one
    n_frames: int  # frames of the whole performance


def _ease(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


def _plan_timing(rng: np.random.Generator, signs: Sequence[SignDefinition], signer: SignerProfile,
                 scale: float) -> tuple[tuple[tuple[int, int], ...], tuple[int, int], int]:
    """Lay out rests, signs and transitions; return the sign spans, the two rests and the frame count."""

    def frames(value: float, low: int) -> int:
        return max(low, int(round(value * scale)))

    sw = signer.shoulder_half_width
    rest_before = frames(rng.uniform(2, 6), 2)
    cursor = rest_before
    previous = signer.location("lap")
    spans = []
    for number, sign in enumerate(signs):
        # transitions take longer across longer distances, and longest up from the lap
        if sign.location == "base":
            target = signer.location("base") * np.array([-1.0, 1.0, 1.0])
        else:
            target = signer.location(sign.location)
        distance = float(np.linalg.norm(target - previous))
        if number == 0:
            transition = rng.uniform(5, 9)
        else:
            transition = np.clip((3.0 + distance / (0.4 * sw)) * rng.uniform(0.85, 1.15), 4, 10)
        cursor += frames(transition / signer.speed, 2)
        length = frames(sign.frames / signer.speed * rng.uniform(0.9, 1.1), 6)
        spans.append((cursor, cursor + length))
        cursor += length
        previous = target
    cursor += frames(rng.uniform(5, 9) / signer.speed, 2)  # back to the lap
    rest_after = frames(rng.uniform(2, 6), 2)
    return tuple(spans), (rest_before, rest_after), cursor + rest_after


def plan_demo_corpus(seed: int = 0, size: str | DemoSize = "default") -> tuple[dict, list[Performance]]:
    """Draw signers and sentences and lay out every performance; poses are not rendered.

    Returns:
        The metadata.json object and the performances in file order: by
        scenario, signer, repetition and sentence, as GSL orders its files.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"demo corpus seed {seed!r} is invalid; pass a non-negative integer")
    preset = demo_size(size)
    size_name = next((name for name, value in DEMO_SIZES.items() if value == preset), "custom")
    rng = np.random.default_rng(int(seed))
    signers = draw_signers(rng, preset.n_signers)
    sentences = choose_sentences(rng, preset.n_sentences)

    low, high = preset.repetitions
    repetitions = {
        (signer.name, sentence.group): high if signer.name == HELDOUT_SIGNER else int(rng.integers(low, high + 1))
        for signer in signers
        for sentence in sentences
    }

    performances: list[Performance] = []
    for scenario in SCENARIOS:
        scenario_sentences = [sentence for sentence in sentences if sentence.scenario == scenario]
        for signer in signers:
            for repetition in range(1, high + 1):
                for sentence in scenario_sentences:
                    if repetition > repetitions[signer.name, sentence.group]:
                        continue
                    signs = tuple(LEXICON[gloss] for gloss in sentence.glosses)
                    spans, rests, n_frames = _plan_timing(rng, signs, signer, preset.duration_scale)
                    if signer.name != HELDOUT_SIGNER:
                        split = "train"
                    else:
                        split = "val" if repetition <= preset.val_repetitions else "test"
                    sample = Sample(
                        id=f"{scenario}_{signer.name}_rep{repetition}/{sentence.group}",
                        split=split,
                        gloss=" ".join(sentence.glosses),
                        text=sentence.text,
                        signer=signer.name,
                        repetition=repetition,
                        sentence_group=sentence.group,
                        fps=FPS,
                        n_frames=n_frames,
                        gloss_spans=spans,
                        extras={"scenario": scenario},
                    )
                    performances.append(Performance(len(performances), sample, sentence, signer, signs, spans,
                                                    rests, n_frames))

    metadata = {
        "name": "gsl-synthetic-demo",
        "id": f"gsl-synthetic-demo-{size_name}-seed{int(seed)}",
        "url": None,
        "input_language": "gsl-synthetic",
        "output_language": "el",
        "input_types": ["pose"],
        "output_types": ["gloss", "text"],
        "split_type": "signer_independent",
        "description": (
            "Synthetic Greek Sign Language service dialogues from a kinematic model of the MediaPipe Holistic "
            f"skeleton. {HELDOUT_SIGNER} is held out: its first {preset.val_repetitions} repetition(s) form val, "
            "its later ones test."
        ),
        "fps": FPS,
        "frame_size": [FRAME_WIDTH, FRAME_HEIGHT],
        "generator": {
            "module": __name__,
            "version": GENERATOR_VERSION,
            "seed": int(seed),
            "size": size_name,
            "signers": [signer.name for signer in signers],
            "left_handed_signers": [signer.name for signer in signers if signer.left_handed],
            "heldout_signer": HELDOUT_SIGNER,
            "sentences": len(sentences),
            "vocabulary": len({gloss for sentence in sentences for gloss in sentence.glosses}),
        },
    }
    return metadata, performances


# ---------------------------------------------------------------- kinematics


def _normalize(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _orthonormal_frame(fingers: np.ndarray, palm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the thumb-side, finger and palm axes (u, v, w) of hands given finger and palm directions (F, 3)."""
    v = _normalize(fingers)
    w = _normalize(palm - np.sum(palm * v, axis=-1, keepdims=True) * v)
    # u = w x v puts the thumb on the medial side of a right hand in the signer frame
    u = np.cross(w, v)
    return u, v, w


def _rotate(vectors: np.ndarray, axes: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rotate vectors (F, 3) about unit axes (F, 3) by angles (F,) in radians (Rodrigues' formula)."""
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    along = np.sum(axes * vectors, axis=-1, keepdims=True) * axes
    return vectors * cos + np.cross(axes, vectors) * sin + along * (1.0 - cos)


def hand_points(wrist: np.ndarray, fingers: np.ndarray, palm: np.ndarray, parameters: np.ndarray,
                hand_length: float) -> np.ndarray:
    """Place the 21 MediaPipe hand points of a right hand in the signer frame.

    Args:
        wrist: (F, 3) wrist positions.
        fingers: (F, 3) finger directions.
        palm: (F, 3) palm normals.
        parameters: (F, 18) handshape parameters in degrees, as in HANDSHAPES.
        hand_length: wrist to the tip of the straight middle finger, in pixels.

    Returns:
        (F, 21, 3) points in `holistic.HAND_NAMES` order.
    """
    n_frames = wrist.shape[0]
    angles = np.deg2rad(parameters)
    local = np.zeros((n_frames, 21, 3))  # (F, 21, 3) in (a, b, c) hand axes, hand lengths
    palm_side = np.array([0.0, 0.0, 1.0])

    # thumb: a base direction set by abduction and opposition, then flexion towards the palm centre
    abduction, opposition = angles[:, 0], angles[:, 1]
    thumb = np.stack([np.sin(abduction) * np.cos(opposition), np.cos(abduction) * np.cos(opposition),
                      np.sin(opposition)], axis=-1)  # (F, 3)
    bend = np.array([-0.7, 0.0, 0.7]) - np.sum(thumb * np.array([-0.7, 0.0, 0.7]), axis=-1, keepdims=True) * thumb
    bend = _normalize(bend)
    joint = np.broadcast_to(_THUMB_BASE, (n_frames, 3)).copy()
    local[:, 1] = joint
    flexion = np.zeros(n_frames)
    for k in range(3):
        flexion = flexion + angles[:, 2 + k]
        direction = np.cos(flexion)[:, None] * thumb + np.sin(flexion)[:, None] * bend
        joint = joint + _THUMB_SEGMENTS[k] * direction
        local[:, 2 + k] = joint

    # fingers: spread within the palm plane, then flexion curls each joint towards the palm side
    spread = angles[:, 17]
    for finger in range(4):
        alpha = spread * _FINGER_SPREAD_SHARE[finger]
        straight = np.stack([np.sin(alpha), np.cos(alpha), np.zeros(n_frames)], axis=-1)  # (F, 3)
        joint = np.broadcast_to(_FINGER_BASES[finger], (n_frames, 3)).copy()
        first = 5 + 4 * finger
        local[:, first] = joint
        flexion = np.zeros(n_frames)
        for k in range(3):
            flexion = flexion + angles[:, 5 + 3 * finger + k]
            direction = np.cos(flexion)[:, None] * straight + np.sin(flexion)[:, None] * palm_side
            joint = joint + _FINGER_SEGMENTS[finger, k] * direction
            local[:, first + 1 + k] = joint

    u, v, w = _orthonormal_frame(fingers, palm)
    local = local * hand_length
    return (wrist[:, None, :] + local[..., 0:1] * u[:, None, :] + local[..., 1:2] * v[:, None, :]
            + local[..., 2:3] * w[:, None, :])


def elbow_positions(shoulder: np.ndarray, wrist: np.ndarray, upper_arm: float, forearm: float,
                    pole: np.ndarray) -> np.ndarray:
    """Solve two-link inverse kinematics: the elbow (F, 3) for shoulders and wrists (F, 3).

    The wrist must be within reach (see `_clip_reach`). The elbow bends
    towards `pole` (3,), a direction from the shoulder.
    """
    reach = wrist - shoulder
    distance = np.linalg.norm(reach, axis=-1, keepdims=True)
    along = reach / distance
    # distance from the shoulder to the elbow's foot on the shoulder-wrist line, by the law of cosines
    foot = (upper_arm**2 - forearm**2 + distance**2) / (2.0 * distance)
    height = np.sqrt(np.maximum(upper_arm**2 - foot**2, 0.0))
    bend = pole[None, :] - np.sum(pole[None, :] * along, axis=-1, keepdims=True) * along
    bend = _normalize(bend + 1e-9)
    return shoulder + foot * along + height * bend


def _clip_reach(shoulder: np.ndarray, wrist: np.ndarray, upper_arm: float, forearm: float) -> np.ndarray:
    """Pull wrists (F, 3) that are out of the arm's reach back towards the shoulder."""
    reach = wrist - shoulder
    distance = np.linalg.norm(reach, axis=-1, keepdims=True)
    low = abs(upper_arm - forearm) + 1.0
    high = upper_arm + forearm - 1.0
    clipped = np.clip(distance, low, high)
    return shoulder + reach / np.maximum(distance, 1e-9) * clipped


def movement_path(movement: str, u: np.ndarray, direction: float, size: float) -> tuple[np.ndarray, np.ndarray,
                                                                                         np.ndarray]:
    """Compute the hand's offsets and turns during a sign.

    Args:
        movement: one of MOVEMENTS.
        u: (F,) sign phase from 0 to 1.
        direction: degrees in the frontal plane, 0 towards the dominant side, 90 up.
        size: movement size in pixels.

    Returns:
        (F, 3) position offsets in the signer frame, (F,) roll of the palm
        about the finger direction and (F,) flexion of the wrist, in radians.
    """
    theta = np.deg2rad(direction)
    along = np.array([np.cos(theta), -np.sin(theta), 0.0])
    across = np.array([np.sin(theta), np.cos(theta), 0.0])
    zero = np.zeros_like(u)
    eased = _ease(u)
    roll, flex = zero, zero
    if movement == "hold":
        offset = np.outer(np.sin(np.pi * u), [0.0, 0.08 * size, -0.25 * size])
    elif movement == "tap":
        offset = np.outer(np.abs(np.sin(2.0 * np.pi * u)), [0.0, 0.2 * size, 0.3 * size])
    elif movement == "nod":
        offset = np.outer(np.abs(np.sin(2.0 * np.pi * u)), [0.0, 0.12 * size, 0.0])
        flex = 0.6 * np.abs(np.sin(2.0 * np.pi * u))
    elif movement == "line":
        offset = np.outer(eased - 0.5, along * size)
    elif movement == "arc":
        offset = (np.outer(-0.5 * np.cos(np.pi * eased), along) + np.outer(0.35 * np.sin(np.pi * eased), across)) * size
    elif movement == "shake":
        offset = np.outer(0.22 * size * np.sin(4.0 * np.pi * u), along)
    elif movement == "twist":
        offset = np.outer(0.08 * size * np.sin(np.pi * u), along)
        roll = 1.2 * np.sin(2.0 * np.pi * u)
    elif movement == "wiggle":
        offset = np.outer(0.18 * size * np.sin(6.0 * np.pi * u), along) + np.outer(0.3 * size * (eased - 0.5), across)
    elif movement == "circle":
        offset = 0.3 * size * (np.outer(np.cos(2.0 * np.pi * u) - 1.0, along) + np.outer(np.sin(2.0 * np.pi * u),
                                                                                         across))
    elif movement == "zigzag":
        triangle = 2.0 * np.abs((3.0 * u) % 1.0 - 0.5) - 0.5
        offset = np.outer(0.4 * size * triangle, along) + np.outer(0.6 * size * (eased - 0.5), across)
    else:
        raise ValueError(f"unknown movement {movement!r}; accepted: {', '.join(MOVEMENTS)}")
    return offset, roll, flex


# ---------------------------------------------------------------- rendering one performance

# one hand's state per frame: wrist (3), finger direction (3), palm normal (3), handshape parameters (18)
_STATE = 27
_WRIST, _FINGERS, _PALM, _SHAPE = slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 27)


def _static_state(position: np.ndarray, orientation: str, handshape: str, hand_length: float,
                  n_frames: int) -> np.ndarray:
    fingers, palm = (np.asarray(vector, dtype=np.float64) for vector in ORIENTATIONS[orientation])
    u, v, w = _orthonormal_frame(fingers[None], palm[None])
    state = np.empty((n_frames, _STATE))
    state[:, _WRIST] = position - _HAND_CENTRE * hand_length * v[0]
    state[:, _FINGERS] = v[0]
    state[:, _PALM] = w[0]
    state[:, _SHAPE] = HANDSHAPES[handshape]
    return state


def _rest_state(signer: SignerProfile, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Return states of a hand hanging at the lap, near the bottom edge of the frame, with a little breathing motion."""
    state = _static_state(signer.location("lap"), "down_back", "relaxed", signer.hand_length, n_frames)
    breathing = 1.5 * np.sin(np.linspace(0.0, np.pi, n_frames) + rng.uniform(0, np.pi))
    state[:, 1] += breathing
    return state


def _sign_states(sign: SignDefinition, signer: SignerProfile, n_frames: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Compute the dominant and non-dominant hand's states during one sign, each in its own (mirrored) frame."""
    sw = signer.shoulder_half_width
    length = signer.hand_length
    u = np.linspace(0.0, 1.0, n_frames)
    size = sign.size * sw * signer.amplitude * rng.uniform(0.9, 1.1)
    direction = sign.direction + rng.normal(0.0, 8.0)
    shape_noise = rng.normal(0.0, 4.0, N_HAND_PARAMETERS)

    def hand(location: np.ndarray, phase: np.ndarray, reverse: bool) -> np.ndarray:
        offset, roll, flex = movement_path(sign.movement, phase, direction, size)
        if reverse:
            offset = -offset
        fingers, palm = (np.broadcast_to(np.asarray(vector, dtype=np.float64), (n_frames, 3))
                         for vector in ORIENTATIONS[sign.orientation])
        thumb_side, v, w = _orthonormal_frame(fingers, palm)
        v, w = _rotate(v, thumb_side, flex), _rotate(w, thumb_side, flex)  # wrist flexion turns the hand
        w = _rotate(w, v, roll)  # pronation and supination turn the palm
        blend = _ease(u)[:, None]
        shape = (1.0 - blend) * HANDSHAPES[sign.handshape] + blend * HANDSHAPES[sign.end_handshape] + shape_noise
        state = np.empty((n_frames, _STATE))
        state[:, _WRIST] = location + offset - _HAND_CENTRE * length * v
        state[:, _FINGERS] = v
        state[:, _PALM] = w
        state[:, _SHAPE] = shape
        return state

    jitter = rng.normal(0.0, 0.06 * sw, 3)
    if sign.hands == "base":
        base_position = signer.location("base") + jitter
        passive = _static_state(base_position, "medial_up", sign.base_handshape, length, n_frames)
        # the dominant hand works just above the base hand, which sits mirrored on the other side
        target = base_position * np.array([-1.0, 1.0, 1.0]) + np.array([0.0, -0.35 * sw, -0.1 * sw])
        return hand(target, u, False), passive

    location = signer.location(sign.location) + jitter
    if sign.hands == "one_hand":
        passive = _static_state(signer.location("idle"), "medial_back", "relaxed", length, n_frames)
        return hand(location, u, False), passive

    if sign.location in _MIDLINE_LOCATIONS:
        location[0] = max(location[0], 0.35 * sw if location[1] > signer.shoulder_y else 0.6 * signer.head_width)
    if sign.hands == "symmetric":
        return hand(location, u, False), hand(location, u, False)
    if sign.movement in _PERIODIC_MOVEMENTS:
        return hand(location, u, False), hand(location, (u + 0.5) % 1.0, False)
    return hand(location, u, False), hand(location, u, True)


def _fill_transitions(state: np.ndarray, filled: np.ndarray) -> None:
    """Interpolate every run of unfilled frames between the filled frames around it, in place.

    Wrist and handshape are interpolated linearly with easing. The hand's
    orientation turns about one fixed axis (spherical interpolation), so it
    never passes through a degenerate frame when the fingers turn round.
    """
    unfilled = np.flatnonzero(~filled)
    if unfilled.size == 0:
        return
    breaks = np.flatnonzero(np.diff(unfilled) > 1)
    starts = unfilled[np.r_[0, breaks + 1]]
    ends = unfilled[np.r_[breaks, unfilled.size - 1]] + 1

    # one relative rotation per run, from the hand axes [u v w] before it to those after it
    def axes(frames: np.ndarray) -> np.ndarray:
        return np.stack(_orthonormal_frame(state[frames, _FINGERS], state[frames, _PALM]), axis=-1)  # (R, 3, 3)

    before, after = axes(starts - 1), axes(ends)
    turns = Rotation.from_matrix(after @ np.swapaxes(before, 1, 2)).as_rotvec()  # (R, 3)

    for run, (start, end) in enumerate(zip(starts, ends)):
        t = _ease(np.arange(1, end - start + 1) / (end - start + 1))  # (T,)
        state[start:end] = (1.0 - t[:, None]) * state[start - 1] + t[:, None] * state[end]
        angle = float(np.linalg.norm(turns[run]))
        if angle < 1e-9:
            state[start:end, _FINGERS] = before[run, :, 1]
            state[start:end, _PALM] = before[run, :, 2]
            continue
        axis = np.broadcast_to(turns[run] / angle, (end - start, 3))
        state[start:end, _FINGERS] = _rotate(np.broadcast_to(before[run, :, 1], (end - start, 3)), axis, t * angle)
        state[start:end, _PALM] = _rotate(np.broadcast_to(before[run, :, 2], (end - start, 3)), axis, t * angle)


def _hand_track(signer: SignerProfile, performance: Performance, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
    """Compute the states (F, 27) of the dominant and non-dominant hand over the whole performance."""
    n_frames = performance.n_frames
    dominant = np.zeros((n_frames, _STATE))
    passive = np.zeros((n_frames, _STATE))
    filled = np.zeros(n_frames, dtype=bool)

    rest_before, rest_after = performance.rests
    for part in (slice(0, rest_before), slice(n_frames - rest_after, n_frames)):
        count = part.stop - part.start
        dominant[part] = _rest_state(signer, count, rng)
        passive[part] = _rest_state(signer, count, rng)
        filled[part] = True
    for sign, (start, end) in zip(performance.signs, performance.spans):
        dominant[start:end], passive[start:end] = _sign_states(sign, signer, end - start, rng)
        filled[start:end] = True
    _fill_transitions(dominant, filled)
    _fill_transitions(passive, filled)
    return dominant, passive


def _arm_points(state: np.ndarray, shoulder: np.ndarray, signer: SignerProfile) -> tuple[np.ndarray, np.ndarray]:
    """Compute the hand points (F, 21, 3) and elbows (F, 3) of one arm in its own signer frame."""
    wrist = _clip_reach(shoulder, state[:, _WRIST], signer.upper_arm, signer.forearm)
    points = hand_points(wrist, state[:, _FINGERS], state[:, _PALM], state[:, _SHAPE], signer.hand_length)
    # elbows point down, out to the side and a little back
    elbow = elbow_positions(shoulder, wrist, signer.upper_arm, signer.forearm, np.array([0.75, 0.7, 0.15]))
    return points, elbow


def _face_template() -> np.ndarray:
    """Build a coarse 468-point face on the front of an ellipsoid, in head units (x to the subject's left, y down)."""
    points = []
    angles = np.linspace(0.0, 2.0 * np.pi, 36, endpoint=False)
    points += [(np.sin(a), -np.cos(a), 0.0) for a in angles]  # face outline
    for side in (1.0, -1.0):
        ring = np.linspace(0.0, 2.0 * np.pi, 16, endpoint=False)
        points += [(side * 0.38 + 0.18 * np.cos(a), -0.15 + 0.07 * np.sin(a), -0.8) for a in ring]  # eyes
        brow = np.linspace(-1.0, 1.0, 10)
        points += [(side * 0.38 + 0.22 * b, -0.33 - 0.05 * (1 - b * b), -0.82) for b in brow]  # eyebrows
    lips = np.linspace(0.0, 2.0 * np.pi, 20, endpoint=False)
    points += [(0.3 * np.cos(a), 0.48 + 0.1 * np.sin(a), -0.85) for a in lips]  # outer lips
    inner = np.linspace(0.0, 2.0 * np.pi, 16, endpoint=False)
    points += [(0.22 * np.cos(a), 0.48 + 0.04 * np.sin(a), -0.86) for a in inner]  # inner lips
    bridge = np.linspace(-0.1, 0.25, 7)
    points += [(0.0, y, -0.95 - 0.4 * (y + 0.1)) for y in bridge]  # nose bridge
    points += [(x, 0.28, -0.95) for x in np.linspace(-0.18, 0.18, 7)]  # nostrils
    # fill the rest of the face with a sunflower spiral, pushed onto the ellipsoid's front
    n_fill = holistic.N_FACE - len(points)
    radius = 0.92 * np.sqrt((np.arange(n_fill) + 0.5) / n_fill)
    golden = np.pi * (3.0 - np.sqrt(5.0)) * np.arange(n_fill)
    x, y = radius * np.cos(golden), radius * np.sin(golden)
    points += list(zip(x, y, -np.sqrt(np.maximum(1.0 - radius**2, 0.0)) * 0.9))
    return np.asarray(points, dtype=np.float64)


_FACE = _face_template()

# body points on the head, in head units (x to the subject's left, y down, z negative towards the camera)
_HEAD_POINTS = {
    "NOSE": (0.0, 0.12, -1.1),
    "LEFT_EYE_INNER": (0.2, -0.15, -0.85), "LEFT_EYE": (0.38, -0.15, -0.8), "LEFT_EYE_OUTER": (0.55, -0.15, -0.7),
    "RIGHT_EYE_INNER": (-0.2, -0.15, -0.85), "RIGHT_EYE": (-0.38, -0.15, -0.8), "RIGHT_EYE_OUTER": (-0.55, -0.15, -0.7),
    "LEFT_EAR": (0.98, -0.02, 0.0), "RIGHT_EAR": (-0.98, -0.02, 0.0),
    "MOUTH_LEFT": (0.28, 0.48, -0.8), "MOUTH_RIGHT": (-0.28, 0.48, -0.8),
}
_BODY_INDEX = {name: index for index, name in enumerate(holistic.BODY_NAMES)}


def _head_rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Build rotation matrices (F, 3, 3) from head yaw (about y), pitch (about x) and roll (about z) in radians."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    r_yaw = np.stack([np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1), np.stack([-sy, zero, cy], -1)], -2)
    r_pitch = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1),
                        np.stack([zero, sp, cp], -1)], -2)
    r_roll = np.stack([np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1), np.stack([zero, zero, one], -1)],
                      -2)
    return r_yaw @ r_pitch @ r_roll


def _smooth_noise(rng: np.random.Generator, n_frames: int, scale: float, period: float) -> np.ndarray:
    """Draw a slow random drift (F,) with the given amplitude and a period in frames."""
    t = np.arange(n_frames)
    phases = rng.uniform(0.0, 2.0 * np.pi, 2)
    return scale * (0.7 * np.sin(2 * np.pi * t / period + phases[0]) + 0.3 * np.sin(4.4 * np.pi * t / period
                                                                                    + phases[1]))


def _dropout_mask(rng: np.random.Generator, points: np.ndarray, head: np.ndarray, signer: SignerProfile) -> np.ndarray:
    """Draw the frames (F,) where the hand detector misses a hand, given its image points (F, 21, 3) in pixels.

    A missed run starts with a small base probability. Fast motion (motion
    blur) and a hand near the face raise it. A hand that reaches past the
    bottom edge of the frame raises it most, because MediaPipe rarely finds a
    resting hand there. Runs last a few frames, and longer at the edge.
    """
    n_frames = points.shape[0]
    centre = points[:, 9, :2]  # (F, 2) middle finger MCP
    speed = np.zeros(n_frames)
    speed[1:] = np.linalg.norm(np.diff(centre, axis=0), axis=-1)
    near_face = np.linalg.norm(centre - head[:, :2], axis=-1) < 1.6 * signer.head_width
    at_edge = (centre[:, 1] > 0.9 * FRAME_HEIGHT) | (points[:, 12, 1] > FRAME_HEIGHT)  # fingers leave the frame
    chance = 0.004 + 0.002 * np.maximum(speed - 10.0, 0.0) + 0.02 * near_face
    chance = np.where(at_edge, 0.45, chance * signer.dropout_rate)
    starts = np.flatnonzero(rng.random(n_frames) < chance)
    lengths = np.where(at_edge[starts], rng.geometric(0.15, starts.size), rng.geometric(0.35, starts.size))
    missed = np.zeros(n_frames, dtype=bool)
    for start, length in zip(starts, lengths):
        missed[start:start + length] = True
    return missed


def render_performance(performance: Performance, seed: int) -> np.ndarray:
    """Render one performance as a (F, 543, 3) float32 pose in 0-1 image coordinates, NaN where undetected."""
    rng = np.random.default_rng([int(seed), 1, performance.index])
    signer = performance.signer
    n_frames = performance.n_frames
    sw = signer.shoulder_half_width
    mirror = np.array([-1.0, 1.0, 1.0])

    # hands: states in each hand's own frame, then the non-dominant hand mirrored across the midline
    dominant, passive = _hand_track(signer, performance, rng)
    shoulder = np.array([sw, signer.shoulder_y, 0.0])
    shoulders = {}
    for name, state in (("dominant", dominant), ("passive", passive)):
        # a shoulder rises a little when its hand works above it
        lift = 0.08 * np.maximum(signer.shoulder_y - state[:, 1], 0.0)
        shoulders[name] = np.broadcast_to(shoulder, (n_frames, 3)) - lift[:, None] * np.array([0.0, 1.0, 0.0])
    dominant_hand, dominant_elbow = _arm_points(dominant, shoulders["dominant"], signer)
    passive_hand, passive_elbow = _arm_points(passive, shoulders["passive"], signer)
    passive_hand, passive_elbow = passive_hand * mirror, passive_elbow * mirror
    passive_shoulder = shoulders["passive"] * mirror

    # signer frame (l, y, z) to image pixels: l points to the dominant side
    to_image = np.array([signer.side, 1.0, 1.0])
    origin = np.array([signer.centre_x, 0.0, 0.0])
    sway = np.stack([_smooth_noise(rng, n_frames, 2.5, 90.0), _smooth_noise(rng, n_frames, 1.5, 70.0),
                     np.zeros(n_frames)], axis=-1)  # (F, 3)

    def image(points: np.ndarray) -> np.ndarray:
        shape = (n_frames,) + (1,) * (points.ndim - 2) + (3,)
        return points * to_image + origin + sway.reshape(shape)

    dominant_hand, passive_hand = image(dominant_hand), image(passive_hand)
    arms = {
        "dominant": (image(shoulders["dominant"]), image(dominant_elbow), dominant_hand),
        "passive": (image(passive_shoulder), image(passive_elbow), passive_hand),
    }
    right, left = ("dominant", "passive") if not signer.left_handed else ("passive", "dominant")

    # head: follows the body, drifts a little and tilts forward on question glosses
    head = image(np.broadcast_to(signer.head_centre(), (n_frames, 3)))
    question = np.zeros(n_frames)
    for sign, (start, end) in zip(performance.signs, performance.spans):
        if sign.gloss.endswith(";"):
            question[start:end] = 1.0
    kernel = np.ones(7) / 7.0
    question = np.convolve(question, kernel, mode="same")
    yaw = _smooth_noise(rng, n_frames, 0.06, 80.0)
    pitch = _smooth_noise(rng, n_frames, 0.04, 60.0) + 0.18 * question
    roll = _smooth_noise(rng, n_frames, 0.03, 100.0)
    rotation = _head_rotation(yaw, pitch, roll)  # (F, 3, 3)
    head_scale = np.array([signer.head_width, signer.head_height, signer.head_width])

    def on_head(template: np.ndarray) -> np.ndarray:
        return head[:, None, :] + (template * head_scale) @ np.swapaxes(rotation, 1, 2)  # (F, K, 3)

    pose = np.empty((n_frames, holistic.N_POINTS, 3))
    body = pose[:, holistic.COMPONENTS["body"]]
    head_points = on_head(np.array(list(_HEAD_POINTS.values())))
    for column, name in enumerate(_HEAD_POINTS):
        body[:, _BODY_INDEX[name]] = head_points[:, column]
    for side, key in (("LEFT", left), ("RIGHT", right)):
        arm_shoulder, arm_elbow, arm_hand = arms[key]
        body[:, _BODY_INDEX[f"{side}_SHOULDER"]] = arm_shoulder
        body[:, _BODY_INDEX[f"{side}_ELBOW"]] = arm_elbow
        body[:, _BODY_INDEX[f"{side}_WRIST"]] = arm_hand[:, 0]
        body[:, _BODY_INDEX[f"{side}_PINKY"]] = arm_hand[:, 17]
        body[:, _BODY_INDEX[f"{side}_INDEX"]] = 0.5 * (arm_hand[:, 5] + arm_hand[:, 6])
        body[:, _BODY_INDEX[f"{side}_THUMB"]] = arm_hand[:, 3]
        # legs are below the frame, where MediaPipe still places them
        lateral = 0.75 * sw if side == "LEFT" else -0.75 * sw
        hip = np.array([signer.centre_x + lateral, signer.shoulder_y + signer.torso, 0.0])
        leg = 2.2 * sw
        for name, drop, depth in (("HIP", 0.0, 0.0), ("KNEE", leg, -10.0), ("ANKLE", 2 * leg, 0.0),
                                  ("HEEL", 2 * leg + 12.0, 8.0), ("FOOT_INDEX", 2 * leg + 18.0, -30.0)):
            body[:, _BODY_INDEX[f"{side}_{name}"]] = hip + np.array([0.0, drop, depth]) + sway * 0.3
    pose[:, holistic.COMPONENTS["face"]] = on_head(_FACE)
    pose[:, holistic.COMPONENTS["right_hand"]] = arms[right][2]
    pose[:, holistic.COMPONENTS["left_hand"]] = arms[left][2]

    # detector noise, then missed hand detections
    noise_scale = np.full(holistic.N_POINTS, signer.jitter)
    noise_scale[holistic.COMPONENTS["face"]] *= 0.5
    noise_scale[holistic.COMPONENTS["left_hand"]] *= 0.7
    noise_scale[holistic.COMPONENTS["right_hand"]] *= 0.7
    pose += rng.standard_normal(pose.shape, dtype=np.float32) * noise_scale[None, :, None]
    for component in ("left_hand", "right_hand"):
        part = holistic.COMPONENTS[component]
        missed = _dropout_mask(rng, pose[:, part], head, signer)
        pose[missed, part] = np.nan

    return _to_mediapipe(pose, head)


def _to_mediapipe(pose: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Convert pixel poses (F, 543, 3) to MediaPipe's normalised coordinates and relative depths."""
    out = pose.copy()
    body, face = holistic.COMPONENTS["body"], holistic.COMPONENTS["face"]
    # body depth is relative to the hips' midpoint, face depth to the head centre, hand depth to the wrist
    hips = 0.5 * (pose[:, _BODY_INDEX["LEFT_HIP"], 2] + pose[:, _BODY_INDEX["RIGHT_HIP"], 2])
    out[:, body, 2] -= hips[:, None]
    out[:, face, 2] -= head[:, None, 2]
    for component in ("left_hand", "right_hand"):
        part = holistic.COMPONENTS[component]
        out[:, part, 2] -= pose[:, part.start, 2][:, None]
    out[..., 0] /= FRAME_WIDTH
    out[..., 1] /= FRAME_HEIGHT
    out[..., 2] /= FRAME_WIDTH
    return out.astype(np.float32)


# ---------------------------------------------------------------- entry points


def generate_demo_samples(seed: int = 0, size: str | DemoSize = "small") -> tuple[dict, list[Sample],
                                                                                   dict[str, np.ndarray]]:
    """Generate a demo corpus in memory.

    Returns:
        The metadata.json object, the samples in file order, and each sample's
        pose (F, 543, 3) float32 by sample id, exactly as `write_demo_corpus`
        writes them.
    """
    metadata, performances = plan_demo_corpus(seed, size)
    poses = {performance.sample.id: render_performance(performance, seed) for performance in performances}
    return metadata, [performance.sample for performance in performances], poses


def write_demo_corpus(out_dir: str | Path, seed: int = 0, size: str | DemoSize = "default",
                      overwrite: bool = False) -> Path:
    """Write a demo corpus folder; the same seed and size give byte-identical files.

    Poses are rendered one at a time while writing, so memory stays small.

    Raises:
        ValueError: for an invalid seed or size.
        CorpusError: if `out_dir` exists and `overwrite` is False.
    """
    out_dir = Path(out_dir)
    started = time.perf_counter()
    metadata, performances = plan_demo_corpus(seed, size)
    by_id = {performance.sample.id: performance for performance in performances}
    write_corpus(out_dir, metadata, [performance.sample for performance in performances],
                 lambda sample_id: render_performance(by_id[sample_id], seed), overwrite=overwrite)
    frames = sum(performance.n_frames for performance in performances)
    logger.info("demo corpus %s: %d samples, %d frames, %d sentences, %d signers, seed %d, %.1f s",
                out_dir, len(performances), frames, metadata["generator"]["sentences"],
                len(metadata["generator"]["signers"]), int(seed), time.perf_counter() - started)
    return out_dir
