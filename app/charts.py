"""Altair chart builders shared by the pages, and the export row under each chart.

Every chart starts from `base`, which fixes the title (what the chart shows)
and the subtitle (run, split, layer, head or average, normalisation), so the
context travels with an exported PNG or SVG. `show` draws a chart with its
caption and its download buttons: PNG and SVG rendered by vl-convert when
clicked, CSV with the data the chart was drawn from, and the Vega-Lite
specification.
"""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
import vl_convert

# sequential scale for attention weights; light is low, dark is high
ATTENTION_SCHEME = "viridis"

# position of each time axis choice: (column in chart data, axis title)
TIME_AXES: dict[str, tuple[str, str]] = {
    "frame": ("frame", "frame number"),
    "seconds": ("seconds", "time (s)"),
    "percent": ("percent", "% of video"),
}

TIME_AXIS_LABELS: dict[str, str] = {
    "frame": "Frame number",
    "seconds": "Seconds",
    "percent": "% of video",
}

NORMALISATION_LABELS: dict[str, str] = {
    "raw": "raw attention weights",
    "minmax": "min-max scaled per row (display only)",
}

# colour and axis title of the displayed weight, by normalisation
VALUE_TITLES: dict[str, str] = {"raw": "attention weight", "minmax": "min-max scaled weight"}


@dataclass(frozen=True)
class ViewContext:
    """The facts every chart title states."""

    run: str  # run (artifact folder) name
    split: str | None = None  # split(s) the data comes from, e.g. "test"; None when not relevant
    layer: int | None = None  # 0-based layer; shown 1-based
    n_layers: int | None = None  # layers in the module shown
    head: int | None = None  # 0-based head, -1 for the mean over heads; shown 1-based
    n_heads: int | None = None  # heads per layer
    normalisation: str | None = None  # key of NORMALISATION_LABELS, None when not applicable

    def describe(self) -> str:
        """Return the context as one line, e.g. `run demo · test · layer 1 of 2 · head 3 of 8`."""
        parts = [f"run {self.run}"]
        if self.split:
            parts.append(f"split {self.split}")
        if self.layer is not None:
            of_layers = f" of {self.n_layers}" if self.n_layers else ""
            parts.append(f"layer {self.layer + 1}{of_layers}")
        if self.head is not None:
            parts.append(head_label(self.head, self.n_heads).lower())
        if self.normalisation:
            parts.append(NORMALISATION_LABELS[self.normalisation])
        return " · ".join(parts)


def head_label(head: int, n_heads: int | None = None) -> str:
    """Label a 0-based head index for the UI; -1 is the average over heads."""
    if head < 0:
        return f"Mean over {n_heads} heads" if n_heads else "Mean over heads"
    return f"Head {head + 1} of {n_heads}" if n_heads else f"Head {head + 1}"


def title(text: str, context: ViewContext) -> alt.Title:
    """Return a chart title with the context as its subtitle (for facets, concatenations, layers)."""
    return alt.Title(text, subtitle=context.describe(), anchor="start")


def base(data: pd.DataFrame, text: str, context: ViewContext, **properties) -> alt.Chart:
    """Start a chart on `data` with the title and the context as its subtitle."""
    return alt.Chart(data, title=title(text, context), **properties)


def attention_heatmap(
    data: pd.DataFrame,
    *,
    title: str,
    context: ViewContext,
    x: str,
    x2: str,
    x_title: str,
    y: str,
    y_title: str,
    y_order: Sequence[str],
    value: str = "display",
    value_title: str = "attention",
    tooltip: Sequence[str | alt.Tooltip] = (),
    height: int | None = None,
) -> alt.Chart:
    """Draw one rectangle per cell from `x` to `x2` (quantitative) on rows `y` (ordinal)."""
    # a fixed step per row: with a plain number, Streamlit fits titles and axes into that height
    chart = base(data, title, context, height=height or alt.Step(22))
    return chart.mark_rect().encode(
        x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(nice=False, zero=False)),
        x2=f"{x2}:Q",
        y=alt.Y(f"{y}:O", title=y_title, sort=list(y_order)),
        color=alt.Color(f"{value}:Q", title=value_title, scale=alt.Scale(scheme=ATTENTION_SCHEME)),
        tooltip=list(tooltip),
    )


def matrix_heatmap(
    data: pd.DataFrame,
    *,
    title: str,
    context: ViewContext,
    x: str,
    y: str,
    x_title: str,
    y_title: str,
    x_order: Sequence | None = None,
    y_order: Sequence | None = None,
    value: str = "display",
    value_title: str = "attention",
    tooltip: Sequence[str | alt.Tooltip] = (),
    width: int | str = "container",
    height: int = 300,
) -> alt.Chart:
    """Draw a square-cell heatmap with ordinal axes (self-attention, binned profiles)."""
    x_sort = list(x_order) if x_order is not None else "ascending"
    y_sort = list(y_order) if y_order is not None else "ascending"
    many_columns = x_order is not None and len(x_order) > 40
    # gloss labels are wider than a cell, so they are slanted to stay readable
    text_labels = x_order is not None and any(isinstance(label, str) for label in x_order)
    x_axis = alt.Axis(labelOverlap=many_columns, labelAngle=-45 if text_labels else 0)
    return (
        base(data, title, context, width=width, height=height)
        .mark_rect()
        .encode(
            x=alt.X(f"{x}:O", title=x_title, sort=x_sort, axis=x_axis),
            y=alt.Y(f"{y}:O", title=y_title, sort=y_sort, axis=alt.Axis(labelOverlap=True)),
            color=alt.Color(f"{value}:Q", title=value_title, scale=alt.Scale(scheme=ATTENTION_SCHEME)),
            tooltip=list(tooltip),
        )
    )


# sample counts are whole numbers, so the axis never shows ticks such as 0.5
_COUNT_AXIS = alt.Axis(tickMinStep=1, format="d")


def histogram(
    data: pd.DataFrame, column: str, *, title: str, context: ViewContext, x_title: str,
    discrete: bool = False, max_bins: int = 40, edges: Sequence[float] | None = None,
) -> alt.Chart:
    """Draw a histogram of one column.

    `discrete` gives one bar per integer value. `edges` fixes the bins, and
    the last bin is closed on both sides (as in `numpy.histogram`), so a
    score of exactly 100 falls in the 95-100 bin.
    """
    if edges is not None:
        counts, bounds = np.histogram(data[column].dropna().to_numpy(), bins=np.asarray(edges, dtype=float))
        binned = pd.DataFrame({"start": bounds[:-1], "end": bounds[1:], "samples": counts})
        return (
            base(binned, title, context, height=220)
            .mark_bar()
            .encode(
                x=alt.X("start:Q", title=x_title, scale=alt.Scale(domain=[bounds[0], bounds[-1]], nice=False)),
                x2="end:Q",
                # a bar ranged on x needs its own y baseline, or Vega-Lite draws it as a thin tick
                y=alt.Y("samples:Q", title="samples", axis=_COUNT_AXIS),
                y2=alt.datum(0),
                tooltip=["start:Q", "end:Q", "samples:Q"],
            )
        )
    chart = base(data, title, context, height=220)
    if discrete:
        x = alt.X(f"{column}:O", title=x_title, axis=alt.Axis(labelAngle=0))
    else:
        x = alt.X(f"{column}:Q", title=x_title, bin=alt.Bin(maxbins=max_bins))
    return chart.mark_bar().encode(x=x, y=alt.Y("count():Q", title="samples", axis=_COUNT_AXIS), tooltip=["count():Q"])


def show(
    chart: alt.TopLevelMixin,
    data: pd.DataFrame,
    *,
    name: str,
    caption: str | None = None,
    key: str | None = None,
) -> None:
    """Draw a chart, its caption, and PNG, SVG, CSV and Vega-Lite downloads of it.

    `name` becomes the file name stem; `key` (default `name`) keeps widget keys
    unique when the same chart kind appears twice on a page. Files are made
    only when a button is clicked.
    """
    key = key or name
    st.altair_chart(chart, width="stretch", theme=None, key=f"chart:{key}")
    if caption:
        st.caption(caption)

    # the view (layer, head, normalisation) goes into file names and the CSV, so exports of
    # different heads cannot be mixed up once they leave the page
    view = chart_subtitle(chart)
    stem = export_stem(name, view)
    downloads = (
        ("PNG", lambda: chart_png(chart), "png", "image/png", ":material/image:"),
        ("SVG", lambda: chart_svg(chart), "svg", "image/svg+xml", ":material/draw:"),
        ("CSV", lambda: table_csv(data, view), "csv", "text/csv", ":material/table:"),
        ("Vega-Lite", lambda: chart_spec(chart), "vl.json", "application/json", ":material/data_object:"),
    )
    for column, (label, make, suffix, mime, icon) in zip(st.columns(4, width=560), downloads, strict=True):
        column.download_button(
            label, data=make, file_name=f"{stem}.{suffix}", mime=mime, key=f"{suffix}:{key}", icon=icon,
            on_click="ignore",
        )


def chart_png(chart: alt.TopLevelMixin) -> bytes:
    """Render a chart as PNG at twice the screen resolution, with vl-convert."""
    return vl_convert.vegalite_to_png(full_spec(chart), scale=2)


def chart_svg(chart: alt.TopLevelMixin) -> str:
    """Render a chart as SVG with vl-convert."""
    return vl_convert.vegalite_to_svg(full_spec(chart))


def chart_spec(chart: alt.TopLevelMixin) -> str:
    """Return the chart's Vega-Lite specification with its data inlined, as JSON."""
    return json.dumps(full_spec(chart), ensure_ascii=False, indent=1)


def full_spec(chart: alt.TopLevelMixin) -> dict:
    """Return the Vega-Lite dictionary with every data row inlined.

    Altair refuses data sets over 5,000 rows by default; a heatmap of one
    long sample is larger, so the limit is lifted for exports.
    """
    with alt.data_transformers.disable_max_rows():
        return chart.to_dict()


def table_csv(data: pd.DataFrame, view: str | None = None) -> bytes:
    """Encode a table as UTF-8 CSV with a byte-order mark, so spreadsheets read Greek correctly.

    A `view` description (run, split, layer, head, normalisation) becomes a
    first column, so the file states what it shows.
    """
    if view:
        data = data.copy()
        data.insert(0, "view", view)
    return data.to_csv(index=False).encode("utf-8-sig")


def chart_subtitle(chart: alt.TopLevelMixin) -> str | None:
    """Return the context subtitle of a chart or of its first titled part, or None."""
    pending = [chart]
    while pending:
        part = pending.pop(0)
        heading = getattr(part, "title", alt.Undefined)
        subtitle = getattr(heading, "subtitle", alt.Undefined)
        if isinstance(subtitle, str) and subtitle:
            return subtitle
        for attribute in ("layer", "vconcat", "hconcat", "concat"):
            children = getattr(part, attribute, alt.Undefined)
            if isinstance(children, list):
                pending.extend(children)
        inner = getattr(part, "spec", alt.Undefined)
        if inner is not alt.Undefined:
            pending.append(inner)
    return None


def export_stem(name: str, view: str | None) -> str:
    """Return the file name stem of a chart's downloads: its name, then layer, head and scale."""
    return file_stem(f"{name}-{view_slug(view)}" if view else name)


def view_slug(view: str) -> str:
    """Shorten a view description for a file name: drop the run and split, keep layer, head, scale."""
    parts = [part.strip() for part in view.split("·")]
    kept = [part for part in parts if not part.startswith(("run ", "split "))]
    return "-".join(kept)


def file_stem(text: str) -> str:
    """Turn a chart name into a safe file name stem (letters of any script, digits, `-`, `_`)."""
    stem = re.sub(r"[^\w\-]+", "-", text, flags=re.UNICODE).strip("-")
    return stem or "chart"
