"""Sample: every attention matrix of one performance, with its pose and video."""

import difflib
import html

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app import aggregates, charts, controls, data, pose, state
from app.charts import TIME_AXES

controls.header(
    "Sample",
    "One performance: the reference glosses against the model's hypothesis, then the attention "
    "the model paid while decoding it. In the cross-attention heatmap each row is one predicted "
    "gloss (the last row is the end-of-sentence step) and each column one encoder position, drawn "
    "over the raw frames it stands for; brighter (yellow) cells got more weight. A roughly diagonal band means "
    "the glosses attend to the video in order. Layer and head choose the matrix; "
    "**Mean over heads** is an average computed for display. The pose player shows the skeleton at "
    "any frame with each gloss's attention there.",
)

ref = data.current_run()
table = data.samples(ref)
ids = table["id"].tolist()
position_of = {sample_id: i for i, sample_id in enumerate(ids)}


def _step_to(offset: int) -> None:
    """Move the sample picker by `offset` samples (the previous and next buttons)."""
    current = state.read("sample") or ids[0]
    index = min(max(position_of.get(current, 0) + offset, 0), len(ids) - 1)
    state.write("sample", ids[index], ids[0])
    state.drop_widget("sample")


# sample choice
pick, back, forward = st.columns([6, 1, 1], vertical_alignment="bottom")
with back:
    st.button("Previous", icon=":material/arrow_back:", on_click=_step_to, args=(-1,), key="previous",
              width="stretch")
with forward:
    st.button("Next", icon=":material/arrow_forward:", on_click=_step_to, args=(1,), key="next",
              width="stretch")
# a link to a sample that this run lacks must not pass off another sample as the one requested
requested_sample = st.query_params.get("sample")
if requested_sample is not None and requested_sample not in position_of:
    st.warning(f"Sample {requested_sample!r} from the link is not in run {ref.name}, so its first sample is shown.")
sample_id = state.select(
    "Sample", ids, "sample", ids[0], container=pick,
    format_func=lambda value: f"{value} · {table['reference'].iat[position_of[value]]}",
)
row = table.iloc[position_of[sample_id]]
sample_idx = int(row["sample_idx"])
attention = data.attention(ref, sample_idx)

# reference against hypothesis, differences marked
reference, hypothesis = list(row["reference_tokens"]), list(row["hypothesis_tokens"])
marked_reference, marked_hypothesis = [], []
styles = {"missing": "background:#f8d0d0;text-decoration:line-through", "extra": "background:#cfe8cf",
          "changed": "background:#fbe3b0"}
# difflib opcode -> style of the reference side and of the hypothesis side
opcode_styles = {"equal": ("", ""), "replace": (styles["changed"], styles["changed"]),
                 "delete": (styles["missing"], ""), "insert": ("", styles["extra"])}
for tag, r0, r1, h0, h1 in difflib.SequenceMatcher(a=reference, b=hypothesis, autojunk=False).get_opcodes():
    reference_style, hypothesis_style = opcode_styles[tag]
    for token in reference[r0:r1]:
        marked_reference.append(f'<span style="{reference_style};padding:0 3px">{html.escape(token)}</span>')
    for token in hypothesis[h0:h1]:
        marked_hypothesis.append(f'<span style="{hypothesis_style};padding:0 3px">{html.escape(token)}</span>')
# st.html, unlike Markdown, leaves `_`, `*` and `$` inside glosses alone
st.html(
    f"<div><b>Reference:</b> {' '.join(marked_reference) or '<em>empty</em>'}<br>"
    f"<b>Hypothesis:</b> {' '.join(marked_hypothesis) or '<em>empty (the model predicted end of sentence first)</em>'}"
    "</div>"
)
facts = [
    f"signer {row['signer']}",
    f"repetition {row['repetition']}" if pd.notna(row["repetition"]) else None,
    f"sentence BLEU {row['sentence_bleu']:.1f}",
    f"WER {row['wer']:.2f}",
    "exact match" if row["exact_match"] else "not an exact match",
    f"{row['n_frames']} frames" + (f" at {row['fps']:g} fps" if pd.notna(row["fps"]) else ""),
    f"{row['n_positions']} encoder positions",
]
st.caption(" · ".join(fact for fact in facts if fact))
if isinstance(row["text"], str) and row["text"]:
    st.caption(f"Translation: {row['text']}")
st.caption("Marked: yellow a changed gloss, red (struck through) a missing gloss, green an extra gloss.")

# view controls
first, second, third, fourth = st.columns(4)
layer = controls.layer(ref, container=first)
head = controls.head(ref, container=second)
norm = controls.normalisation(container=third)
fps = float(row["fps"]) if pd.notna(row["fps"]) and row["fps"] > 0 else None
time_axis = controls.time_axis(fps is not None, container=fourth)
context = controls.context(ref, layer=layer, head=head, normalisation=norm)
time_column, time_title = TIME_AXES[time_axis]
n_frames = int(row["n_frames"])


def to_time(frames: np.ndarray) -> np.ndarray:
    """Convert raw frame numbers to the chosen time axis."""
    frames = np.asarray(frames, dtype=np.float64)
    if time_axis == "seconds":
        return frames / fps
    if time_axis == "percent":
        return 100.0 * frames / n_frames
    return frames


frame_index = attention.frame_index.astype(np.int64)  # (P,)
position_end = np.append(frame_index[1:], n_frames)  # (P,) first frame after each position's slice
position_end = np.maximum(position_end, frame_index + 1)
tokens = attention.tokens
labels = [f"{step + 1}. {token}" for step, token in enumerate(tokens)]

# cross-attention: glosses against positions
cross = aggregates.select_head(attention.cross[layer], head)  # (N, P)
displayed = aggregates.minmax_rows(cross) if norm == "minmax" else cross
N, P = cross.shape
cells = pd.DataFrame(
    {
        "step": np.repeat(np.arange(N), P),
        "gloss": np.repeat(labels, P),
        "position": np.tile(np.arange(P), N),
        "frame": np.tile(frame_index, N),
        "start": np.tile(to_time(frame_index), N),
        "end": np.tile(to_time(position_end), N),
        "weight": cross.ravel(),
        "display": displayed.ravel(),
    }
)
tooltip = ["gloss:N", "position:Q", "frame:Q", alt.Tooltip("start:Q", title=time_title, format=".2f"),
           alt.Tooltip("weight:Q", format=".4f")]
heatmap = charts.attention_heatmap(
    cells, title=f"Cross-attention of {sample_id}", context=context, x="start", x2="end",
    x_title=time_title, y="gloss", y_title="predicted gloss (decoding step)", y_order=labels,
    value="display", value_title=charts.VALUE_TITLES[norm], tooltip=tooltip,
)
gold = row["gold_spans"]
if gold is not None and len(gold) == len(reference):
    spans = pd.DataFrame(
        {
            "gloss": [f"{i + 1}. {token}" for i, token in enumerate(reference)],
            "start_frame": [int(span[0]) for span in gold],
            "end_frame": [int(span[1]) for span in gold],
        }
    )
    spans = spans.assign(start=to_time(spans["start_frame"]), end=to_time(spans["end_frame"]))
    span_chart = (
        alt.Chart(spans, title=alt.Title("Gold gloss spans (reference)", anchor="start"), height=alt.Step(18))
        .mark_bar(color="#7f7f7f", opacity=0.7)
        .encode(
            x=alt.X("start:Q", title=time_title, scale=alt.Scale(nice=False, zero=False)),
            x2="end:Q",
            y=alt.Y("gloss:O", title="reference gloss", sort=spans["gloss"].tolist()),
            tooltip=["gloss:N", "start_frame:Q", "end_frame:Q"],
        )
    )
    combined = alt.vconcat(heatmap, span_chart).resolve_scale(x="shared")
    charts.show(combined, cells, name=f"{ref.name}-{sample_id}-cross-attention",
                caption="Grey bars: the annotated frame span of each reference gloss, on the same time axis.")
else:
    charts.show(heatmap, cells, name=f"{ref.name}-{sample_id}-cross-attention",
                caption="This sample has no gold gloss spans in the corpus.")

# one line per gloss over time
lines = (
    charts.base(cells, "Attention of each gloss over time", context, height=260)
    .mark_line(point=True, interpolate="step-after")
    .encode(
        x=alt.X("start:Q", title=time_title, scale=alt.Scale(nice=False, zero=False)),
        y=alt.Y("display:Q", title=charts.VALUE_TITLES[norm]),
        color=alt.Color("gloss:N", sort=labels, title="predicted gloss"),
        tooltip=tooltip,
    )
)
charts.show(lines, cells, name=f"{ref.name}-{sample_id}-gloss-lines")

# self-attention of the encoder and the decoder
encoder_column, decoder_column = st.columns(2)
with encoder_column:
    encoder_layer = controls.layer(ref, ref.n_encoder_layers, name="encoder_layer", label="Encoder layer")
    encoder_context = controls.context(ref, layer=encoder_layer, head=head, normalisation=norm,
                                       n_layers=ref.n_encoder_layers)
    encoder = aggregates.select_head(attention.encoder_self[encoder_layer], head)  # (P, P)
    encoder_displayed = aggregates.minmax_rows(encoder) if norm == "minmax" else encoder
    encoder_cells = pd.DataFrame(
        {
            "query_position": np.repeat(np.arange(P), P),
            "key_position": np.tile(np.arange(P), P),
            "query_start": np.repeat(to_time(frame_index), P),
            "query_end": np.repeat(to_time(position_end), P),
            "key_start": np.tile(to_time(frame_index), P),
            "key_end": np.tile(to_time(position_end), P),
            "weight": encoder.ravel(),
            "display": encoder_displayed.ravel(),
        }
    )
    encoder_chart = (
        charts.base(encoder_cells, "Encoder self-attention", encoder_context, height=320)
        .mark_rect()
        .encode(
            x=alt.X("key_start:Q", title=f"attended position, {time_title}", scale=alt.Scale(nice=False, zero=False)),
            x2="key_end:Q",
            y=alt.Y("query_start:Q", title=f"attending position, {time_title}",
                    scale=alt.Scale(nice=False, zero=False, reverse=True)),
            y2="query_end:Q",
            color=alt.Color("display:Q", scale=alt.Scale(scheme=charts.ATTENTION_SCHEME), title="attention"),
            tooltip=["query_position:Q", "key_position:Q", alt.Tooltip("weight:Q", format=".4f")],
        )
    )
    charts.show(encoder_chart, encoder_cells, name=f"{ref.name}-{sample_id}-encoder-self-attention")
with decoder_column:
    st.caption(f"Decoder layer {layer + 1} of {ref.n_decoder_layers}, as chosen above.")
    decoder = aggregates.select_head(attention.decoder_self[layer], head)  # (N, N)
    decoder_displayed = aggregates.minmax_rows(decoder) if norm == "minmax" else decoder
    input_labels = aggregates.decoder_input_labels(tokens)
    decoder_cells = pd.DataFrame(
        {
            "query": np.repeat(labels, N),
            "key": np.tile(input_labels, N),
            "weight": decoder.ravel(),
            "display": decoder_displayed.ravel(),
        }
    )
    decoder_chart = charts.matrix_heatmap(
        decoder_cells, title="Decoder self-attention", context=context, x="key", y="query",
        x_title="attended input (BOS, then the glosses predicted before)", y_title="decoding step",
        x_order=input_labels, y_order=labels,
        tooltip=["query:N", "key:N", alt.Tooltip("weight:Q", format=".4f")], height=320,
    )
    charts.show(decoder_chart, decoder_cells, name=f"{ref.name}-{sample_id}-decoder-self-attention")

# cross share per step
steps = data.contributions(ref)
steps = steps[(steps["sample_idx"] == sample_idx) & (steps["layer"] == layer)]
steps = steps.assign(gloss=[labels[step] for step in steps["step"]])
share_context = controls.context(ref, layer=layer)
share_chart = (
    charts.base(steps, "Cross share per decoding step", share_context, height=220)
    .mark_bar()
    .encode(
        x=alt.X("gloss:O", sort=labels, title="decoding step", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("cross_share:Q", title="cross share", scale=alt.Scale(domain=[0, 1])),
        tooltip=["gloss:N", alt.Tooltip("cross_share:Q", format=".3f"), alt.Tooltip("self_norm:Q", format=".3f"),
                 alt.Tooltip("cross_norm:Q", format=".3f"), alt.Tooltip("signed_diff:Q", format=".4f")],
    )
)
half = charts.base(steps, "", share_context).mark_rule(strokeDash=[4, 4], color="grey").encode(y=alt.datum(0.5))
charts.show(
    alt.layer(share_chart, half), steps[["step", "gloss", "cross_share", "self_norm", "cross_norm", "signed_diff"]],
    name=f"{ref.name}-{sample_id}-cross-share",
    caption="Cross share = ‖cross-attention block output‖ / (‖self-attention block output‖ + ‖cross-attention "
            "block output‖) at each step, all heads together; above 0.5 the step leans on the video. "
            "The study's signed mean difference is in the tooltip and the CSV.",
)


# pose player
def skeleton_chart(points: pd.DataFrame, edges: pd.DataFrame, skeleton: np.ndarray, frame: int,
                   context: charts.ViewContext) -> alt.LayerChart:
    """Draw one frame's skeleton on axes fixed over the whole sample, so it does not jump."""
    (x_low, x_high), (y_low, y_high) = pose.extent(skeleton)
    x_scale = alt.Scale(domain=[x_low, x_high], nice=False)
    y_scale = alt.Scale(domain=[y_low, y_high], nice=False, reverse=True)
    lines = (
        charts.base(edges, f"Skeleton at frame {frame}", context, width=260, height=300)
        .mark_rule(strokeWidth=2)
        .encode(
            x=alt.X("x:Q", scale=x_scale, axis=None), y=alt.Y("y:Q", scale=y_scale, axis=None),
            x2="x2:Q", y2="y2:Q", color=alt.Color("part:N", title="part", legend=alt.Legend(orient="bottom")),
        )
    )
    dots = alt.Chart(points).mark_circle(size=18).encode(
        x=alt.X("x:Q", scale=x_scale, axis=None), y=alt.Y("y:Q", scale=y_scale, axis=None), color="part:N",
    )
    return alt.layer(lines, dots)


@st.fragment
def pose_player() -> None:
    """Draw the skeleton at one frame, the video frame beside it, and each gloss's attention there."""
    st.subheader("Pose player")
    source = pose.load(ref, sample_idx, sample_id)
    if source.pose is None:
        st.info(f"{source.message} The pose player is skipped.")
        return

    # the frame, and the encoder position whose slice of frames contains it
    skeleton = source.pose
    last = max(min(n_frames, skeleton.shape[0]) - 1, 0)
    frame = state.select(
        "Frame", list(range(last + 1)), "frame", 0, kind="select_slider",
        format_func=lambda value: f"{value} ({value / fps:.2f} s)" if fps else str(value),
    )
    position = int(np.searchsorted(frame_index, frame, side="right") - 1)
    position = min(max(position, 0), P - 1)
    frame_context = controls.context(ref, layer=layer, head=head, normalisation=norm)
    body, image, bars = st.columns([3, 2, 3])

    with body:
        points, edges = pose.skeleton_frame(skeleton, frame)
        if points.empty:
            st.info(f"No keypoint was detected at frame {frame}.")
        else:
            charts.show(skeleton_chart(points, edges, skeleton, frame, frame_context), points.assign(frame=frame),
                        name=f"{ref.name}-{sample_id}-skeleton-{frame}", key="skeleton")

    with image:
        picture = pose.video_frame(str(source.video), frame) if source.video is not None else None
        if source.video is None:
            st.caption("The corpus has no video for this sample.")
        elif picture is None:
            st.caption(f"Frame {frame} could not be read from {source.video.name}.")
        else:
            st.image(picture, caption=f"Video frame {frame}", width="stretch")

    with bars:
        at_frame = pd.DataFrame({"gloss": labels, "weight": cross[:, position], "display": displayed[:, position]})
        bar_chart = (
            charts.base(at_frame, f"Attention at frame {frame} (position {position + 1})", frame_context, height=260)
            .mark_bar()
            .encode(
                x=alt.X("display:Q", title=charts.VALUE_TITLES[norm]),
                y=alt.Y("gloss:O", sort=labels, title="predicted gloss"),
                tooltip=["gloss:N", alt.Tooltip("weight:Q", format=".4f")],
            )
        )
        charts.show(bar_chart, at_frame, name=f"{ref.name}-{sample_id}-attention-at-{frame}", key="at_frame")
        st.caption(
            f"Frame {frame} falls in encoder position {position + 1}, which starts at frame "
            f"{frame_index[position]}. Pose from {source.origin}; missing points are not drawn."
        )


pose_player()
