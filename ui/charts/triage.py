"""The dashboard's triage chart: the share of queries per modality shortcut (Altair)."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from ui.words import SHORTCUTS


def shortcut_shares(rows: list[dict[str, Any]]) -> alt.Chart | None:
    """Share of queries per modality shortcut (rows: shortcut, queries, share); None when none."""
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    frame["category"] = frame["shortcut"].map(lambda v: SHORTCUTS.get(v, v))
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(
                "share:Q", title="share of queries", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
            ),
            y=alt.Y(
                "category:N", sort=[SHORTCUTS[k] for k in SHORTCUTS], axis=alt.Axis(labelLimit=0, title=None)
            ),
            tooltip=["category", "queries", alt.Tooltip("share:Q", format=".1%")],
        )
    )
