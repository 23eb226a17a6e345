"""Candidates: embed a dataset's pool and rank every query."""

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
    """Rank every query with CLIP (image, text), BM25 and their hybrid, and pool them (run `embed` first);
    then group the pool's duplicate images."""
    from cli.duplicates import find_and_report
    from services.ranking.rank import rank_dataset

    db = database()
    bars = Bars()
    try:
        report = rank_dataset(db, dataset, k=k, progress=bars)
    finally:
        bars.close()
    runs = ", ".join(f"{name} {n}" for name, n in report.runs.items())
    typer.echo(f"ranked {report.n_queries} queries of {dataset} (top {report.k}): {runs} candidate rows")
    find_and_report(db, dataset)
