"""Annotation work: assign queries to annotators, measure their agreement."""

from __future__ import annotations

import typer

from cli.common import database, user_errors
from services.core.auth import SYSTEM


@user_errors
def assign(
    dataset: str = typer.Option(..., "--dataset", "-d"),
    overlap: int = typer.Option(2, "--overlap", help="Annotators per query."),
    annotators: str = typer.Option("", "--annotators", help="Comma-separated names (default: all)."),
) -> None:
    """Give every query of a dataset to OVERLAP annotators, balanced (incremental)."""
    from services.datasets.assignment import assign as assign_queries

    names = [a.strip() for a in annotators.split(",") if a.strip()] or None
    report = assign_queries(database(), dataset, overlap=overlap, annotators=names)
    typer.echo(f"assigned {report.n_new} new query slots in {dataset} (overlap {overlap})")
    for name, n in report.per_annotator.items():
        typer.echo(f"  {name:<20} {n:>7} queries")
    if report.n_queries_short:
        typer.echo(f"warning: {report.n_queries_short} queries have fewer than {overlap} annotators")


@user_errors
def agreement(dataset: str = typer.Option(..., "--dataset", "-d")) -> None:
    """Inter-annotator agreement: Cohen, Fleiss, Krippendorff, Gwet's AC1, set-level figures."""
    from services.agreement.report import agreement_report
    from ui.reports.agreement import report_lines

    for line in report_lines(agreement_report(database(), SYSTEM, dataset)):
        typer.echo(line)
