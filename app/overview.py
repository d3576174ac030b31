"""Run overview: what was extracted, how well it translates, and the filterable sample table."""

import math

import streamlit as st

from app import charts, controls, data, filters, state
from signattention_core.metrics import METRICS

controls.header(
    "Run overview",
    "The model and corpus behind this run, its translation scores, and every extracted sample. "
    "Filter the table by gloss (case and accents are ignored, so `εγω` finds `ΕΓΩ(1)`; several "
    "words find that run of glosses), signer, split, sentence length, exact match or score, "
    "then select a row to open its attention on the **Sample** page. The histograms describe "
    "the filtered samples.",
)

ref = data.current_run()
run = ref.run
table = data.samples(ref)

# summary of the model, the corpus and the translation scores
model = run.get("model", {})
corpus = run.get("corpus", {})
decoding = run.get("decoding", {})
summary = run.get("summary", {})
left, middle, right = st.columns(3)
with left:
    st.subheader("Model")
    st.markdown(
        f"- training run: `{run.get('run_name', '?')}`\n"
        f"- width {model.get('d_model', '?')}, {ref.n_heads} heads, "
        f"{ref.n_encoder_layers} encoder and {ref.n_decoder_layers} decoder layers\n"
        f"- {model.get('n_parameters', '?')} parameters, {model.get('n_features', '?')} input features\n"
        f"- decoding: {decoding.get('method', '?')}"
        + (f", beam {decoding.get('beam_size')}" if decoding.get("method") == "beam" else "")
    )
with middle:
    st.subheader("Corpus")
    st.markdown(
        f"- corpus: **{controls.escape_markdown(str(corpus.get('name', '?')))}**\n"
        f"- split: {ref.split}, {ref.n_samples} samples\n"
        f"- {controls.count(table['sentence_group'].nunique(), 'sentence group')}, "
        f"{controls.count(table['signer'].nunique(), 'signer')}\n"
        f"- extracted {run.get('created', '?')}"
    )
with right:
    st.subheader("Translation")
    corpus_scores = {key: summary[key] for key in ("bleu_1", "bleu_4", "wer", "exact_match") if key in summary}
    labels = {"bleu_1": "BLEU-1", "bleu_4": "BLEU-4", "wer": "WER", "exact_match": "Exact match"}
    columns = st.columns(2) + st.columns(2)
    for column, (key, value) in zip(columns, corpus_scores.items(), strict=False):
        score = f"{value:.1%}" if key == "exact_match" else f"{value:.3g}"
        column.metric(labels[key], score)
    st.caption(
        f"Corpus-level scores from run.json. Mean sentence BLEU {table['sentence_bleu'].mean():.1f}, "
        f"mean WER {table['wer'].mean():.3f}, exact match {table['exact_match'].mean():.1%} "
        f"over the {len(table)} samples."
    )
with st.expander("run.json"):
    st.json({key: value for key, value in run.items() if key != "vocabulary"}, expanded=False)

# filters
st.subheader("Samples")
with st.container(border=True):
    first, second, third = st.columns(3)
    gloss_query = state.text(
        "Gloss or gloss sequence", "gloss", container=first,
        placeholder="e.g. ΕΓΩ ΘΕΛΩ", help="Case- and accent-insensitive; several words match consecutive glosses.",
    )
    gloss_source = state.select(
        "Search in", list(filters.GLOSS_SOURCES), "in", "reference", container=first,
        format_func=str.capitalize,
    )
    signers = state.multiselect("Signer", sorted(table["signer"].unique()), "signer", container=second,
                                placeholder="all signers")
    splits = state.multiselect("Split", sorted(table["split"].unique()), "split", container=second,
                               placeholder="all splits")
    exact = state.select("Exact match", list(filters.EXACT_CHOICES), "exact", "any", container=second,
                         format_func=str.capitalize)
    shortest, longest = int(table["length"].min()), int(table["length"].max())
    length = (shortest, longest)
    if longest > shortest:
        length = state.float_range("Reference length (glosses)", "length", (shortest, longest), step=1,
                                   container=third)
    bleu = state.float_range("Sentence BLEU", "bleu", (0.0, 100.0), step=1.0, container=third)
    highest_wer = max(1.0, float(table["wer"].max()))
    wer = state.float_range("WER", "wer", (0.0, round(highest_wer + 0.05, 1)), step=0.05, container=third)

    metric_name = state.select(
        "Alignment metric range", ["none", *METRICS], "metric", "none", container=first,
        format_func=lambda name: "No alignment filter" if name == "none" else METRICS[name].label,
    )
    metric_values = None
    metric_range = None
    if metric_name != "none":
        layer = controls.layer(ref, container=first)
        head = controls.head(ref, container=first)
        values = data.metrics(ref, layer, head).set_index("sample_idx")[metric_name]
        finite = values.dropna()
        if finite.empty:
            first.caption(f"No sample has a {METRICS[metric_name].label} value.")
        else:
            low = math.floor(float(finite.min()) * 1000) / 1000
            high = math.ceil(float(finite.max()) * 1000) / 1000
            if high > low:
                metric_range = state.float_range(
                    METRICS[metric_name].label, "metric_range", (low, high),
                    step=0.001, container=first, help=METRICS[metric_name].reading,
                )
                metric_values = values

chosen = filters.SampleFilter(
    gloss_query=gloss_query,
    gloss_source=gloss_source,
    signers=tuple(signers),
    splits=tuple(splits),
    length=length,
    exact=exact,
    bleu=bleu,
    wer=wer,
    metric=metric_name if metric_values is not None else None,
    metric_range=metric_range,
)
filtered = filters.apply(table, chosen, metric_values)
st.markdown(f"**{len(filtered)} of {len(table)} samples** match the filters.")
if filtered.empty:
    st.info("No sample matches these filters. Widen a range or clear the gloss search.")
    st.stop()

# the sample table; selecting a row opens the sample page
columns = ["id", "split", "signer", "repetition", "reference", "hypothesis", "exact_match", "sentence_bleu",
           "wer", "length", "hypothesis_length", "n_frames", "text"]
view = filtered[columns].reset_index(drop=True)
selection = st.dataframe(
    view,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="sample_table",
    column_config={
        "id": st.column_config.TextColumn("Sample"),
        "exact_match": st.column_config.CheckboxColumn("Exact"),
        "sentence_bleu": st.column_config.NumberColumn("BLEU", format="%.1f"),
        "wer": st.column_config.NumberColumn("WER", format="%.2f"),
        "length": st.column_config.NumberColumn("Glosses"),
        "hypothesis_length": st.column_config.NumberColumn("Predicted glosses"),
        "n_frames": st.column_config.NumberColumn("Frames"),
        "text": st.column_config.TextColumn("Translation"),
    },
)
picked_rows = selection.selection.rows if selection is not None else []
if picked_rows:
    picked = view.iloc[picked_rows[0]]["id"]
    st.switch_page("sample.py", query_params={"run": ref.name, "sample": picked})

open_left, open_right, export = st.columns([3, 1, 1], vertical_alignment="bottom")
sample_id = open_left.selectbox("Open a sample", view["id"].tolist(), key="open_sample")
if open_right.button("Open", icon=":material/open_in_new:", key="open_button"):
    st.switch_page("sample.py", query_params={"run": ref.name, "sample": sample_id})
export.download_button(
    "Table as CSV", data=lambda: charts.table_csv(view), file_name=f"{charts.file_stem(ref.name)}-samples.csv",
    mime="text/csv", icon=":material/download:", on_click="ignore", key="table_csv",
)

# distributions of the filtered samples
st.subheader("Distributions")
context = controls.context(ref)
filtered_note = f"{len(filtered)} of {len(table)} samples (the filtered table)."
lengths, frames, scores = st.columns(3)
with lengths:
    chart = charts.histogram(filtered[["length"]], "length", title="Sentence length", context=context,
                             x_title="reference glosses", discrete=True)
    charts.show(chart, filtered[["id", "length"]], name=f"{ref.name}-sentence-length", caption=filtered_note)
with frames:
    chart = charts.histogram(filtered[["n_frames"]], "n_frames", title="Frames per sample", context=context,
                             x_title="raw frames")
    charts.show(chart, filtered[["id", "n_frames"]], name=f"{ref.name}-frames", caption=filtered_note)
with scores:
    chart = charts.histogram(filtered[["sentence_bleu"]], "sentence_bleu", title="Sentence BLEU", context=context,
                             x_title="sentence BLEU (0-100)", edges=range(0, 105, 5))
    charts.show(chart, filtered[["id", "sentence_bleu"]], name=f"{ref.name}-sentence-bleu", caption=filtered_note)
