"""The agreement report for people: text lines (what `python cli.py agreement` prints) and the
dashboard's table, one row per statistic, with its units and what it means.

A statistic that cannot be computed reads "—" with the reason (or "needs two annotators on a
query" when no query has two), never ``None``. When percent agreement is high but kappa is low,
one line explains the prevalence paradox and points at Gwet's AC1.
"""

from __future__ import annotations

from services.agreement import stats
from services.agreement.coefficients import AC1, COHEN, FLEISS, KRIPPENDORFF, PERCENT
from services.agreement.report import AgreementReport

NEEDS_TWO = "needs two annotators on a query"
ALL = "all annotators"
TABLE_COLUMNS = ("on", "annotators", "statistic", "value", "units", "what it means")
MEANINGS = {
    PERCENT: "share of units both gave the same label (no chance correction)",
    COHEN: "agreement of this pair beyond chance: 1 perfect, 0 no better than chance; falls when one label dominates",
    AC1: "agreement beyond chance that stays stable when one label dominates (most items not relevant)",
    FLEISS: "agreement of all annotators beyond chance, over units rated by the usual number of annotators",
    KRIPPENDORFF: "agreement of all annotators beyond chance, any number of labels per unit",
}
UNITS = {"item labels": "items", "query verdicts": "queries"}
HIGH_PERCENT, LOW_KAPPA = 0.8, 0.4


def _fmt(c: stats.Coefficient) -> str:
    return "—" if c.value is None else f"{c.value:.3f}"


def value_text(c: stats.Coefficient) -> str:
    """A statistic's value for the table: a number, or why there is none."""
    if c.value is None:
        return NEEDS_TWO if not c.n_units else f"— ({c.reason})" if c.reason else "—"
    if c.name == PERCENT:
        return f"{100 * c.value:.1f} %"
    return f"{c.value:.3f}"


def _sections(report: AgreementReport) -> tuple[tuple[str, stats.AgreementSummary], ...]:
    return (("item labels", report.items), ("query verdicts", report.verdicts))


def agreement_table(report: AgreementReport) -> list[dict[str, str]]:
    """One row per (what, annotators, statistic): columns :data:`TABLE_COLUMNS`."""
    rows: list[dict[str, str]] = []

    def add(on: str, who: str, c: stats.Coefficient) -> None:
        units = f"{c.n_units} {UNITS[on]}" if c.n_units else "—"
        rows.append(
            dict(zip(TABLE_COLUMNS, (on, who, c.name, value_text(c), units, MEANINGS[c.name]), strict=True))
        )

    for on, summary in _sections(report):
        if not summary.pairs:
            rows.append(
                dict(zip(TABLE_COLUMNS, (on, ALL, "every statistic", NEEDS_TWO, "—", ""), strict=True))
            )
            continue
        for pair in summary.pairs:
            for c in (pair.percent, pair.cohen_kappa, pair.gwet_ac1):
                add(on, f"{pair.rater_a} / {pair.rater_b}", c)
        for c in (summary.fleiss_kappa, summary.krippendorff_alpha, summary.gwet_ac1):
            add(on, ALL, c)
    return rows


def paradox_line(report: AgreementReport) -> str | None:
    """One line when a pair agrees often but its kappa is low (the prevalence paradox), else None."""
    hits = [
        (on, pair)
        for on, summary in _sections(report)
        for pair in summary.pairs
        if pair.percent.value is not None
        and pair.percent.value >= HIGH_PERCENT
        and pair.cohen_kappa.value is not None
        and pair.cohen_kappa.value < LOW_KAPPA
    ]
    if not hits:
        return None
    on, pair = hits[0]
    more = f" (and {len(hits) - 1} more pair{'s' if len(hits) > 2 else ''})" if len(hits) > 1 else ""
    return (
        f"{pair.rater_a} / {pair.rater_b} agree on {100 * pair.percent.value:.0f} % of {on} but Cohen's kappa is "
        f"{pair.cohen_kappa.value:.2f}{more}: when nearly every label is the same, chance agreement is already high "
        f"and kappa collapses (the prevalence paradox); Gwet's AC1 ({_fmt(pair.gwet_ac1)}) does not."
    )


def report_lines(report: AgreementReport) -> list[str]:
    """The report as text lines (the CLI prints them; the page shows the same figures)."""
    lines = [f"Agreement on {report.dataset}"]
    for title, summary in (("Item labels", report.items), ("Query verdicts", report.verdicts)):
        lines.append(f"{title}: {summary.n_units} units, raters {', '.join(map(str, summary.raters)) or '—'}")
        if not summary.pairs:
            lines.append(f"  {NEEDS_TWO}")
            continue
        lines.append(
            f"  Fleiss' kappa {_fmt(summary.fleiss_kappa)}   Krippendorff's alpha {_fmt(summary.krippendorff_alpha)}"
            f"   Gwet's AC1 {_fmt(summary.gwet_ac1)}"
        )
        for pair in summary.pairs:
            lines.append(
                f"  {pair.rater_a} / {pair.rater_b}: {pair.n_units} units, agreement {_fmt(pair.percent)}, "
                f"Cohen's kappa {_fmt(pair.cohen_kappa)}, AC1 {_fmt(pair.gwet_ac1)}"
            )
    if note := paradox_line(report):
        lines.append(note)
    lines.append("Positive sets (per query, annotators' final positives):")
    for row in report.sets:
        jac = "—" if row.mean_jaccard is None else f"{row.mean_jaccard:.3f}"
        f1 = "—" if row.mean_f1 is None else f"{row.mean_f1:.3f}"
        lines.append(
            f"  {row.annotator_a} / {row.annotator_b}: {row.n_queries} queries, Jaccard {jac}, F1 {f1}"
        )
    share = f"{report.added_confirmed / report.added:.1%}" if report.added else "—"
    lines.append(
        f"Added positives also found by another annotator: {report.added_confirmed} / {report.added} ({share})"
    )
    return lines
