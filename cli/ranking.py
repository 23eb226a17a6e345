"""Candidates: embed a dataset's pool, rank every query, triage the queries."""

from __future__ import annotations

import typer

from cli.common import Bars, database, user_errors


@user_errors
def embed(dataset: str = typer.Option(..., "--dataset", "-d")) -> None:
    """Embed a dataset's item images, item texts and queries (only what is not stored yet)."""
    from services.ranking.embed import embed_dataset

    bars = Bars()
    try:
        report = embed_dataset(database(), dataset, progress=bars)
    finally:
        bars.close()
    typer.echo(
        f"embedded {report.images_embedded} images ({report.images_stored_before} stored before), "
        f"{report.texts_embedded} item texts, {report.queries_embedded} queries with {report.model_key}"
    )
    for ext_id, reason in report.failed:
        typer.echo(f"warning: item {ext_id}: image skipped: {reason}")


@user_errors
def rank(
    dataset: str = typer.Option(..., "--dataset", "-d"),
    k: int = typer.Option(100, "--k", help="Candidates per query and ranker."),
) -> None:
    """Rank every query with CLIP (image, text), BM25 and their hybrid, pool them, and triage the
    queries (run `embed` first)."""
    from services.ranking.rank import rank_dataset
    from services.triage.compute import triage_dataset

    bars = Bars()
    try:
        report = rank_dataset(database(), dataset, k=k, progress=bars)
    finally:
        bars.close()
    runs = ", ".join(f"{name} {n}" for name, n in report.runs.items())
    typer.echo(f"ranked {report.n_queries} queries of {dataset} (top {report.k}): {runs} candidate rows")
    typer.echo(triage_dataset(database(), dataset).summary())


@user_errors
def triage(
    dataset: str = typer.Option(..., "--dataset", "-d"),
    order: str | None = typer.Option(
        None, "--order", help="Set the queue order first: shuffled or problems_first."
    ),
    hints: bool | None = typer.Option(
        None, "--hints/--no-hints", help="Set whether annotators see each query's suspicion score."
    ),
    modality_rank: int | None = typer.Option(
        None, "--modality-rank", help="Set r of the modality-shortcut flag (default 1) first."
    ),
) -> None:
    """Compute again each query's suspicion and modality shortcut from the stored runs (no ranking)."""
    from services.datasets.settings import update_settings
    from services.triage.compute import triage_dataset

    changes: dict[str, object] = {}
    if order is not None:
        changes["queue_order"] = order
    if hints is not None:
        changes["show_hints"] = hints
    if modality_rank is not None:
        changes["modality_rank"] = modality_rank
    db = database()
    if changes:
        update_settings(db, dataset, changes)
    report = triage_dataset(db, dataset)
    typer.echo(report.summary())
    weights = ", ".join(f"{name} {w:.2f}" for name, w in report.ranker_weights.items())
    typer.echo(f"  ranker weights (mean R-precision against the labels): {weights}")
