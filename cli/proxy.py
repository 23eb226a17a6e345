"""The reverse proxy in front of several app processes: nginx's configuration, rendered.

``deploy/nginx/qrels.conf`` is the template (an http-level file with sticky sessions by a route
cookie); this fills in where nginx listens and where the ``cli.py serve`` processes are.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from cli.common import user_errors
from services.core.config import load_settings
from services.core.errors import ValidationError

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "qrels.conf"
_ADDRESS = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


def _address(value: str, what: str) -> str:
    value = value.strip()
    match = _ADDRESS.match(value)
    if match is None or not 0 < int(match.group(1)) < 65536:
        raise ValidationError(f"{what} {value!r} is not HOST:PORT (e.g. 127.0.0.1:8601)")
    return value


def render_nginx_site(listen: str, apps: list[str]) -> str:
    """``deploy/nginx/qrels.conf`` with nginx listening on ``listen`` and proxying to ``apps``.

    Args:
        listen: ``HOST:PORT`` nginx listens on (``127.0.0.1:8080``; ``443 ssl`` setups edit it).
        apps: ``HOST:PORT`` of each ``python cli.py serve`` process, at least one, no repeats.

    Raises:
        ValidationError: an address that is not HOST:PORT, no app process, or one named twice.
    """
    listen = _address(listen, "listen address")
    apps = [_address(a, "app address") for a in apps]
    if not apps:
        raise ValidationError("name at least one app process (--app HOST:PORT)")
    if len(set(apps)) != len(apps):
        raise ValidationError("each app process once: an address is named twice")
    servers = "\n".join(f"    server {a} max_fails=3 fail_timeout=10s;" for a in apps)
    return TEMPLATE.read_text(encoding="utf-8").replace("{{servers}}", servers).replace("{{listen}}", listen)


@user_errors
def nginx_config(
    listen: str = typer.Option("127.0.0.1:8080", "--listen", help="HOST:PORT nginx listens on."),
    app: list[str] = typer.Option(..., "--app", help="HOST:PORT of a `cli.py serve` process (repeat)."),
    out: Path | None = typer.Option(None, "--out", help="Write here (default: print)."),
) -> None:
    """nginx in front of several app processes (sticky sessions), from deploy/nginx/qrels.conf."""
    text = render_nginx_site(listen, app)
    if len(app) > 1 and load_settings().db_url.startswith("sqlite"):
        typer.echo(
            "note: several app processes need one PostgreSQL database (QRELS_DB_URL), not SQLite",
            err=True,
        )
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")
