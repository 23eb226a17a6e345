"""The command tree: every command group registered on one typer app (``python cli.py --help``)."""

from __future__ import annotations

import logging

import typer

from cli import cleaning, data, database, duplicates, gold, proxy, ranking, serve, study, users, work

app = typer.Typer(help="Qrels Studio: validate and clean retrieval test splits.", no_args_is_help=True)
app.command("import")(data.import_cmd)
app.command("demo")(data.demo)
app.command("setup")(data.setup)
app.command("embed")(ranking.embed)
app.command("rank")(ranking.rank)
app.command("triage")(ranking.triage)
app.command("duplicates")(duplicates.duplicates)
app.command("assign")(work.assign)
app.command("agreement")(work.agreement)
app.command("export")(cleaning.export_cmd)
app.command("evaluate")(cleaning.evaluate)
app.command("simulate")(gold.simulate)
app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(serve.serve)
app.command("nginx-config")(proxy.nginx_config)

users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
users_app.command("add")(users.users_add)
users_app.command("passwd")(users.users_passwd)
users_app.command("list")(users.users_list)
app.add_typer(users_app, name="users")

datasets_app = typer.Typer(help="Datasets: list them (the default), show and change their settings.")
datasets_app.callback(invoke_without_command=True)(data.datasets_default)
datasets_app.command("list")(data.datasets_list)
datasets_app.command("show")(data.datasets_show)
datasets_app.command("set")(data.datasets_set)
app.add_typer(datasets_app, name="datasets")

db_app = typer.Typer(help="Database schema and maintenance.", no_args_is_help=True)
db_app.command("upgrade")(database.db_upgrade)
db_app.command("backup")(database.db_backup)
db_app.command("downgrade")(database.db_downgrade)
db_app.command("current")(database.db_current)
app.add_typer(db_app, name="db")

study_app = typer.Typer(
    help="Blind rating studies: query quality and system preference.", no_args_is_help=True
)
study_app.command("create")(study.study_create)
study_app.command("progress")(study.study_progress)
study_app.command("close")(study.study_close)
study_app.command("results")(study.study_results)
app.add_typer(study_app, name="study")


gold_app = typer.Typer(help="Gold queries: known answers that score annotators.", no_args_is_help=True)
gold_app.command("plant")(gold.gold_plant)
gold_app.command("import")(gold.gold_import)
gold_app.command("promote")(gold.gold_promote)
gold_app.command("list")(gold.gold_list)
gold_app.command("scores")(gold.gold_scores)
app.add_typer(gold_app, name="gold")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # On the handler too: a library that sets its own logger to DEBUG (bm25s does, on import)
    # must not print its debug lines on the terminal.
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)
    app()
