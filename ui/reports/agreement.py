"""The agreement report as text lines: what `python cli.py agreement` prints (the page shows the same figures)."""

from __future__ import annotations

from services.agreement import stats
from services.agreement.report import AgreementReport


def _fmt(c: stats.Coefficient) -> str:
    return "—" if c.value is None else f"{c.value:.3f}"


def report_lines(report: AgreementReport) -> list[str]:
    """The report as text lines (the CLI prints them; the page shows the same figures)."""
    lines = [f"Agreement on {report.dataset}"]
    for title, summary in (("Item labels", report.items), ("Query verdicts", report.verdicts)):
        lines.append(f"{title}: {summary.n_units} units, raters {', '.join(map(str, summary.raters)) or '—'}")
        lines.append(
            f"  Fleiss' kappa {_fmt(summary.fleiss_kappa)}   Krippendorff's alpha {_fmt(summary.krippendorff_alpha)}"
            f"   Gwet's AC1 {_fmt(summary.gwet_ac1)}"
        )
        for pair in summary.pairs:
            lines.append(
                f"  {pair.rater_a} / {pair.rater_b}: {pair.n_units} units, agreement {_fmt(pair.percent)}, "
                f"Cohen's kappa {_fmt(pair.cohen_kappa)}, AC1 {_fmt(pair.gwet_ac1)}"
            )
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
