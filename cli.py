"""Qrels Studio command line: batch jobs over the same services the pages use.

Run ``python cli.py --help``. Errors a user can fix print one line and exit with status 1.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import typer
from tqdm import tqdm

from db import migrate
from db.models import ROLES
from db.session import Database
from services import auth, datasets
from services.auth import SYSTEM
from services.config import load_settings
from services.errors import QrelsError

app = typer.Typer(help="Qrels Studio: validate and clean retrieval test splits.", no_args_is_help=True)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema and maintenance.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")


def _db() -> Database:
    settings = load_settings()
    if not migrate.is_up_to_date(settings.db_url):
        typer.echo(
            "error: the database is not at the latest schema; run `python cli.py db upgrade`", err=True
        )
        raise typer.Exit(1)
    return Database(settings.db_url)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print domain errors as one line and exit 1 (a traceback is for bugs, not bad input)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except QrelsError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None

    return wrapper


class _Bars:
    """One tqdm bar per stage of a job, fed by a services progress callback."""

    def __init__(self) -> None:
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit="it", leave=True)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


@app.command("import")
@user_errors
def import_cmd(
    path: Path = typer.Argument(..., help="The bundle folder (or benchmark file/folder)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Name of the dataset to create."),
    format: str = typer.Option("native", "--format", "-f", help="Input format."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite an existing dataset of that name."),
) -> None:
    """Import a bundle atomically: on any error nothing is written."""
    from services.importer import import_bundle

    bars = _Bars()
    try:
        report = import_bundle(_db(), path, dataset, format=format, replace=replace, progress=bars)
    finally:
        bars.close()
    typer.echo(
        f"imported {report.dataset}: {report.n_items} items, {report.n_queries} queries, "
        f"{report.n_qrels} qrels, {report.n_images} images"
    )
    for warning in report.warnings:
        typer.echo(f"warning: {warning}")


@app.command()
@user_errors
def demo(
    out: Path = typer.Option(..., "--out", help="Folder to write the demo bundle into."),
    items: int = typer.Option(2000, "--items", help="Number of items in the pool."),
    queries: int = typer.Option(200, "--queries", help="Number of queries."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same files."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out folder."),
) -> None:
    """Write a synthetic demo bundle with planted truth (truth.jsonl is never imported)."""
    from services.demo import generate_demo

    summary = generate_demo(out, n_items=items, n_queries=queries, seed=seed, overwrite=overwrite)
    typer.echo(
        f"wrote {out}: {summary.n_items} items, {summary.n_queries} queries, {summary.n_qrels} qrels; "
        f"planted {summary.n_false_negatives} false negatives, {summary.n_wrong_positives} wrong positives, "
        f"{summary.n_bad_queries} bad queries, {summary.n_groups} generated/human groups"
    )


@app.command()
@user_errors
def setup(
    demo_items: int = typer.Option(2000, "--demo-items"),
    demo_queries: int = typer.Option(200, "--demo-queries"),
) -> None:
    """Migrate, and load the demo project with its users when the database is empty."""
    from db.backup import backup_before_upgrade
    from services.demo_setup import database_is_empty, load_demo

    settings = load_settings()
    backup = backup_before_upgrade(settings.db_url, "head")
    if backup is not None:
        typer.echo(f"backed up to {backup.path} before upgrading")
    migrate.upgrade(settings.db_url)
    db = Database(settings.db_url)
    if not database_is_empty(db):
        typer.echo("database ready (not empty: demo not loaded)")
        return
    bars = _Bars()
    try:
        report, credentials = load_demo(
            db, settings.data_dir, n_items=demo_items, n_queries=demo_queries, progress=bars
        )
    finally:
        bars.close()
    typer.echo(f"loaded demo dataset: {report.n_items} items, {report.n_queries} queries")
    typer.echo("")
    typer.echo("Demo accounts (shown only this once; `python cli.py users passwd NAME` resets one):")
    for c in credentials:
        typer.echo(f"  {c.role:<10} {c.name:<12} {c.password}")
    typer.echo("")


@app.command()
@user_errors
def embed(dataset: str = typer.Option(..., "--dataset", "-d")) -> None:
    """Embed a dataset's item images, item texts and queries (only what is not stored yet)."""
    from services.ranking import embed_dataset

    bars = _Bars()
    try:
        report = embed_dataset(_db(), dataset, progress=bars)
    finally:
        bars.close()
    typer.echo(
        f"embedded {report.images_embedded} images ({report.images_stored_before} stored before), "
        f"{report.texts_embedded} item texts, {report.queries_embedded} queries with {report.model_key}"
    )
    for ext_id, reason in report.failed:
        typer.echo(f"warning: item {ext_id}: image skipped: {reason}")


@app.command()
@user_errors
def rank(
    dataset: str = typer.Option(..., "--dataset", "-d"),
    k: int = typer.Option(100, "--k", help="Candidates per query and ranker."),
) -> None:
    """Rank every query with CLIP (image, text) and BM25 and pool them (run `embed` first)."""
    from services.ranking import rank_dataset

    bars = _Bars()
    try:
        report = rank_dataset(_db(), dataset, k=k, progress=bars)
    finally:
        bars.close()
    runs = ", ".join(f"{name} {n}" for name, n in report.runs.items())
    typer.echo(f"ranked {report.n_queries} queries of {dataset} (top {report.k}): {runs} candidate rows")


@app.command()
@user_errors
def assign(
    dataset: str = typer.Option(..., "--dataset", "-d"),
    overlap: int = typer.Option(2, "--overlap", help="Annotators per query."),
    annotators: str = typer.Option("", "--annotators", help="Comma-separated names (default: all)."),
) -> None:
    """Give every query of a dataset to OVERLAP annotators, balanced (incremental)."""
    from services.assignment import assign as assign_queries

    names = [a.strip() for a in annotators.split(",") if a.strip()] or None
    report = assign_queries(_db(), dataset, overlap=overlap, annotators=names)
    typer.echo(f"assigned {report.n_new} new query slots in {dataset} (overlap {overlap})")
    for name, n in report.per_annotator.items():
        typer.echo(f"  {name:<20} {n:>7} queries")
    if report.n_queries_short:
        typer.echo(f"warning: {report.n_queries_short} queries have fewer than {overlap} annotators")


@app.command()
@user_errors
def agreement(dataset: str = typer.Option(..., "--dataset", "-d")) -> None:
    """Inter-annotator agreement: Cohen, Fleiss, Krippendorff, Gwet's AC1, set-level figures."""
    from services.agreement import agreement_report, report_lines

    for line in report_lines(agreement_report(_db(), SYSTEM, dataset)):
        typer.echo(line)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def serve(ctx: typer.Context) -> None:
    """Start the web app (extra options go to `streamlit run`, e.g. --server.port 8502)."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli as streamlit_cli

    # Streamlit treats a pages/ folder as an old-style multipage app until the first request
    # reaches app.py's st.navigation; if that first request is a deep link (say /users), the
    # whole process would serve page files directly and never run the router. app.py is always
    # the router here.
    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(Path(__file__).resolve().parent / "app.py"), *ctx.args]
    streamlit_cli.main()


@app.command("export")
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
) -> None:
    """Write the cleaned test split (consensus policy, optional stratified sample) in every format."""
    from services.export import export_dataset, parse_options

    options = parse_options(
        formats=formats, policy=policy, size=size, stratify=stratify, seed=seed, time=manifest_time
    )
    report = export_dataset(_db(), dataset, out, options, overwrite=overwrite)
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
    for warning in report.warnings:
        typer.echo(f"warning: {warning}")


@app.command()
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
    from services.consensus import Policy
    from services.evaluation import evaluate_dataset

    report = evaluate_dataset(_db(), dataset, policy=Policy.parse(policy), export_dir=export)
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


@app.command("datasets")
@user_errors
def datasets_cmd() -> None:
    """List datasets with their sizes."""
    rows = datasets.list_datasets(_db())
    if not rows:
        typer.echo("no datasets yet; `python cli.py import PATH --dataset NAME`")
    for d in rows:
        typer.echo(
            f"{d.name:<24} {d.source_format:<10} {d.n_items:>8} items {d.n_queries:>7} queries "
            f"{d.n_qrels:>8} qrels"
        )


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
@user_errors
def users_add(
    name: str = typer.Argument(...),
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(ROLES)}."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Add a user; the password is prompted for (never an argument, so never in shell history)."""
    db = _db()
    info = auth.add_user(db, name, role, _read_password(password_stdin))
    typer.echo(f"added {info.name} ({info.role})")


@users_app.command("passwd")
@user_errors
def users_passwd(
    name: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin"),
) -> None:
    """Set a user's password (and unlock the account)."""
    auth.set_password(_db(), name, _read_password(password_stdin))
    typer.echo(f"password of {name} changed")


@users_app.command("list")
@user_errors
def users_list() -> None:
    """List users and roles."""
    for u in auth.list_users(_db()):
        typer.echo(f"{u.name:<20} {u.role:<10} {'active' if u.is_active else 'inactive'}")


@db_app.command("upgrade")
@user_errors
def db_upgrade(
    revision: str = typer.Argument("head"),
    no_backup: bool = typer.Option(False, "--no-backup", help="Skip the backup of a SQLite database."),
) -> None:
    """Upgrade the schema (default: to the latest revision); a SQLite database is backed up first."""
    from db.backup import backup_before_upgrade

    url = load_settings().db_url
    if not no_backup:
        backup = backup_before_upgrade(url, revision)
        if backup is not None:
            typer.echo(f"backed up to {backup.path} before upgrading ({backup.bytes / 1e6:.1f} MB)")
    migrate.upgrade(url, revision)
    typer.echo(f"database at revision {migrate.current_revision(url)}")


@db_app.command("backup")
@user_errors
def db_backup(path: Path = typer.Argument(..., help="The backup file to create; it must not exist.")) -> None:
    """Copy the live SQLite database to PATH, consistently, while the app runs (PostgreSQL: pg_dump)."""
    from db.backup import backup_sqlite

    report = backup_sqlite(load_settings().db_url, path)
    typer.echo(f"backed up to {report.path} ({report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s)")


@db_app.command("downgrade")
@user_errors
def db_downgrade(revision: str = typer.Argument(...)) -> None:
    """Downgrade the schema to REVISION (``base`` drops everything)."""
    url = load_settings().db_url
    migrate.downgrade(url, revision)
    typer.echo(f"database at revision {migrate.current_revision(url)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""
    url = load_settings().db_url
    typer.echo(f"{migrate.current_revision(url)} (head is {migrate.head_revision()})")


# --------------------------------------------------------------------------- blind studies

study_app = typer.Typer(
    help="Blind rating studies: query quality and system preference.", no_args_is_help=True
)
app.add_typer(study_app, name="study")


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@study_app.command("create")
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
    sample: int = typer.Option(100, "--sample", help="How many items to sample."),
    raters: int = typer.Option(3, "--raters", help="Raters per item."),
    users: str = typer.Option(
        "", "--users", help="Comma-separated user names to draw raters from (default: every active user)."
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
    """Create a blind study: sample items, assign raters, counterbalance what is shown first."""
    import json

    from services import study
    from services.errors import ValidationError

    db = _db()
    common = {"dataset": dataset, "name": name, "sample": sample, "raters_per_item": raters, "seed": seed}
    common["raters"] = _csv(users) or None
    if kind == "quality":
        criteria = None
        if rubric is not None:
            try:
                criteria = study.rubric_from_json(json.loads(rubric.read_text(encoding="utf-8")))
            except (OSError, ValueError) as e:
                raise ValidationError(f"cannot read the rubric {rubric}: {e}") from e
        report = study.create_quality_study(db, SYSTEM, sources=_csv(sources), rubric=criteria, **common)
    elif kind == "preference":
        run_files = {}
        for spec in run or []:
            run_name, sep, path = spec.partition("=")
            if not sep or not run_name.strip():
                raise ValidationError(f"--run takes NAME=PATH, not {spec!r}")
            run_files[run_name.strip()] = Path(path)
        report = study.create_preference_study(
            db, SYSTEM, systems=_csv(systems), run_files=run_files, top_n=top, **common
        )
    else:
        raise ValidationError(f"--kind is quality or preference, not {kind!r}")
    for line in study.create_lines(report):
        typer.echo(line)


@study_app.command("progress")
@user_errors
def study_progress(name: str = typer.Argument(..., help="The study.")) -> None:
    """Answers per rater (counts only: scores stay sealed while the study is open)."""
    from services import study

    for line in study.progress_lines(study.study_progress(_db(), SYSTEM, name)):
        typer.echo(line)


@study_app.command("close")
@user_errors
def study_close(name: str = typer.Argument(..., help="The study.")) -> None:
    """Close a study: no more answers; its results are unsealed."""
    from services import study

    info = study.close_study(_db(), SYSTEM, name)
    typer.echo(f"closed study {info.name}: {info.n_answered} of {info.n_assignments} answered")
    typer.echo(f"results: python cli.py study results {info.name} [--out DIR]")


@study_app.command("results")
@user_errors
def study_results(
    name: str = typer.Argument(..., help="The study (closed)."),
    out: Path | None = typer.Option(
        None, "--out", help="Also write the report, tables, responses CSV and charts here."
    ),
) -> None:
    """The results of a closed study: means, intervals, tests, preferences, agreement, position bias."""
    from services import study

    db = _db()
    for line in study.report_lines(study.study_results(db, SYSTEM, name)):
        typer.echo(line)
    if out is not None:
        written = study.write_results(db, SYSTEM, name, out)
        typer.echo(f"wrote {len(written)} files to {out}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
