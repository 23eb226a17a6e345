"""The CLI over the services: import, demo, users, db; user errors exit 1 with one line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from db.session import Database
from services.core import auth
from services.core.config import load_settings
from services.datasets import catalog as datasets
from tests.bundles import make_bundle

runner = CliRunner()


def test_users_add_reads_password_from_stdin(sqlite_db: Database) -> None:
    result = runner.invoke(
        app, ["users", "add", "dora", "--role", "reviewer", "--password-stdin"], input="a long password\n"
    )
    assert result.exit_code == 0, result.output
    assert auth.authenticate(sqlite_db, "dora", "a long password").role == "reviewer"
    bad = runner.invoke(
        app, ["users", "add", "dora", "--role", "reviewer", "--password-stdin"], input="another password\n"
    )
    assert bad.exit_code == 1 and "exists already" in bad.output


def test_import_and_refusals(sqlite_db: Database, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b")
    ok = runner.invoke(app, ["import", str(bundle), "--dataset", "shop"])
    assert ok.exit_code == 0, ok.output
    assert "6 items, 3 queries, 6 qrels" in ok.output
    again = runner.invoke(app, ["import", str(bundle), "--dataset", "shop"])
    assert again.exit_code == 1 and "--replace" in again.output
    assert runner.invoke(app, ["import", str(bundle), "--dataset", "shop", "--replace"]).exit_code == 0
    (bundle / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tghost\t1\n")
    broken = runner.invoke(app, ["import", str(bundle), "--dataset", "other"])
    assert broken.exit_code == 1
    assert "qrels.tsv:2: qrel for unknown item 'ghost'" in broken.output
    assert [d.name for d in datasets.list_datasets(sqlite_db)] == ["shop"]


def test_demo_writes_a_bundle_that_imports(sqlite_db: Database, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(
        app, ["demo", "--out", str(out), "--items", "200", "--queries", "30", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "truth.jsonl").is_file()
    assert runner.invoke(app, ["demo", "--out", str(out)]).exit_code == 1  # not empty, no --overwrite
    imported = runner.invoke(app, ["import", str(out), "--dataset", "demo"])
    assert imported.exit_code == 0, imported.output
    assert "200 items, 30 queries" in imported.output


def test_setup_loads_demo_once_and_prints_credentials(tmp_path: Path, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("QRELS_DB_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    first = runner.invoke(app, ["setup", "--demo-items", "120", "--demo-queries", "20"])
    assert first.exit_code == 0, first.output
    lines = [line.split() for line in first.output.splitlines() if line.startswith("  ")]
    credentials = {name: password for _role, name, password in lines}
    assert set(credentials) == {"admin", "reviewer", "annotator1", "annotator2", "annotator3"}
    db = Database(load_settings().db_url)
    assert auth.authenticate(db, "admin", credentials["admin"]).role == "admin"
    assert [d.name for d in datasets.list_datasets(db)] == ["demo"]
    assert len(list((data_dir / "search").iterdir())) == 1  # pool search ready before anyone searches
    second = runner.invoke(app, ["setup"])
    assert second.exit_code == 0 and "not empty" in second.output and "annotator1" not in second.output


def test_commands_refuse_an_unmigrated_database(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("QRELS_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(app, ["datasets"])
    assert result.exit_code == 1 and "db upgrade" in result.output
