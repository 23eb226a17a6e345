"""The cleaned split: export it, and evaluate stored runs before and after cleaning."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import database, user_errors


@user_errors
def export_cmd(
    dataset: str = typer.Option(..., "--dataset", "-d"),
    out: Path = typer.Option(..., "--out", help="Folder to write the export into (new or empty)."),
    formats: str = typer.Option(
        "native,beir,trec,mbeir,csv,parquet",
        "--formats",
        help="Comma-separated: native, beir, trec, mbeir, csv, parquet.",
    ),
    policy: str = typer.Option(
        "", "--policy", help="Consensus policy, e.g. min=2,query=unanimous,positive=majority (the default)."
    ),
    aggregation: str | None = typer.Option(
        None,
        "--aggregation",
        help="dawid_skene or mace: both rules weigh annotators by estimated competence (same as --policy model=...).",
    ),
    size: int | None = typer.Option(
        None, "--size", help="Draw a stratified sample of this many kept queries."
    ),
    stratify: str = typer.Option(
        "", "--stratify", help="Comma-separated query fields to stratify over: category, language, source."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample: same seed, same sample."),
    manifest_time: str | None = typer.Option(
        None, "--time", help="ISO time for the manifest (default: the newest decision in the dataset)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export in --out."),
    duplicates: str = typer.Option(
        "leave",
        "--duplicates",
        help="Copies of positives in the pool: leave (report them), add (as positives) or collapse (one item per group).",
    ),
) -> None:
    """Write the cleaned test split (consensus policy, optional stratified sample) in every format."""
    from services.export.export import export_dataset
    from services.export.options import parse_options

    if aggregation:
        policy = f"model={aggregation},{policy}" if policy else f"model={aggregation}"
    options = parse_options(
        formats=formats,
        policy=policy,
        size=size,
        stratify=stratify,
        seed=seed,
        time=manifest_time,
        duplicates=duplicates,
    )
    report = export_dataset(database(), dataset, out, options, overwrite=overwrite)
    queries, qrels = report.counts["queries"], report.counts["qrels"]
    typer.echo(
        f"exported {queries['exported']} of {queries['total']} queries of {dataset} to {report.out_dir} "
        f"({', '.join(options.formats)}; policy {options.policy})"
    )
    dropped = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in queries["dropped"].items())
    typer.echo(
        f"  dropped: {dropped}; not sampled: {queries['not_sampled']}; rewritten: {queries['rewritten']}"
    )
    typer.echo(
        f"  positives: {qrels['positives']} ({qrels['positives_added']} added, {qrels['positives_removed']} removed)"
    )
    for d in report.dropped[:20]:
        typer.echo(f"  dropped {d.query_id}: {d.detail}")
    if len(report.dropped) > 20:
        typer.echo(f"  ... and {len(report.dropped) - 20} more in changes.csv")
    for c in report.manifest.get("aggregation", {}).get("competence", []):
        items = "-" if c["items"] is None else f"{c['items']:.3f}"
        queries = "-" if c["queries"] is None else f"{c['queries']:.3f}"
        typer.echo(f"  competence ({c['model']}) {c['annotator']}: items {items}, queries {queries}")
    for warning in report.warnings:
        typer.echo(f"warning: {warning}")


@user_errors
def evaluate(
    dataset: str = typer.Option(..., "--dataset", "-d"),
    export: Path | None = typer.Option(
        None, "--export", help="An export folder whose qrels are the cleaned labels."
    ),
    policy: str = typer.Option(
        "", "--policy", help="Without --export: the consensus policy that makes the cleaned labels."
    ),
) -> None:
    """Score every ranking against the original and the cleaned labels (Recall@k, MRR, nDCG@10)."""
    from services.cleaning.evaluation import evaluate_dataset
    from services.cleaning.policy import Policy

    report = evaluate_dataset(database(), dataset, policy=Policy.parse(policy), export_dir=export)
    if not report.scores:
        typer.echo(f"{dataset} has no rankings yet; run `python cli.py rank --dataset {dataset}` first")
        return
    typer.echo(
        f"original labels: {report.n_original_queries} queries; cleaned labels: "
        f"{report.n_cleaned_queries} queries ({report.cleaned_from})"
    )
    typer.echo(f"{'ranking':<14} {'metric':<11} {'original':>9} {'cleaned':>9} {'change':>8}")
    for row in report.table():
        typer.echo(
            f"{row['run']:<14} {row['metric']:<11} {row['original']:>9.4f} {row['cleaned']:>9.4f} {row['delta']:>+8.4f}"
        )
    for m in report.missed:
        typer.echo(f"{m.run}: {m.queries} of {m.of} queries with a missed positive have it in the top 10")
