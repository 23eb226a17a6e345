"""A study's results, creation and progress for people: text lines and tables.

Pure functions of the study services' dataclasses (no streamlit): the CLI prints them, the admin
page shows the same figures, and :mod:`ui.exports.study` writes them to files.
"""

from __future__ import annotations

import pandas as pd

from db.enums import StudyKind
from services.agreement.stats import Coefficient
from services.study.admin import StudyProgress
from services.study.create import CreateReport
from services.study.results import PreferenceResults, QualityResults, SourceScores
from services.study.stats import PairTest, StatTest


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{round(100 * rate)} %"


def _interval(low: float | None, high: float | None, digits: int = 2, percent: bool = False) -> str:
    if low is None or high is None:
        return "—"
    if percent:
        return f"[{100 * low:.0f} %, {100 * high:.0f} %]"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _p(test: StatTest) -> str:
    return f"p = {test.p_value:.3g}" if test.p_value is not None else f"— ({test.reason})"


def _holm(pair: PairTest) -> str:
    return "—" if pair.p_holm is None else f"{pair.p_holm:.3g}"


def _statistic(test: StatTest) -> str:
    if test.statistic is None:
        return ""
    if test.name.startswith("chi-square"):
        return f"chi² = {test.statistic:.2f}, "
    return ""


def pair_line(pair: PairTest) -> str:
    """One system against another, e.g. ``bm25 vs clip_image: 5 – 2 (bm25 71 % [36 %, 92 %]); exact
    binomial p = 0.453, Holm p = 0.906``."""
    sh = pair.share
    return (
        f"{pair.first} vs {pair.second}: {pair.first_wins} – {pair.second_wins} "
        f"({pair.first} {_pct(sh.rate)} {_interval(sh.low, sh.high, percent=True)}); "
        f"exact binomial {_p(pair.test)}, Holm p = {_holm(pair)}"
    )


def _alpha(c: Coefficient) -> str:
    return f"{c.value:.3f}" if c.value is not None else f"— ({c.reason})"


def headline(results: QualityResults | PreferenceResults) -> str:
    """One line: mean scores and preferences per source, or the selection rate per system."""
    if isinstance(results, PreferenceResults):
        rates = " · ".join(f"{sh.label} {_pct(sh.rate)}" for sh in results.selections)
        return f"{rates}; against equal preference {_p(results.overall_test)}"
    first, second = results.sources
    criterion = results.criteria[0]
    overall = next((x for x in results.scores if x.criterion == criterion and x.source == first), None)
    other = next((x for x in results.scores if x.criterion == criterion and x.source == second), None)

    def mean(x: SourceScores | None) -> str:
        return "—" if x is None or x.mean is None else f"{x.mean:.2f}"

    for_first, for_second, tie = results.preference
    return (
        f"{first} {mean(overall)} vs {second} {mean(other)}; "
        f"preference {_pct(for_first.rate)} vs {_pct(for_second.rate)}, tie {_pct(tie.rate)}"
    )


def summary_table(results: QualityResults | PreferenceResults) -> pd.DataFrame:
    """The results table: per source, mean and interval and preference and interval (MCMR's);
    per system, selection rate and interval (MERIT's)."""
    if isinstance(results, PreferenceResults):
        return pd.DataFrame(
            [
                {
                    "system": sh.label,
                    "picks": sh.count,
                    "answers": sh.n,
                    "selection rate": sh.rate,
                    "95 % CI (Wilson)": _interval(sh.low, sh.high, percent=True),
                }
                for sh in results.selections
            ]
        )
    criterion = results.criteria[0]
    by_source = {x.source: x for x in results.scores if x.criterion == criterion}
    rows = []
    for sh in results.preference:
        x = by_source.get(sh.label)
        rows.append(
            {
                "source": sh.label,
                f"mean {criterion}": None if x is None else x.mean,
                "95 % CI (bootstrap)": "" if x is None else _interval(x.low, x.high),
                "ratings": None if x is None else x.n,
                "preferred": sh.rate,
                "95 % CI (Wilson)": _interval(sh.low, sh.high, percent=True),
                "answers": sh.count,
            }
        )
    return pd.DataFrame(rows)


def significance_table(results: QualityResults | PreferenceResults) -> pd.DataFrame:
    """Every significance test of the results, one row each (tests.csv; the page shows it too)."""
    rows = []

    def add(
        test: StatTest, compared: str, *, wins: str = "", share: str = "", holm: float | None = None
    ) -> None:
        rows.append(
            {
                "test": test.name,
                "compared": compared,
                "n": test.n,
                "wins": wins,
                "share (95 % Wilson CI)": share,
                "statistic": test.statistic,
                "p": test.p_value,
                "p (Holm)": holm,
                "note": test.reason or "",
            }
        )

    if isinstance(results, PreferenceResults):
        add(results.overall_test, " / ".join(results.systems) + ": equal preference")
        for pair in results.pairwise:
            sh = pair.share
            add(
                pair.test,
                f"{pair.first} vs {pair.second}",
                wins=f"{pair.first_wins} – {pair.second_wins}",
                share=f"{pair.first} {_pct(sh.rate)} {_interval(sh.low, sh.high, percent=True)}",
                holm=pair.p_holm,
            )
        return pd.DataFrame(rows)
    first, second = results.sources
    for d in results.paired:
        add(d.test, f"{d.criterion}: {first} − {second} per target")
    for_first, for_second, _tie = results.preference
    add(
        results.preference_test,
        f"preference {first} vs {second} (ties left out)",
        wins=f"{for_first.count} – {for_second.count}",
    )
    fs = results.first_shown
    add(
        results.first_shown_test,
        "position bias: the query shown first (A)",
        share=f"{_pct(fs.rate)} {_interval(fs.low, fs.high, percent=True)}",
    )
    return pd.DataFrame(rows)


TEST_FORMATS = {"statistic": "%.3f", "p": "%.3g", "p (Holm)": "%.3g"}


def readable(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> pd.DataFrame:
    """A results table for people: numbers formatted (``"percent"``, ``"int"`` or a %-format per
    column; default: the significance table's), "—" where there is no value, never None."""
    formats = TEST_FORMATS if formats is None else formats

    def fmt(spec: str | None, value: object) -> object:
        if value is None or (isinstance(value, float) and value != value):
            return "—"
        if spec == "percent":
            return _pct(float(value))
        if spec == "int":
            return str(int(value))
        return spec % value if spec else value

    out = frame.copy().astype(object)
    for column in out.columns:
        out[column] = [fmt(formats.get(column), v) for v in frame[column]]
    return out


def distribution_table(results: QualityResults) -> pd.DataFrame:
    """Ratings per criterion, source and score, with their share of the source's ratings."""
    return pd.DataFrame(
        [
            {
                "criterion": x.criterion,
                "source": x.source,
                "score": k,
                "ratings": v,
                "share": v / x.n if x.n else 0.0,
            }
            for x in results.scores
            for k, v in x.distribution.items()
        ]
    )


def report_lines(results: QualityResults | PreferenceResults) -> list[str]:
    """The results as text lines (the CLI prints them; the page shows the same figures)."""
    if isinstance(results, PreferenceResults):
        lines = [
            f"System preference study {results.study} on {results.dataset}: {results.n_trials} queries, "
            f"{results.n_responses} answers from {results.n_raters} raters, top-{results.top_n} results",
            headline(results),
            "Selection rate per system (picks credited to the system that ranked the chosen item highest):",
        ]
        for sh in results.selections:
            lines.append(
                f"  {sh.label:<16} {sh.count:>5} / {sh.n}  {_pct(sh.rate):>6}  95 % CI {_interval(sh.low, sh.high, percent=True)}"
            )
        lines.append(f"Picks shared by systems that ranked the item equally high: {results.n_shared}")
        t = results.overall_test
        lines.append(
            f"Against equal preference: {t.name} over {t.n} answers credited to "
            f"{'one of the two' if len(results.systems) == 2 else 'exactly one system'}: {_statistic(t)}{_p(t)}"
        )
        lines.append("Head to head (answers that credit one system and not the other; Holm-corrected):")
        lines.extend(f"  {pair_line(pair)}" for pair in results.pairwise)
        lines.append(
            "Picks by position shown: " + ", ".join(f"{sh.label} {sh.count}" for sh in results.by_position)
        )
        lines.append(f"Krippendorff's alpha (nominal, chosen item): {_alpha(results.agreement)}")
        return lines
    first, second = results.sources
    lines = [
        f"Query quality study {results.study} on {results.dataset}: {results.n_trials} targets, "
        f"{results.n_responses} answers from {results.n_raters} raters",
        headline(results),
    ]
    for c in results.criteria:
        lines.append(f"{c} (1-5):")
        for x in (x for x in results.scores if x.criterion == c):
            mean = "—" if x.mean is None else f"{x.mean:.2f}"
            dist = " ".join(f"{k}:{v}" for k, v in x.distribution.items())
            lines.append(
                f"  {x.source:<12} mean {mean}  95 % CI {_interval(x.low, x.high)}  n={x.n}  [{dist}]"
            )
        d = next(d for d in results.paired if d.criterion == c)
        mean = "—" if d.mean is None else f"{d.mean:+.2f}"
        stat = "" if d.test.statistic is None else f"W = {d.test.statistic:g}, "
        lines.append(
            f"  paired difference {first} − {second}: {mean} {_interval(d.low, d.high)} over {d.n_trials} targets; "
            f"Wilcoxon signed-rank {stat}{_p(d.test)}"
        )
        lines.append(f"  Krippendorff's alpha (ordinal): {_alpha(results.agreement[c])}")
    lines.append("Preference:")
    for sh in results.preference:
        lines.append(
            f"  {sh.label:<12} {sh.count:>5} / {sh.n}  {_pct(sh.rate):>6}  95 % CI {_interval(sh.low, sh.high, percent=True)}"
        )
    t = results.preference_test
    lines.append(f"  binomial test {first} vs {second} (ties left out, n = {t.n}): {_p(t)}")
    lines.append(f"  Krippendorff's alpha (nominal): {_alpha(results.agreement['preference'])}")
    fs = results.first_shown
    lines.append(
        f"Position bias: the query shown first (A) was preferred in {_pct(fs.rate)} of {fs.n} decisive answers "
        f"95 % CI {_interval(fs.low, fs.high, percent=True)}; binomial test {_p(results.first_shown_test)}"
    )
    return lines


def create_lines(report: CreateReport) -> list[str]:
    """What creating a study did, as text lines."""
    info = report.study
    unit = "targets" if info.kind == StudyKind.QUERY_QUALITY else "queries"
    lines = [
        f"created study {info.name} ({info.kind}) on {info.dataset}: {info.n_trials} {unit}, "
        f"{info.n_assignments} assignments, {info.raters_per_trial} raters per trial, seed {info.seed}"
    ]
    if report.sample is None:
        lines.append(f"  sampled every one of the {report.n_eligible} eligible {unit} (the default)")
    else:
        asked = f" (asked for {report.sample})" if report.sample > info.n_trials else ""
        lines.append(f"  sampled {info.n_trials} of {report.n_eligible} eligible {unit}{asked}")
    for reason, n in sorted(report.skipped.items()):
        lines.append(f"  left out: {n} x {reason}")
    lines.append("  raters: " + ", ".join(f"{rater} {n}" for rater, n in report.load.items()))
    if report.first_shown:
        lines.append(
            "  shown as A: " + ", ".join(f"{src} {n}" for src, n in sorted(report.first_shown.items()))
        )
    return lines


def progress_lines(progress: StudyProgress) -> list[str]:
    """Answers per rater, as text lines (counts only)."""
    lines = [
        f"study {progress.study} ({progress.status}): {progress.n_answered} of {progress.n_assignments} answered, "
        f"{progress.n_trials} trials"
    ]
    lines += [f"  {r.rater:<20} {r.answered:>5} / {r.total}" for r in progress.raters]
    return lines
