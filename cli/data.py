"""Data in and out of the database: import a bundle, write the demo, set up a fresh install, list datasets."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import QUIET_HELP, Bars, database, user_errors
from db import migrate
from db.session import Database
from services.core.config import load_settings
from services.datasets import catalog as datasets


@user_errors
def import_cmd(
    path: Path = typer.Argument(..., help="The bundle folder (or benchmark file/folder)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Name of the dataset to create."),
    format: str = typer.Option("native", "--format", "-f", help="Input format."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite an existing dataset of that name."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Import a bundle atomically: on any error nothing is written."""
    from services.ingest.importer import import_bundle

    with Bars(quiet) as bars:
        report = import_bundle(database(), path, dataset, format=format, replace=replace, progress=bars)
    typer.echo(
        f"imported {report.dataset}: {report.n_items} items, {report.n_queries} queries, "
        f"{report.n_qrels} qrels, {report.n_images} images"
    )
    for warning in report.warnings:
        typer.echo(f"warning: {warning}")


@user_errors
def demo(
    out: Path = typer.Option(..., "--out", help="Folder to write the demo bundle into."),
    items: int = typer.Option(2000, "--items", help="Number of items in the pool."),
    queries: int = typer.Option(200, "--queries", help="Number of queries."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same files."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out folder."),
    single_modality: float = typer.Option(
        0.10,
        "--single-modality",
        help="Share of the good queries planted as single-modality (colour and pattern only, or "
        "material and brand only); 0 plants none.",
    ),
) -> None:
    """Write a synthetic demo bundle with planted truth (truth.jsonl is never imported)."""
    from demo.writer import generate_demo

    summary = generate_demo(
        out,
        n_items=items,
        n_queries=queries,
        seed=seed,
        overwrite=overwrite,
        single_modality_share=single_modality,
    )
    typer.echo(
        f"wrote {out}: {summary.n_items} items, {summary.n_queries} queries, {summary.n_qrels} qrels; "
        f"planted {summary.n_false_negatives} false negatives, {summary.n_wrong_positives} wrong positives, "
        f"{summary.n_bad_queries} bad queries, {summary.n_groups} generated/human groups, "
        f"{summary.n_single_modality} queries one modality alone answers"
    )


@user_errors
def setup(
    demo_items: int = typer.Option(2000, "--demo-items"),
    demo_queries: int = typer.Option(200, "--demo-queries"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Migrate, and load the demo project with its users when the database is empty."""
    from db.backup import backup_before_upgrade
    from demo.setup import database_is_empty, load_demo

    settings = load_settings()
    backup = backup_before_upgrade(settings.db_url, "head")
    if backup is not None:
        typer.echo(f"backed up to {backup.path} before upgrading")
    migrate.upgrade(settings.db_url)
    db = Database(settings.db_url)
    if not database_is_empty(db):
        typer.echo("database ready (not empty: demo not loaded)")
        return
    with Bars(quiet) as bars:
        report, credentials = load_demo(
            db, settings.data_dir, n_items=demo_items, n_queries=demo_queries, progress=bars
        )
    typer.echo(f"loaded demo dataset: {report.n_items} items, {report.n_queries} queries")
    typer.echo("")
    typer.echo("Demo accounts (shown only this once; `python cli.py users passwd NAME` resets one):")
    for c in credentials:
        typer.echo(f"  {c.role:<10} {c.name:<12} {c.password}")
    typer.echo("")


@user_errors
def datasets_list() -> None:
    """List datasets with their sizes."""
    rows = datasets.list_datasets(database())
    if not rows:
        typer.echo("no datasets yet; `python cli.py import PATH --dataset NAME`")
    for d in rows:
        typer.echo(
            f"{d.name:<24} {d.source_format:<10} {d.n_items:>8} items {d.n_queries:>7} queries "
            f"{d.n_qrels:>8} qrels"
        )


def datasets_default(ctx: typer.Context) -> None:
    """Datasets: `datasets` alone lists them."""
    if ctx.invoked_subcommand is None:
        datasets_list()


@user_errors
def datasets_show(name: str = typer.Argument(..., help="The dataset.")) -> None:
    """Show a dataset's settings, each with what it does."""
    from services.datasets.settings import DatasetSettings, dataset_settings

    current = dataset_settings(database(), name)
    for key, help_text, default in DatasetSettings.describe():
        value = getattr(current, key)
        mark = "" if value == default else "  (changed)"
        typer.echo(f"{key:<16} {_shown(value):<24} {help_text}{mark}")


@user_errors
def datasets_set(
    name: str = typer.Argument(..., help="The dataset."),
    pairs: list[str] = typer.Argument(
        ..., help="key=value pairs, e.g. clip_model=ViT-B-32 k=50 (empty value: unset)."
    ),
) -> None:
    """Change a dataset's settings, each checked (type, range, a loadable model); all or none."""
    from services.datasets.settings import DatasetSettings, update_settings

    changes = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            typer.echo(f"error: {pair!r} is not key=value; see `cli.py datasets show {name}`", err=True)
            raise typer.Exit(1)
        changes[key.strip()] = DatasetSettings.parse(key.strip(), text)
    updated = update_settings(database(), name, changes)
    typer.echo(f"{name}: " + ", ".join(f"{k}={_shown(getattr(updated, k))}" for k in changes))


def _shown(value: object) -> str:
    return "(unset)" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
