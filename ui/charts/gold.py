"""Gold figures as Altair charts: accuracy on gold with Wilson intervals, beside estimated competence."""

from __future__ import annotations

import altair as alt
import pandas as pd

from services.gold.dashboard import GoldDashboard

COMPETENCE = ("Dawid–Skene competence", "MACE competence")


def accuracy_frame(data: GoldDashboard) -> pd.DataFrame:
    """Long table: annotator, measure (gold accuracy or a model's competence), value, low, high."""
    rows = []
    for row in data.rows:
        if row["gold accuracy"] is not None:
            rows.append(
                {
                    "annotator": row["annotator"],
                    "measure": "gold accuracy",
                    "value": row["gold accuracy"],
                    "low": row["low"],
                    "high": row["high"],
                }
            )
        for measure in COMPETENCE:
            if row[measure] is not None:
                rows.append(
                    {
                        "annotator": row["annotator"],
                        "measure": measure,
                        "value": row[measure],
                        "low": None,
                        "high": None,
                    }
                )
    return pd.DataFrame(rows, columns=["annotator", "measure", "value", "low", "high"])


def accuracy_chart(data: GoldDashboard) -> alt.LayerChart:
    """Per annotator: gold accuracy (with its 95 % Wilson interval) and each model's competence, side by side;
    a rule at the warning threshold."""
    frame = accuracy_frame(data)
    base = alt.Chart(frame).encode(y=alt.Y("annotator:N", title=None), yOffset="measure:N")
    bars = base.mark_bar().encode(
        x=alt.X("value:Q", title="share", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("measure:N", title=None),
        tooltip=["annotator", "measure", alt.Tooltip("value:Q", format=".1%")],
    )
    whiskers = (
        base.transform_filter("datum.low != null").mark_errorbar(ticks=True).encode(x="low:Q", x2="high:Q")
    )
    threshold = (
        alt.Chart(pd.DataFrame({"x": [data.threshold / 100]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q")
    )
    return alt.layer(bars, whiskers, threshold)


def kinds_chart(data: GoldDashboard) -> alt.LayerChart:
    """Gold accuracy per annotator and kind of decision, with Wilson intervals."""
    frame = pd.DataFrame(data.kind_rows())
    base = alt.Chart(frame).encode(y=alt.Y("kind:N", title=None), yOffset="annotator:N")
    bars = base.mark_bar().encode(
        x=alt.X("rate:Q", title="right", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("annotator:N"),
        tooltip=["annotator", "kind", "right", "chances", alt.Tooltip("rate:Q", format=".1%")],
    )
    return alt.layer(bars, base.mark_errorbar(ticks=True).encode(x="low:Q", x2="high:Q"))
