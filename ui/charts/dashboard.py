"""The admin dashboard's charts (Altair), from the plain tables of :mod:`services.agreement.dashboard`.

One colour per status across every chart (:data:`STATUS_COLOURS`): green is done / relevant /
accepted, red is not relevant / rejected, amber unsure / skipped, grey pending, blue added /
rewritten. Every legend lists every label of its chart in full, and axis labels (provenance
names such as ``candidate: clip_image``) are never cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd

GREEN, RED, AMBER, GREY, BLUE = "#2e7d32", "#c62828", "#f9a825", "#9e9e9e", "#1565c0"
STATUS_COLOURS = {
    # assignments
    "done": GREEN,
    "skipped": AMBER,
    "pending": GREY,
    "not done (pending or skipped)": GREY,
    # labels given to items
    "said relevant": GREEN,
    "said not relevant": RED,
    "unsure": AMBER,
    "added": BLUE,
    # query verdicts (rejections by reason, in shades of red)
    "Accepted": GREEN,
    "Rewrote": BLUE,
    "Rejected": RED,
    "Rejected: ambiguous": "#ef5350",
    "Rejected: unanswerable": "#c62828",
    "Rejected: wrong": "#8e0000",
    "Rejected: duplicate": "#e57373",
    "Rejected: other": "#ff8a80",
}
OUTCOME_WORDS = {
    "confirmed": "said relevant",
    "rejected": "said not relevant",
    "unsure": "unsure",
    "added": "added",
}
VERDICT_WORDS = {"accept": "Accepted", "rewrite": "Rewrote", "reject": "Rejected"}
LEGEND = {"labelLimit": 0, "orient": "bottom", "columns": 4, "symbolLimit": 0}


def _colour(field: str, labels: Sequence[str], title: str) -> alt.Color:
    """A colour scale over ``labels`` (every one in the legend), in :data:`STATUS_COLOURS`."""
    labels = list(dict.fromkeys(labels))
    return alt.Color(
        f"{field}:N",
        title=title,
        scale=alt.Scale(domain=labels, range=[STATUS_COLOURS.get(x, GREY) for x in labels]),
        legend=alt.Legend(**LEGEND),
        sort=labels,
    )


def _axis(title: str | None = None) -> alt.Axis:
    return alt.Axis(labelLimit=0, title=title)


def dataset_progress(rows: list[dict[str, Any]]) -> alt.Chart | None:
    """Queries done and not done per dataset (rows: dataset, assigned, done)."""
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    frame["not done (pending or skipped)"] = frame["assigned"] - frame["done"]
    labels = ["done", "not done (pending or skipped)"]
    frame = frame.melt(id_vars="dataset", value_vars=labels, var_name="status", value_name="assignments")
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x="assignments:Q",
            y=alt.Y("dataset:N", axis=_axis()),
            color=_colour("status", labels, "status"),
            tooltip=["dataset", "status", "assignments"],
        )
    )


def annotator_progress(rows: list[dict[str, Any]]) -> alt.Chart | None:
    """Assignments done, skipped and pending per annotator (rows: annotator, assigned, done, skipped)."""
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    frame["pending"] = frame["assigned"] - frame["done"] - frame["skipped"]
    labels = ["done", "skipped", "pending"]
    frame = frame.melt(id_vars="annotator", value_vars=labels, var_name="status", value_name="assignments")
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x="assignments:Q",
            y=alt.Y("annotator:N", axis=_axis()),
            color=_colour("status", labels, "status"),
            tooltip=["annotator", "status", "assignments"],
        )
    )


def throughput(rows: list[dict[str, Any]]) -> alt.Chart | None:
    """Submissions per hour and annotator (rows: hour, annotator, submissions)."""
    if not rows:
        return None
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("hour:T", title="hour"),
            y="submissions:Q",
            color=alt.Color("annotator:N", legend=alt.Legend(**LEGEND)),
            tooltip=["hour:T", "annotator", "submissions"],
        )
    )


def median_time(rows: list[dict[str, Any]]) -> alt.Chart | None:
    """Median seconds per query per annotator."""
    if not rows:
        return None
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar(color=BLUE)
        .encode(
            x="median seconds per query:Q",
            y=alt.Y("annotator:N", axis=_axis()),
            tooltip=["annotator", "median seconds per query", "submissions"],
        )
    )


def verdicts(rows: list[dict[str, Any]]) -> alt.Chart | None:
    """Verdicts, rejections split by reason (rows: verdict, reason, count)."""
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    frame["verdict"] = frame["verdict"].map(lambda v: VERDICT_WORDS.get(v, v))
    frame["detail"] = [
        f"{v}: {r}" if r else v for v, r in zip(frame["verdict"], frame["reason"], strict=True)
    ]
    labels = [x for x in STATUS_COLOURS if x in set(frame["detail"])] + sorted(
        set(frame["detail"]) - set(STATUS_COLOURS)
    )
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x="count:Q",
            y=alt.Y("verdict:N", axis=_axis(), sort=list(VERDICT_WORDS.values())),
            color=_colour("detail", labels, "verdict (reason)"),
            tooltip=["verdict", "reason", "count"],
        )
    )


def positives(rows: list[dict[str, Any]]) -> alt.Chart | None:
    """Labels given to original positives and positives added, by provenance (rows: source, outcome, count)."""
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    frame["label"] = frame["outcome"].map(lambda o: OUTCOME_WORDS.get(o, o))
    labels = [x for x in OUTCOME_WORDS.values() if x in set(frame["label"])]
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x="count:Q",
            y=alt.Y("source:N", axis=_axis("provenance")),
            color=_colour("label", labels, "label"),
            tooltip=["source", "label", "count"],
        )
    )


def agreement_over_time(rows: list[dict[str, Any]]) -> alt.Chart | None:
    """Item-label agreement statistics per day (rows: day, statistic, value)."""
    if not rows:
        return None
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("day:T", title="day"),
            y=alt.Y("value:Q", scale=alt.Scale(domain=[-1, 1])),
            color=alt.Color("statistic:N", legend=alt.Legend(**LEGEND)),
            tooltip=["day:T", "statistic", alt.Tooltip("value:Q", format=".3f")],
        )
    )
