"""The layers stay apart and dependencies point down only.

pages/, ui/, cli/  →  demo/  →  services/  →  models/, db/

- pages (and app.py) never touch the database, torch or open_clip directly: they call services;
- services never draw (no streamlit, no altair): they return data that pages and ui/ draw;
- models/ and db/ import nothing from services/, demo/, ui/ or cli/; services/ nothing from demo/, ui/, cli/ or pages/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][\w]*)", re.M)


def imports(path: Path) -> set[str]:
    """Top-level package names a module imports (lazy imports inside functions included)."""
    return set(IMPORT.findall(path.read_text(encoding="utf-8")))


def modules(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def offenders(files: list[Path], banned: set[str]) -> dict[str, set[str]]:
    found = {str(p.relative_to(ROOT)): imports(p) & banned for p in files}
    return {name: bad for name, bad in found.items() if bad}


def test_pages_do_not_touch_the_database_or_torch() -> None:
    assert not offenders([*modules("pages"), ROOT / "app.py"], {"sqlalchemy", "torch", "open_clip"})


def test_services_models_and_db_never_draw() -> None:
    assert not offenders(modules("services", "models", "db"), {"streamlit", "altair"})


def test_models_and_db_import_nothing_above_them() -> None:
    assert not offenders(modules("models", "db"), {"services", "demo", "ui", "cli", "pages", "bench"})


def test_services_import_nothing_above_them() -> None:
    assert not offenders(modules("services"), {"demo", "ui", "cli", "pages", "bench"})


@pytest.mark.parametrize("banned", [{"streamlit"}])
def test_cli_and_demo_never_import_streamlit_pages(banned: set[str]) -> None:
    # The CLI starts the app through streamlit's own launcher (cli/serve.py) and nothing else.
    files = [p for p in modules("cli", "demo") if p.name != "serve.py"]
    assert not offenders(files, banned)


def test_schema_changes_only_through_migrations() -> None:
    for path in [*ROOT.glob("*.py"), *modules("services", "pages", "ui", "db", "models", "demo", "cli")]:
        assert "create_all(" not in path.read_text(encoding="utf-8"), path


def test_no_module_is_a_room_too_big_to_read() -> None:
    """About 400 lines a module (migrations and tests aside): split by responsibility beyond that."""
    big = {
        str(p.relative_to(ROOT)): n
        for p in modules("services", "pages", "ui", "db", "models", "demo", "cli")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450
    }
    assert not big, big
