"""Gloss concordance: every time the model predicted one gloss, and where in the video it looked."""

import altair as alt
import streamlit as st

from app import charts, controls, data, state
from signattention_core.text import match_key

controls.header(
    "Gloss concordance",
    "Every occurrence of one predicted gloss across the run, with the span of video it attended to. "
    "The **centroid** is the attention-weighted mean time of the step's cross-attention row and the "
    "**width** its effective width (exp(entropy) / bins), both as fractions of the video and both "
    "computed on the row resampled onto 100 equal time bins. In the strip plot each line is one "
    "occurrence, from centroid − width/2 to centroid + width/2; the dotted tick marks where a perfectly "
    "diagonal alignment would put that gloss. Search the list by typing; case and accents are ignored.",
)

ref = data.current_run()
vocabulary = data.gloss_vocabulary(ref)
if not vocabulary:
    st.info("The model predicted no gloss in this run.")
    st.stop()

first, second, third = st.columns(3)
typed = state.text("Filter glosses", "find", container=first, placeholder="e.g. εγω",
                   help="Case- and accent-insensitive substring of the gloss.")
needle = match_key(typed)
listed = [gloss for gloss in vocabulary if needle in match_key(gloss)] if needle else vocabulary
if not listed:
    st.info(f"No predicted gloss contains {typed!r}.")
    st.stop()
gloss = state.select("Gloss", listed, "gloss", listed[0], container=first)
layer = controls.layer(ref, container=second)
head = controls.head(ref, container=third)
context = controls.context(ref, layer=layer, head=head)
found = data.occurrences(ref, gloss, layer, head)
if found.empty:
    st.info(f"{gloss} is never predicted in this run.")
    st.stop()

group_labels = {"signer": "Signer", "position": "Position in the sentence", "hypothesis_length": "Sentence length"}
rows_by = state.select("Rows of the strip plot", list(group_labels), "rows", "signer",
                       format_func=group_labels.get, kind="radio", horizontal=True)
st.markdown(
    f"**{controls.escape_markdown(gloss)}** is predicted {controls.count(len(found), 'time')} in "
    f"{controls.count(found['sample_idx'].nunique(), 'sample')} by "
    f"{controls.count(found['signer'].nunique(), 'signer')}; {found['matches_reference'].mean():.0%} of the occurrences stand "
    "where the reference has the same gloss."
)

# strip plot of attended spans
found = found.assign(
    row=found[rows_by].astype(str),
    # a fixed offset per occurrence separates overlapping lines and keeps exported figures reproducible
    jitter=((found["sample_idx"].astype("int64") * 7919 + found["step"].astype("int64") * 104729) % 997) / 997,
    correct=found["matches_reference"].map({True: "matches the reference", False: "differs from the reference"}),
)
row_order = sorted(found["row"].unique(), key=lambda value: (len(value), value))
strip_base = charts.base(found, f"Attended span of every {gloss}", context, height=alt.Step(36))
encodings = {"y": alt.Y("row:O", sort=row_order, title=group_labels[rows_by], axis=alt.Axis(labelLimit=200)),
             "yOffset": alt.YOffset("jitter:Q", scale=alt.Scale(domain=[0, 1]))}
tooltip = ["id:N", "signer:N", "position:Q", "hypothesis_length:Q", "hypothesis:N", "reference:N",
           alt.Tooltip("centroid:Q", format=".3f"), alt.Tooltip("width:Q", format=".3f")]
spans = strip_base.mark_rule(opacity=0.5).encode(
    x=alt.X("start:Q", title="time (fraction of the video)", scale=alt.Scale(domain=[0, 1])), x2="end:Q",
    color=alt.Color("correct:N", title=None), tooltip=tooltip, **encodings,
)
centres = strip_base.mark_point(filled=True, size=30).encode(
    x="centroid:Q", color="correct:N", tooltip=tooltip, **encodings,
)
ideal = strip_base.mark_tick(color="black", thickness=1, strokeDash=[2, 2]).encode(
    x="mean(relative_position):Q", y=alt.Y("row:O", sort=row_order),
    tooltip=[alt.Tooltip("mean(relative_position):Q", format=".3f", title="ideal diagonal time (mean)")],
)
columns = ["id", "signer", "split", "position", "hypothesis_length", "relative_position", "centroid", "width",
           "start", "end", "centroid_frame", "centroid_seconds", "matches_reference", "exact_match",
           "hypothesis", "reference"]
charts.show(
    alt.layer(spans, centres, ideal), found[columns], name=f"{ref.name}-concordance-{gloss}",
    caption="Points: centroids; lines: centroid ± width/2, clipped to the video. Vertical offsets within a row "
            "only separate occurrences.",
)

# the table, exportable
st.subheader("Occurrences")
st.dataframe(
    found[columns],
    hide_index=True,
    key="occurrence_table",
    column_config={
        "id": st.column_config.TextColumn("Sample"),
        "position": st.column_config.NumberColumn("Position", help="1-based step of the gloss in the hypothesis"),
        "hypothesis_length": st.column_config.NumberColumn("Glosses"),
        "relative_position": st.column_config.NumberColumn("Ideal time", format="%.3f",
                                                           help="(position - 0.5) / glosses: the diagonal"),
        "centroid": st.column_config.NumberColumn("Centroid", format="%.3f"),
        "width": st.column_config.NumberColumn("Width", format="%.3f"),
        "start": st.column_config.NumberColumn("Span start", format="%.3f"),
        "end": st.column_config.NumberColumn("Span end", format="%.3f"),
        "centroid_frame": st.column_config.NumberColumn("Centroid frame", format="%.1f"),
        "centroid_seconds": st.column_config.NumberColumn("Centroid (s)", format="%.2f"),
        "matches_reference": st.column_config.CheckboxColumn("Matches reference"),
        "exact_match": st.column_config.CheckboxColumn("Exact sentence"),
    },
)
st.download_button(
    "Occurrences as CSV", data=lambda: charts.table_csv(found[columns]),
    file_name=f"{charts.file_stem(ref.name)}-{charts.file_stem(gloss)}-occurrences.csv", mime="text/csv",
    icon=":material/download:", on_click="ignore", key="occurrences_csv",
)
