"""Gold queries (plant, import, promote, list, scores) and the simulated crowd."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import database, user_errors


@user_errors
def gold_plant(
    dataset: str = typer.Option(..., "--dataset", "-d"),
    count: int = typer.Option(10, "--count", help="How many queries to make gold."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Make queries of a demo dataset gold from its planted truth (truth.jsonl)."""
    from services.gold.sources import gold_from_truth

    report = gold_from_truth(database(), dataset, count=count, seed=seed)
    typer.echo(
        f"{report.n_gold} gold queries in {dataset} from the planted truth ({report.n_items} item labels)"
    )


@user_errors
def gold_import(
    dataset: str = typer.Option(..., "--dataset", "-d"),
    path: Path | None = typer.Argument(
        None, help="The gold file (default: gold.jsonl in the dataset's bundle)."
    ),
) -> None:
    """Import gold answers from a gold file (format in the README); all or nothing."""
    from services.gold.sources import import_gold_file

    report = import_gold_file(database(), dataset, path)
    typer.echo(
        f"{report.n_gold} gold queries in {dataset} from {report.source} ({report.n_items} item labels)"
    )


@user_errors
def gold_promote(
    query_id: int = typer.Argument(..., help="The query's number (as the Review page shows it)."),
    note: str = typer.Option("", "--note"),
) -> None:
    """Make a reviewer's adjudication of a query its gold answer."""
    from services.core.auth import SYSTEM
    from services.gold.sources import promote_to_gold

    answer = promote_to_gold(database(), SYSTEM, query_id, note=note)
    typer.echo(
        f"query {query_id} is gold: {answer.verdict}, {len(answer.relevant)} relevant, {len(answer.not_relevant)} not"
    )


@user_errors
def gold_list(dataset: str = typer.Option(..., "--dataset", "-d")) -> None:
    """List a dataset's gold queries."""
    from services.gold.answers import list_gold

    rows = list_gold(database(), dataset)
    if not rows:
        typer.echo(f"{dataset} has no gold queries; `cli.py gold plant|import|promote` makes some")
    for r in rows:
        typer.echo(
            f"{r.query_ext_id:<16} {r.verdict:<7} {r.origin:<13} {r.n_relevant:>3} relevant {r.n_not_relevant:>3} not  {r.text[:60]}"
        )


@user_errors
def gold_scores(dataset: str = typer.Option(..., "--dataset", "-d")) -> None:
    """Each annotator's accuracy on gold queries, by kind, with 95 % Wilson intervals."""
    from services.gold.scoring import KINDS, gold_scores

    scores = gold_scores(database(), dataset)
    if not scores:
        typer.echo("no annotator has finished a gold query yet")
    for sc in scores:
        o = sc.overall
        flag = "  WARNING: below the threshold" if sc.warning else ""
        typer.echo(
            f"{sc.annotator}: {o.count}/{o.n} = {o.rate:.1%} [{o.low:.1%}, {o.high:.1%}] over {sc.gold_queries} gold queries{flag}"
        )
        for kind in KINDS:
            sh = sc.kinds[kind]
            if sh.n:
                typer.echo(f"    {kind:<24} {sh.count}/{sh.n} = {sh.rate:.1%} [{sh.low:.1%}, {sh.high:.1%}]")


@user_errors
def simulate(
    dataset: str = typer.Option(..., "--dataset", "-d"),
    annotators: int = typer.Option(
        6, "--annotators", "-n", help="Simulated annotators (profiles cycle past 6)."
    ),
    overlap: int = typer.Option(3, "--overlap"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Simulated annotators of known skill (careful, rubber-stamper, never-adds, ...) work a demo dataset."""
    from demo.simulate import score_aggregation, simulate_crowd, true_skill

    db = database()
    sim = simulate_crowd(db, dataset, annotators, overlap=overlap, seed=seed)
    skill = true_skill(db, dataset)
    typer.echo(f"{sim.submissions} submissions by {len(sim.annotators)} simulated annotators in {dataset}")
    for a in sim.annotators:
        typer.echo(
            f"  {a.name:<24} {a.submitted:>5} queries, agreement with the planted truth {skill.get(a.name, 0):.3f}"
        )
    for sc in score_aggregation(db, dataset):
        typer.echo(f"  {sc.method:<12} items {sc.item_accuracy:.4f}  queries {sc.query_accuracy:.4f}")
