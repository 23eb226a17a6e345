"""Duplicate groups: items of a pool whose images are copies of one another."""

from __future__ import annotations

import typer

from cli.common import Bars, database, user_errors
from db.session import Database


def find_and_report(db: Database, dataset: str) -> None:
    """Compute the dataset's duplicate groups (its images must be embedded) and say what was found."""
    from services.duplicates.groups import find_duplicates

    with Bars() as bars:
        report = find_duplicates(db, dataset, progress=bars)
    typer.echo(
        f"duplicates of {dataset}: {report.groups} groups, {report.items_in_groups} items "
        f"({report.exact_copies} exact copies, {report.near_copies} near copies; "
        f"{report.candidate_pairs} image pairs compared, {report.signatures_computed} signatures computed)"
    )
    for size in report.skipped_groups:
        typer.echo(
            f"warning: a group of {size} items sharing one image was not stored (a placeholder image?)"
        )
    for ext_id in report.unreadable:
        typer.echo(f"warning: item {ext_id}: thumbnail unreadable, not compared")


@user_errors
def duplicates(
    dataset: str = typer.Option(..., "--dataset", "-d"),
    show: int = typer.Option(0, "--list", help="Then list the N largest groups with their evidence."),
) -> None:
    """Group items whose images are copies: exact, re-encoded, resized or slightly cropped (run `embed` first)."""
    from services.duplicates.copies import duplicate_overview

    db = database()
    find_and_report(db, dataset)
    if show > 0:
        for group in duplicate_overview(db, dataset, limit=show).listed:
            copies = ", ".join(f"{m} ({e})" for m, e in zip(group.members, group.evidence, strict=True))
            typer.echo(f"  {group.representative}: {copies}")
