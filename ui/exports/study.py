"""A closed study's results written to a folder: the report, tables, every response, charts.

Here rather than in services because it draws (Altair); the figures come from
:mod:`services.study.results`, which checks who may read them.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt

from db.session import Database
from services.core.auth import Actor
from services.study.results import QualityResults, responses_frame, study_results
from ui.charts.study import distribution_chart, preference_chart
from ui.reports.study import distribution_table, report_lines, significance_table, summary_table


def write_results(db: Database, actor: Actor, name: str, out: Path) -> list[Path]:
    """Write a closed study's results: the report, tables (summary.csv, tests.csv with every
    significance test), every response (unblinded), charts.

    Charts are Altair specs, saved as HTML pages and Vega-Lite JSON.

    Raises:
        ResultsSealed: the study is still open (nothing is written).
        PermissionDenied: ``actor`` is not an admin.
    """
    results = study_results(db, actor, name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(filename: str, text: str) -> None:
        path = out / filename
        path.write_text(text, encoding="utf-8")
        written.append(path)

    put("report.txt", "\n".join(report_lines(results)) + "\n")
    put("summary.csv", summary_table(results).to_csv(index=False))
    put("tests.csv", significance_table(results).to_csv(index=False))
    put("responses.csv", responses_frame(db, actor, name).to_csv(index=False))
    charts: dict[str, alt.TopLevelMixin] = {"preference": preference_chart(results)}
    if isinstance(results, QualityResults):
        put("distribution.csv", distribution_table(results).to_csv(index=False))
        for c in results.criteria:
            charts[f"distribution_{c.replace(' ', '_')}"] = distribution_chart(results, c)
    for stem, chart in charts.items():
        put(f"{stem}.vl.json", chart.to_json())
        put(f"{stem}.html", chart.to_html())
    return written
