"""A study's results as Altair charts: score distributions, and preferences with Wilson intervals."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from services.study.results import PreferenceResults, QualityResults
from services.study.stats import Share
from ui.reports.study import distribution_table


def distribution_chart(results: QualityResults, criterion: str) -> alt.Chart:
    """Score distribution per source for one criterion: grouped bars of the share of ratings."""
    frame = distribution_table(results)
    frame = frame[frame["criterion"] == criterion]
    return (
        alt.Chart(frame, title=f"{criterion}: score distribution")
        .mark_bar()
        .encode(
            x=alt.X("score:O", title="score"),
            xOffset="source:N",
            y=alt.Y("share:Q", title="share of ratings", axis=alt.Axis(format="%")),
            color=alt.Color("source:N", title="source"),
            tooltip=["source", "score", "ratings", alt.Tooltip("share:Q", format=".1%")],
        )
    )


def _shares_chart(shares: Sequence[Share], what: str, title: str) -> alt.LayerChart:
    frame = pd.DataFrame(
        [
            {what: sh.label, "rate": sh.rate or 0.0, "low": sh.low, "high": sh.high, "count": sh.count}
            for sh in shares
        ]
    )
    base = alt.Chart(frame, title=title).encode(y=alt.Y(f"{what}:N", sort=None, title=None))
    bars = base.mark_bar().encode(
        x=alt.X(
            "rate:Q", title="share of answers", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
        ),
        color=alt.Color(f"{what}:N", legend=None),
        tooltip=[what, "count", alt.Tooltip("rate:Q", format=".1%")],
    )
    whiskers = base.mark_errorbar(ticks=True).encode(x=alt.X("low:Q"), x2="high:Q")
    return alt.layer(bars, whiskers)


def preference_chart(results: QualityResults | PreferenceResults) -> alt.LayerChart:
    """Preference (query quality) or selection rate (system preference) with Wilson intervals."""
    if isinstance(results, PreferenceResults):
        return _shares_chart(results.selections, "system", "Selection rate per system (95 % Wilson CI)")
    return _shares_chart(results.preference, "preferred", "Preference (95 % Wilson CI)")
