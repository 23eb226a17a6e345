"""Candidates: embed a dataset's pool, rank every query, triage the queries."""

from __future__ import annotations

import typer

from cli.common import QUIET_HELP, Bars, database, user_errors

MODEL_HELP = (
    "open_clip model for this run (default: the dataset's clip_model setting; "
    "`datasets set NAME clip_model=...` makes it the dataset's)."
)
PRETRAINED_HELP = (
    "Its weights for this run: an open_clip tag (laion2b_s34b_b79k) or a local checkpoint file "
    "(default: the dataset's clip_pretrained setting)."
)


@user_errors
def embed(
    dataset: str = typer.Option(..., "--dataset", "-d"),
    model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
    pretrained: str | None = typer.Option(None, "--pretrained", help=PRETRAINED_HELP),
    engine: str = typer.Option(
        "local", "--engine", help="local: this machine; ray: Ray Data (a local Ray, or --address)."
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        help="With --engine ray: a running Ray cluster (ray://head:10001, head:6379 or auto; "
        "default RAY_ADDRESS, else a local Ray).",
    ),
    actors: int | None = typer.Option(
        None,
        "--actors",
        help="With --engine ray: model actors (default one per GPU of the cluster, else one).",
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="With --engine ray: rows per model call (default 256 with GPUs, else 64)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Embed a dataset's item images, item texts and queries (only what is not stored yet)."""
    from services.ranking.embed import RAY, embed_dataset
    from services.ranking.models import chosen_embedder
    from services.ranking.ray_engine import RayOptions

    if (address or actors or batch_size) and engine != RAY:
        typer.echo("error: --address, --actors and --batch-size are for --engine ray", err=True)
        raise typer.Exit(1)
    if (actors is not None and actors < 1) or (batch_size is not None and batch_size < 1):
        typer.echo("error: --actors and --batch-size must be at least 1", err=True)
        raise typer.Exit(1)
    db = database()
    embedder = chosen_embedder(db, dataset, model, pretrained)
    with Bars(quiet) as bars:
        report = embed_dataset(
            db,
            dataset,
            embedder=embedder,
            progress=bars,
            engine=engine,
            ray=RayOptions(address=address, batch_size=batch_size, actors=actors),
        )
    typer.echo(
        f"embedded {report.images_embedded} images ({report.images_stored_before} stored before), "
        f"{report.texts_embedded} item texts, {report.queries_embedded} queries with {report.model_key}"
        f" ({engine} engine)"
    )
    for ext_id, reason in report.failed:
        typer.echo(f"warning: item {ext_id}: image skipped: {reason}")


@user_errors
def rank(
    dataset: str = typer.Option(..., "--dataset", "-d"),
    k: int = typer.Option(100, "--k", help="Candidates per query and ranker."),
    model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
    pretrained: str | None = typer.Option(None, "--pretrained", help=PRETRAINED_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Rank every query with CLIP (image, text), BM25 and their hybrid, pool them, triage the
    queries and group the pool's duplicate images (run `embed` first, with the same model)."""
    from cli.duplicates import find_and_report
    from services.ranking.models import chosen_embedder
    from services.ranking.rank import rank_dataset
    from services.ranking.search import index_after_ranking
    from services.triage.compute import triage_dataset

    db = database()
    embedder = chosen_embedder(db, dataset, model, pretrained)
    with Bars(quiet) as bars:
        report = rank_dataset(db, dataset, k=k, embedder=embedder, progress=bars)
    index_after_ranking(db, dataset)  # pool search ready before anyone searches
    runs = ", ".join(f"{name} {n}" for name, n in report.runs.items())
    typer.echo(f"ranked {report.n_queries} queries of {dataset} (top {report.k}): {runs} candidate rows")
    typer.echo(triage_dataset(db, dataset).summary())
    find_and_report(db, dataset)


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
