"""Blind rating studies: query quality and system preference."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import database, user_errors
from services.core.auth import SYSTEM


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@user_errors
def study_create(
    dataset: str = typer.Option(..., "--dataset", "-d", help="The dataset to sample from."),
    name: str = typer.Option(
        ..., "--name", help="The study's name; raters see it, so it may not name a source."
    ),
    kind: str = typer.Option(
        "quality", "--kind", help="quality (score two query sources) or preference (pick the best result)."
    ),
    sources: str = typer.Option(
        "generated,human", "--sources", help="quality: the two query sources compared."
    ),
    systems: str = typer.Option(
        "", "--systems", help="preference: rankings of the dataset, e.g. clip_image,bm25,hybrid."
    ),
    run: list[str] | None = typer.Option(
        None, "--run", help="preference: one more system as NAME=PATH of a TREC run file (repeatable)."
    ),
    top: int = typer.Option(1, "--top", help="preference: show each system's top 1 or top 3."),
    sample: int | None = typer.Option(
        None,
        "--sample",
        help="How many trials to sample (default: every eligible one; the report says how many).",
    ),
    raters_per_trial: int = typer.Option(3, "--raters-per-trial", help="Raters per trial."),
    raters: str = typer.Option(
        "", "--raters", help="Comma-separated user names to draw raters from (default: every active user)."
    ),
    seed: int = typer.Option(
        0, "--seed", help="Seed of the sample, the raters, the A/B sides and the order."
    ),
    rubric: Path | None = typer.Option(
        None,
        "--rubric",
        help='quality: a JSON file [{"name", "question", "anchors": [5 texts]}], up to 3 criteria.',
    ),
) -> None:
    """Create a blind study: sample trials, assign raters, counterbalance what is shown first."""
    import json

    from services.core.errors import ValidationError
    from services.study.create import create_preference_study, create_quality_study
    from services.study.rubric import rubric_from_json
    from ui.reports.study import create_lines

    db = database()
    common = {
        "dataset": dataset,
        "name": name,
        "sample": sample,
        "raters_per_trial": raters_per_trial,
        "raters": _csv(raters) or None,
        "seed": seed,
    }
    if kind == "quality":
        criteria = None
        if rubric is not None:
            try:
                criteria = rubric_from_json(json.loads(rubric.read_text(encoding="utf-8")))
            except (OSError, ValueError) as e:
                raise ValidationError(f"cannot read the rubric {rubric}: {e}") from e
        report = create_quality_study(db, SYSTEM, sources=_csv(sources), rubric=criteria, **common)
    elif kind == "preference":
        run_files = {}
        for spec in run or []:
            run_name, sep, path = spec.partition("=")
            if not sep or not run_name.strip():
                raise ValidationError(f"--run takes NAME=PATH, not {spec!r}")
            run_files[run_name.strip()] = Path(path)
        report = create_preference_study(
            db, SYSTEM, systems=_csv(systems), run_files=run_files, top_n=top, **common
        )
    else:
        raise ValidationError(f"--kind is quality or preference, not {kind!r}")
    for line in create_lines(report):
        typer.echo(line)


@user_errors
def study_progress(name: str = typer.Argument(..., help="The study.")) -> None:
    """Answers per rater (counts only: scores stay sealed while the study is open)."""
    from services.study.admin import study_progress as progress
    from ui.reports.study import progress_lines

    for line in progress_lines(progress(database(), SYSTEM, name)):
        typer.echo(line)


@user_errors
def study_close(name: str = typer.Argument(..., help="The study.")) -> None:
    """Close a study: no more answers; its results are unsealed."""
    from services.study.admin import close_study

    info = close_study(database(), SYSTEM, name)
    typer.echo(f"closed study {info.name}: {info.n_answered} of {info.n_assignments} answered")
    typer.echo(f"results: python cli.py study results {info.name} [--out DIR]")


@user_errors
def study_results(
    name: str = typer.Argument(..., help="The study (closed)."),
    out: Path | None = typer.Option(
        None, "--out", help="Also write the report, tables, responses CSV and charts here."
    ),
) -> None:
    """The results of a closed study: means, intervals, tests, preferences, agreement, position bias."""
    from services.study.results import study_results as results
    from ui.exports.study import write_results
    from ui.reports.study import report_lines

    db = database()
    for line in report_lines(results(db, SYSTEM, name)):
        typer.echo(line)
    if out is not None:
        written = write_results(db, SYSTEM, name, out)
        typer.echo(f"wrote {len(written)} files to {out}")
