"""Repeated sentences: does the model attend to the same moments every time a sentence is signed?"""

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app import aggregates, charts, controls, data, state

controls.header(
    "Repeated sentences",
    "A sentence group is every performance of the same reference sentence, by different signers "
    "and repetitions. For one group, the small multiples show each performance's cross-attention "
    "on normalised time (0 is the first frame, 1 the last), and the strip plot puts every "
    "performance's attention centroid for each gloss on one axis. **Repetition consistency** is the "
    "mean pairwise Wasserstein-1 distance between the performances' attention rows for the same "
    "gloss: the average shift in time between them, as a fraction of the video. 0 means every "
    "performance attends to the same moments; lower is more consistent. Only performances whose "
    "prediction at a gloss's position is that gloss are compared, because the others attend for a "
    "different sign.",
)

ref = data.current_run()
table = data.samples(ref)

layer, head, norm, context = controls.matrix_view(ref)
per_gloss, groups = data.consistency(ref, layer, head)
repeated = groups[groups["performances"] >= 2]
if repeated.empty:
    st.info("No sentence is performed more than once in this run, so there is nothing to compare.")
    st.stop()

# group choice, listed by size or by consistency
order_labels = {"size": "Most performances first", "consistency": "Most consistent first",
                "inconsistency": "Least consistent first"}
order = state.select("List groups by", list(order_labels), "order", "size", format_func=order_labels.get,
                     kind="radio", horizontal=True)
if order == "size":
    listed = repeated.sort_values(["performances", "consistency"], ascending=[False, True], na_position="last")
else:
    listed = repeated.sort_values("consistency", ascending=order == "consistency", na_position="last")
by_group = listed.set_index("sentence_group")


def describe_group(group: str) -> str:
    """Label a group with its reference, size and consistency."""
    entry = by_group.loc[group]
    score = "n/a" if pd.isna(entry["consistency"]) else f"{entry['consistency']:.3f}"
    return f"{entry['reference']} · {entry['performances']} performances · consistency {score}"


group = state.select("Sentence group", listed["sentence_group"].tolist(), "group", None,
                     format_func=describe_group)
members = table[table["sentence_group"] == group]
entry = by_group.loc[group]
st.markdown(
    f"**{controls.escape_markdown(entry['reference'])}** · {controls.count(entry['performances'], 'performance')} by "
    f"{controls.count(entry['signers'], 'signer')} · "
    f"{entry['exact_share']:.0%} exact matches · group consistency "
    + ("n/a" if pd.isna(entry["consistency"]) else f"**{entry['consistency']:.3f}**")
)

# each performance's cross-attention on normalised time
keys, profiles = data.step_profiles(ref, layer, head)
member_rows = np.flatnonzero(keys["sample_idx"].isin(members["sample_idx"]).to_numpy())
steps = keys.iloc[member_rows].reset_index(drop=True)
rows = profiles[member_rows]  # (steps of the group, T)
displayed = aggregates.minmax_rows(rows) if norm == "minmax" else rows
info = members.set_index("sample_idx")
steps = steps.assign(
    performance=[f"{info.at[idx, 'signer']} · rep {info.at[idx, 'repetition']} · {info.at[idx, 'id']}"
                 for idx in steps["sample_idx"]],
    gloss=(steps["step"] + 1).astype(str) + ". " + steps["token"].astype(str),
)
bins = rows.shape[1]
cells = pd.DataFrame(
    {
        "performance": np.repeat(steps["performance"].to_numpy(), bins),
        "sample_idx": np.repeat(steps["sample_idx"].to_numpy(), bins),
        "step": np.repeat(steps["step"].to_numpy(), bins),
        "gloss": np.repeat(steps["gloss"].to_numpy(), bins),
        "bin": np.tile(np.arange(bins), len(steps)),
        "weight": rows.ravel(),
        "display": displayed.ravel(),
    }
)
cells = cells.assign(start=cells["bin"] / bins, end=(cells["bin"] + 1) / bins)
performance_order = sorted(steps["performance"].unique())
multiples = (
    alt.Chart(cells, width=220, height=110)
    .mark_rect()
    .encode(
        x=alt.X("start:Q", title="time (fraction of the video)", scale=alt.Scale(domain=[0, 1], nice=False)),
        x2="end:Q",
        y=alt.Y("gloss:O", title=None, sort=alt.EncodingSortField("step")),
        color=alt.Color("display:Q", scale=alt.Scale(scheme=charts.ATTENTION_SCHEME),
                        title="attention" if norm == "raw" else "min-max per row"),
        tooltip=["performance:N", "gloss:N", "bin:Q", alt.Tooltip("weight:Q", format=".4f")],
    )
    .facet(facet=alt.Facet("performance:N", title=None, sort=performance_order), columns=3)
    .resolve_scale(y="independent")
    .properties(title=charts.title(f"Cross-attention of every performance of {entry['reference']}", context))
)
charts.show(multiples, cells, name=f"{ref.name}-{group}-performances",
            caption="One panel per performance: rows are its predicted glosses and the final (EOS) step, on 100 time bins.")

# centroids of every performance per reference gloss
paired = aggregates.reference_steps(steps.drop(columns=["gloss"]), members)
centroid, width = aggregates.profile_statistics(rows[paired["row"].to_numpy()])
paired = paired.assign(
    centroid=centroid,
    width=width,
    gloss_label=(paired["step"] + 1).astype(str) + ". " + paired["reference_gloss"].astype(str),
    prediction=np.where(paired["matches"], "predicted this gloss", "predicted another gloss"),
    signer=[info.at[idx, "signer"] for idx in paired["sample_idx"]],
)
label_order = paired.sort_values("step")["gloss_label"].drop_duplicates().tolist()
no_norm_context = controls.context(ref, layer=layer, head=head)
strip = (
    charts.base(paired, "Attention centroid of each performance, per reference gloss", no_norm_context,
                height=alt.Step(32))
    .mark_point(size=70, filled=True, opacity=0.8)
    .encode(
        x=alt.X("centroid:Q", title="attention centroid (fraction of the video)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("gloss_label:O", sort=label_order, title="reference gloss"),
        color=alt.Color("signer:N", title="signer"),
        shape=alt.Shape("prediction:N", title=None, scale=alt.Scale(range=["circle", "cross"])),
        tooltip=["performance:N", "gloss_label:N", "token:N", alt.Tooltip("centroid:Q", format=".3f"),
                 alt.Tooltip("width:Q", format=".3f", title="effective width")],
    )
)
charts.show(
    strip,
    paired[["performance", "sample_idx", "signer", "step", "reference_gloss", "token", "matches", "centroid", "width"]],
    name=f"{ref.name}-{group}-centroids",
    caption="One mark per performance and reference gloss, from the decoding step at the same index; crosses mark "
            "steps that predicted another gloss. Centroid and effective width are computed on the 100-bin profile.",
)

# consistency per gloss of this group
group_glosses = per_gloss[per_gloss["sentence_group"] == group]
group_glosses = group_glosses.assign(
    gloss_label=(group_glosses["gloss_index"] + 1).astype(str) + ". " + group_glosses["gloss"].astype(str)
).drop(columns=["sample_idx"])
if group_glosses.empty:
    st.info("No gloss of this group was predicted correctly by two or more performances, so no consistency "
            "can be computed.")
else:
    bar = (
        charts.base(group_glosses, "Repetition consistency per gloss", no_norm_context,
                    height=alt.Step(26))
        .mark_bar()
        .encode(
            x=alt.X("consistency:Q", title="mean pairwise Wasserstein-1 (fraction of the video)"),
            y=alt.Y("gloss_label:O", sort=label_order, title="reference gloss"),
            tooltip=["gloss_label:N", alt.Tooltip("consistency:Q", format=".4f"), "n_performances:Q"],
        )
    )
    charts.show(bar, group_glosses, name=f"{ref.name}-{group}-consistency-per-gloss",
                caption="Lower is more consistent. Only performances that predicted the gloss at its reference "
                        "position are compared; n_performances in the tooltip and the CSV says how many.")

# sentences ranked by consistency
st.subheader("Sentence groups ranked by consistency")
ranked = repeated.sort_values("consistency", na_position="last").reset_index(drop=True)
ranked.index = ranked.index + 1
st.dataframe(
    ranked, column_config={
        "consistency": st.column_config.NumberColumn("consistency", format="%.4f",
                                                     help="mean pairwise Wasserstein-1 per gloss, averaged over glosses"),
        "exact_share": st.column_config.NumberColumn("exact matches", format="percent"),
    },
    key="ranked_groups",
)
st.download_button("Ranking as CSV", data=lambda: charts.table_csv(ranked),
                   file_name=f"{charts.file_stem(ref.name)}-group-consistency.csv", mime="text/csv",
                   icon=":material/download:", on_click="ignore", key="ranking_csv")
st.caption(f"{len(ranked)} sentence groups with two or more performances; {no_norm_context.describe()}.")
