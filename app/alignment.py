"""Alignment across the split: how diagonal cross-attention is, by sentence length, signer and result."""

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app import aggregates, charts, controls, data, state
from signattention_core.metrics import METRICS

controls.header(
    "Alignment across the split",
    "Cross-attention of every sample, put on one time axis. Each step's attention row is resampled "
    "onto 100 equal bins of its video (0 is the first frame, 1 the last), then averaged over all "
    "samples whose hypothesis has the same number of glosses. A band from top left to bottom right "
    "means glosses attend to the video in order; the study found this band blurs as sentences get "
    "longer. Below, every alignment metric against sentence length with means and bootstrap 95% "
    "intervals, the cross share per decoding step, and the mean encoder self-attention. Sentence "
    "length here is the number of predicted glosses, because attention rows belong to predicted glosses.",
)

ref = data.current_run()
table = data.samples(ref)

layer, head, norm, context = controls.matrix_view(ref)

# the central figure: mean cross-attention per sentence length
st.subheader("Mean cross-attention per sentence length")
profiles = data.mean_profiles(ref, layer, head)
counts = profiles.groupby("length")["n"].max()
available = [int(length) for length in counts.index if length > 0]
if not available:
    st.info("Every hypothesis in this run is empty, so there is no cross-attention row to average.")
    st.stop()
default_lengths = [length for length in available if counts[length] >= 1][:8]
chosen = state.multiselect(
    "Sentence lengths (predicted glosses)", [str(length) for length in available], "lengths",
    help="Each panel averages every sample with this many predicted glosses.",
)
chosen_lengths = [int(length) for length in chosen] or default_lengths
panel = profiles[profiles["length"].isin(chosen_lengths)].copy()
if norm == "minmax":
    grouped = panel.groupby(["length", "step"])["weight"]
    low, high = grouped.transform("min"), grouped.transform("max")
    panel["display"] = np.where(high > low, (panel["weight"] - low) / (high - low).where(high > low, 1), 0.0)
else:
    panel["display"] = panel["weight"]
panel["row"] = np.where(panel["step"] == panel["length"], "EOS", (panel["step"] + 1).astype(str))
panel["panel"] = [f"{controls.count(int(length), 'gloss')} (n = {n})" for length, n in zip(panel["length"], panel["n"])]
panel["start"] = panel["bin"] / 100.0
panel["end"] = (panel["bin"] + 1) / 100.0
panel_order = panel.drop_duplicates("length").sort_values("length")["panel"].tolist()
row_order = [str(step) for step in range(1, max(chosen_lengths) + 1)] + ["EOS"]
grid = (
    alt.Chart(panel, width=170, height=150)
    .mark_rect()
    .encode(
        x=alt.X("start:Q", title="time (fraction of the video)", scale=alt.Scale(domain=[0, 1], nice=False)),
        x2="end:Q",
        y=alt.Y("row:O", sort=row_order, title="decoding step"),
        color=alt.Color("display:Q", scale=alt.Scale(scheme=charts.ATTENTION_SCHEME),
                        title="mean attention" if norm == "raw" else "min-max per row"),
        tooltip=["panel:N", "row:N", alt.Tooltip("time:Q", format=".3f"), alt.Tooltip("weight:Q", format=".4f")],
    )
    .facet(facet=alt.Facet("panel:N", title=None, sort=panel_order), columns=4)
    .resolve_scale(y="independent")
    .properties(title=charts.title("Mean cross-attention per sentence length", context))
)
charts.show(
    grid, panel[["length", "step", "row", "bin", "time", "weight", "display", "n"]],
    name=f"{ref.name}-mean-cross-attention-by-length",
    caption="Each panel: one row per decoding step, 100 time bins; n is the number of samples averaged. The EOS row "
            "is the final step (in the rare sample that hit the decoding length limit, the step that was cut off). "
            "Without a choice the first eight lengths are shown.",
)

# every alignment metric against sentence length
st.subheader("Alignment metrics by sentence length")
group_options = {"none": "All samples", "signer": "By signer", "exact_match": "By exact match"}
grouping = state.select("Group", list(group_options), "by", "none", format_func=group_options.get,
                        kind="radio", horizontal=True)
by = None if grouping == "none" else grouping
intervals = data.metric_intervals(ref, layer, head, by)
if intervals.empty:
    st.info("No metric has a value for these samples.")
else:
    intervals = intervals.assign(label=intervals["metric"].map(lambda name: METRICS[name].label))
    metric_context = controls.context(ref, layer=layer, head=head)
    encodings = {}
    if by:
        encodings = {"color": alt.Color(f"{by}:N", title=group_options[by].removeprefix("By ")),
                     "xOffset": alt.XOffset(f"{by}:N")}
    tooltip = ["label:N", "length:O", alt.Tooltip("mean:Q", format=".3f"), alt.Tooltip("low:Q", format=".3f"),
               alt.Tooltip("high:Q", format=".3f"), "n:Q"] + ([f"{by}:N"] if by else [])
    metric_base = alt.Chart(width=220, height=150)
    rules = metric_base.mark_rule().encode(
        x=alt.X("length:O", title="predicted glosses", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("low:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(format="~r")), y2="high:Q",
        tooltip=tooltip, **encodings,
    )
    dots = metric_base.mark_point(filled=True, size=40).encode(
        x=alt.X("length:O", title="predicted glosses"), y=alt.Y("mean:Q", title=None, scale=alt.Scale(zero=False)),
        tooltip=tooltip, **encodings,
    )
    # uniform attention as the "no alignment" reference, where it is defined
    reference = data.uniform_reference(ref)
    intervals = intervals.merge(reference, on=["metric", "length"], how="left")
    uniform_ticks = metric_base.mark_tick(color="#999999", thickness=2, size=18).encode(
        x=alt.X("length:O", title="predicted glosses"), y=alt.Y("uniform:Q", title=None),
        tooltip=["label:N", "length:O", alt.Tooltip("uniform:Q", title="uniform attention", format=".3f")],
    )
    metric_grid = (
        alt.layer(uniform_ticks, rules, dots, data=intervals)
        .facet(facet=alt.Facet("label:N", title=None, sort=list(METRICS[name].label for name in METRICS)), columns=3)
        .resolve_scale(y="independent")
        .properties(title=charts.title("Alignment metrics by sentence length", metric_context))
    )
    charts.show(
        metric_grid, intervals, name=f"{ref.name}-metrics-by-length-{grouping}",
        caption=f"Dots: mean over samples; bars: percentile bootstrap 95% interval of the mean "
                f"({aggregates.BOOTSTRAP_RESAMPLES} resamples, seed {aggregates.BOOTSTRAP_SEED}); grey ticks: "
                "the value for uniform attention over the median number of positions at that length (for gold "
                "mass, the mean over the samples of uniform attention on their own positions and spans), so a dot "
                "on its tick shows no more alignment than attending everywhere equally. Metrics are computed on "
                "raw weights without the EOS row; the mean over heads is the metric of the head-averaged matrix.",
    )
    with st.expander("How to read each metric"):
        st.markdown("\n".join(f"- **{info.label}** ({info.value_range}): {info.reading}" for info in METRICS.values()))

# cross share per decoding step
st.subheader("Cross share per decoding step")
shares = data.cross_share(ref, layer)
shares = shares[shares["length"].isin(chosen_lengths)]
if shares.empty:
    st.info("No cross share values for the chosen lengths.")
else:
    shares = shares.assign(step_label=np.where(shares["is_final"], "EOS", (shares["step"] + 1).astype(str)))
    share_context = controls.context(ref, layer=layer)
    share_base = charts.base(shares, "Cross share per decoding step", share_context, height=280)
    step_order = [str(step) for step in range(1, max(chosen_lengths) + 1)] + ["EOS"]
    line = share_base.mark_line(point=True).encode(
        x=alt.X("step_label:O", sort=step_order, title="decoding step", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("mean:Q", title="cross share", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("length:N", title="predicted glosses", scale=alt.Scale(scheme="category10")),
        tooltip=["length:N", "step_label:N", alt.Tooltip("mean:Q", format=".3f"), alt.Tooltip("low:Q", format=".3f"),
                 alt.Tooltip("high:Q", format=".3f"), "n:Q"],
    )
    band = share_base.mark_errorband(opacity=0.2).encode(
        x=alt.X("step_label:O", sort=step_order), y=alt.Y("low:Q", title="cross share"), y2="high:Q",
        color=alt.Color("length:N", scale=alt.Scale(scheme="category10")),
    )
    charts.show(
        alt.layer(band, line), shares, name=f"{ref.name}-cross-share-by-step",
        caption="Mean share of the cross-attention block in each step's output, with bootstrap 95% bands, "
                "one line per sentence length. Above 0.5 a step leans on the video more than on earlier glosses.",
    )

# mean encoder self-attention
st.subheader("Mean encoder self-attention")
size_options = [100, 500, 2000, ref.n_samples]
size_options = sorted({min(size, ref.n_samples) for size in size_options})
sample_count = state.select(
    "Samples averaged", size_options, "encoder_samples", size_options[0],
    format_func=lambda size: "all samples" if size >= ref.n_samples else f"about {size} samples",
    kind="segmented_control",
    help="Reading encoder self-attention means reading the attention file; fewer samples load faster.",
)
encoder_layer = controls.layer(ref, ref.n_encoder_layers, name="encoder_layer", label="Encoder layer")
encoder_matrix, used = data.encoder_mean(ref, encoder_layer, head, int(sample_count))
if used == 0:
    st.info("No encoder self-attention rows were found for this layer.")
    st.stop()
encoder_displayed = aggregates.minmax_rows(encoder_matrix) if norm == "minmax" else encoder_matrix
bins = encoder_matrix.shape[0]
cells = pd.DataFrame(
    {
        "query_bin": np.repeat(np.arange(bins), bins),
        "key_bin": np.tile(np.arange(bins), bins),
        "weight": encoder_matrix.ravel(),
        "display": encoder_displayed.ravel(),
    }
)
cells = cells.assign(
    query_start=cells["query_bin"] / bins, query_end=(cells["query_bin"] + 1) / bins,
    key_start=cells["key_bin"] / bins, key_end=(cells["key_bin"] + 1) / bins,
)
encoder_context = controls.context(ref, layer=encoder_layer, head=head, normalisation=norm,
                                   n_layers=ref.n_encoder_layers)
encoder_chart = (
    charts.base(cells, "Mean encoder self-attention", encoder_context, width=360, height=360)
    .mark_rect()
    .encode(
        x=alt.X("key_start:Q", title="attended time (fraction of the video)", scale=alt.Scale(domain=[0, 1], nice=False)),
        x2="key_end:Q",
        y=alt.Y("query_start:Q", title="attending time (fraction of the video)",
                scale=alt.Scale(domain=[0, 1], nice=False, reverse=True)),
        y2="query_end:Q",
        color=alt.Color("display:Q", scale=alt.Scale(scheme=charts.ATTENTION_SCHEME), title="mean attention"),
        tooltip=["query_bin:Q", "key_bin:Q", alt.Tooltip("weight:Q", format=".4f")],
    )
)
charts.show(
    encoder_chart, cells, name=f"{ref.name}-mean-encoder-self-attention",
    caption=f"Mean over {used} of {ref.n_samples} samples, taken as evenly spaced blocks of consecutive samples; "
            f"each matrix is resampled onto {bins} x {bins} equal time bins first. Clusters along the diagonal "
            "mean positions attend to nearby frames.",
)
