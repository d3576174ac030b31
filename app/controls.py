"""Controls that several pages share: layer, head, normalisation and time axis.

Each control keeps its value in the URL (see `state`) under the same
parameter name on every page, so a chosen layer or head follows the reader
from page to page.
"""

import re

import streamlit as st

from app import state
from app.charts import NORMALISATION_LABELS, TIME_AXIS_LABELS, ViewContext, head_label
from app.data import RunRef


def layer(ref: RunRef, n_layers: int | None = None, *, container=None, name: str = "layer",
          label: str = "Decoder layer") -> int:
    """Pick a 0-based layer, shown 1-based; `n_layers` defaults to the decoder's."""
    n_layers = n_layers or ref.n_decoder_layers
    return state.select(
        label, list(range(n_layers)), name, n_layers - 1,
        format_func=lambda value: f"Layer {value + 1} of {n_layers}", container=container,
    )


def head(ref: RunRef, *, container=None) -> int:
    """Pick a 0-based head, or -1 for the mean over heads (the default)."""
    options = [-1, *range(ref.n_heads)]
    return state.select(
        "Head", options, "head", -1,
        format_func=lambda value: head_label(value, ref.n_heads), container=container,
        help="Weights are stored per head; the mean over heads is computed when read.",
    )


def normalisation(*, container=None) -> str:
    """Pick how weights are coloured: raw weights or min-max per row (display only)."""
    return state.select(
        "Colour scale", list(NORMALISATION_LABELS), "norm", "raw",
        format_func=lambda value: {"raw": "Raw weights", "minmax": "Min-max per row"}[value],
        kind="radio", container=container, horizontal=True,
        help="Min-max scaling stretches each row to 0-1 for display; metrics always use raw weights.",
    )


def time_axis(fps_known: bool, *, container=None) -> str:
    """Pick the time axis: frame number, seconds (only with a known frame rate) or % of video."""
    options = list(TIME_AXIS_LABELS) if fps_known else ["frame", "percent"]
    chosen = state.select(
        "Time axis", options, "time", "frame",
        format_func=TIME_AXIS_LABELS.get, kind="radio", container=container,
        horizontal=True,
    )
    if not fps_known:
        (container or st).caption("Seconds are unavailable: the corpus gives no frame rate for this sample.")
    return chosen


def context(ref: RunRef, *, layer: int | None = None, head: int | None = None,
            normalisation: str | None = None, n_layers: int | None = None) -> ViewContext:
    """Build the chart context of the current run."""
    return ViewContext(
        run=ref.name,
        split=ref.split,
        layer=layer,
        n_layers=n_layers or (ref.n_decoder_layers if layer is not None else None),
        head=head,
        n_heads=ref.n_heads if head is not None else None,
        normalisation=normalisation,
    )


def matrix_view(ref: RunRef) -> tuple[int, int, str, ViewContext]:
    """Draw the layer, head and colour-scale controls in one row; return them and their context."""
    first, second, third = st.columns(3)
    chosen_layer = layer(ref, container=first)
    chosen_head = head(ref, container=second)
    norm = normalisation(container=third)
    return chosen_layer, chosen_head, norm, context(ref, layer=chosen_layer, head=chosen_head, normalisation=norm)


def escape_markdown(text: str) -> str:
    """Escape the characters Streamlit's Markdown gives a meaning (`_`, `*`, `$`, brackets and more)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$])", r"\\\1", text)


def count(n: int, noun: str) -> str:
    """Write a count with its noun, plural when needed: `1 signer`, `3 signers`, `2 glosses`."""
    if n == 1:
        return f"{n} {noun}"
    suffix = "es" if noun.endswith(("s", "sh", "ch", "x", "z")) else "s"
    return f"{n} {noun}{suffix}"


def header(title: str, description: str) -> None:
    """Write the page title and the paragraph on what the page shows and how to read it."""
    st.title(title)
    st.markdown(description)
