"""The layers stay apart: pages call services; services and models never import streamlit."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports(path: Path) -> set[str]:
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\s*(?:from|import)\s+([A-Za-z_][\w]*)", line)
        if m:
            found.add(m.group(1))
    return found


def test_pages_do_not_touch_the_database_or_torch() -> None:
    for page in [*sorted((ROOT / "pages").glob("*.py")), ROOT / "app.py"]:
        assert not imports(page) & {"sqlalchemy", "torch", "open_clip"}, page.name


def test_services_models_and_db_never_import_streamlit() -> None:
    for folder in ("services", "models", "db"):
        for module in (ROOT / folder).rglob("*.py"):
            assert "streamlit" not in imports(module), module


def test_schema_changes_only_through_migrations() -> None:
    for path in list(ROOT.glob("*.py")) + [
        p for d in ("services", "pages", "ui", "db", "models") for p in (ROOT / d).rglob("*.py")
    ]:
        assert "create_all(" not in path.read_text(encoding="utf-8"), path
