"""The canonical MediaPipe Holistic keypoint layout.

Every pose array in this package has 543 points in this order: 33 body
(pose) points, 468 face points, 21 left-hand points and 21 right-hand
points. Names follow MediaPipe's landmark enums, which `.pose` files also
use in their headers; face points are named by their mesh index as a string.
"""

BODY_NAMES: tuple[str, ...] = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER",
    "RIGHT_EYE", "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT",
    "MOUTH_RIGHT", "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW",
    "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY", "RIGHT_PINKY", "LEFT_INDEX",
    "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP", "RIGHT_HIP",
    "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL",
    "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
)

HAND_NAMES: tuple[str, ...] = (
    "WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP",
    "INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP",
    "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP",
    "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
    "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP",
)

N_BODY = len(BODY_NAMES)
N_FACE = 468
N_HAND = len(HAND_NAMES)
N_POINTS = N_BODY + N_FACE + 2 * N_HAND  # 543

FACE_NAMES: tuple[str, ...] = tuple(str(i) for i in range(N_FACE))

# canonical slices of the 543-point array, by component
COMPONENTS: dict[str, slice] = {
    "body": slice(0, N_BODY),
    "face": slice(N_BODY, N_BODY + N_FACE),
    "left_hand": slice(N_BODY + N_FACE, N_BODY + N_FACE + N_HAND),
    "right_hand": slice(N_BODY + N_FACE + N_HAND, N_POINTS),
}

# the study's component names map onto ours
COMPONENT_ALIASES: dict[str, str] = {
    "body": "body",
    "pose": "body",
    "face": "face",
    "lhand": "left_hand",
    "left_hand": "left_hand",
    "rhand": "right_hand",
    "right_hand": "right_hand",
}

# component names used in `.pose` headers written from MediaPipe Holistic
POSE_COMPONENT_NAMES: dict[str, str] = {
    "POSE_LANDMARKS": "body",
    "FACE_LANDMARKS": "face",
    "LEFT_HAND_LANDMARKS": "left_hand",
    "RIGHT_HAND_LANDMARKS": "right_hand",
}

_NAMES_BY_COMPONENT: dict[str, tuple[str, ...]] = {
    "body": BODY_NAMES,
    "face": FACE_NAMES,
    "left_hand": HAND_NAMES,
    "right_hand": HAND_NAMES,
}

_INDEX_BY_COMPONENT: dict[str, dict[str, int]] = {
    component: {name: COMPONENTS[component].start + i for i, name in enumerate(names)}
    for component, names in _NAMES_BY_COMPONENT.items()
}

# skeleton edges within the body component (upper body, arms and hands of the pose model)
BODY_EDGES: tuple[tuple[int, int], ...] = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
    (11, 23), (12, 24), (23, 24),
    (15, 17), (15, 19), (15, 21), (17, 19),
    (16, 18), (16, 20), (16, 22), (18, 20),
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
)

# skeleton edges within one hand component: palm and the five fingers
HAND_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (5, 9), (9, 10), (10, 11), (11, 12),
    (9, 13), (13, 14), (14, 15), (15, 16),
    (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)


def canonical_component(name: str) -> str:
    """Return our component name for ours or the study's (`lhand`, `rhand`).

    Raises:
        ValueError: if the name is unknown; the message lists accepted names.
    """
    try:
        return COMPONENT_ALIASES[name.strip().lower()]
    except KeyError:
        accepted = ", ".join(sorted(COMPONENT_ALIASES))
        raise ValueError(f"unknown landmark component {name!r}; accepted: {accepted}") from None


def point_index(component: str, name: str) -> int | None:
    """Return the canonical index (0-542) of a named point, or None if it has no place."""
    return _INDEX_BY_COMPONENT[canonical_component(component)].get(name)


def component_indices(components: tuple[str, ...] | list[str]) -> list[int]:
    """Return the canonical indices of the given components, in canonical order."""
    requested = {canonical_component(name) for name in components}
    indices: list[int] = []
    for component, part in COMPONENTS.items():
        if component in requested:
            indices.extend(range(part.start, part.stop))
    return indices
