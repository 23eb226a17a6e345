"""The nginx site for several app processes: rendered from deploy/nginx/qrels.conf, accepted by nginx,
sticky by its route cookie."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.proxy import render_nginx_site
from services.core.errors import ValidationError
from tests.browser import free_port
from tests.proxy import nginx_proxy, require_nginx, routes_to, upstream_of


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"{url} does not answer"
            time.sleep(0.1)


def test_the_site_names_each_process_and_the_listen_address() -> None:
    text = render_nginx_site("127.0.0.1:8080", ["127.0.0.1:8601", "[::1]:8602"])
    assert "listen 127.0.0.1:8080;" in text
    assert "server 127.0.0.1:8601 " in text and "server [::1]:8602 " in text
    assert "{{" not in text
    assert "hash $qs_route consistent;" in text and "proxy_http_version 1.1;" in text


@pytest.mark.parametrize(
    ("listen", "apps", "message"),
    [
        ("8080", ["127.0.0.1:8601"], "listen address '8080' is not HOST:PORT"),
        ("127.0.0.1:8080", ["127.0.0.1:99999"], "app address '127.0.0.1:99999' is not HOST:PORT"),
        ("127.0.0.1:8080", ["127.0.0.1:1; evil"], "is not HOST:PORT"),
        ("127.0.0.1:8080", [], "at least one app process"),
        ("127.0.0.1:8080", ["a:1", "a:1"], "named twice"),
    ],
)
def test_bad_addresses_are_refused_with_what_to_fix(listen: str, apps: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        render_nginx_site(listen, apps)


def test_the_cli_writes_the_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QRELS_DB_URL", f"sqlite:///{tmp_path / 'x.db'}")
    out = tmp_path / "qrels.conf"
    args = ["nginx-config", "--app", "127.0.0.1:8601", "--app", "127.0.0.1:8602", "--out", str(out)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "PostgreSQL" in done.output  # several processes on SQLite: said
    assert "server 127.0.0.1:8602 " in out.read_text()
    bad = CliRunner().invoke(app, ["nginx-config", "--app", "localhost"])
    assert bad.exit_code == 1 and "is not HOST:PORT" in bad.output


def test_nginx_keeps_each_browser_on_one_process_by_its_route_cookie(tmp_path: Path) -> None:
    require_nginx()
    ports = [free_port(), free_port()]
    procs = []
    for port in ports:
        root = Path(tempfile.mkdtemp(dir=tmp_path))
        (root / "_stcore").mkdir()
        (root / "_stcore" / "health").write_text("ok")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(root)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    apps = [f"127.0.0.1:{p}" for p in ports]
    try:
        for port in ports:  # both answer before nginx is asked
            _wait_http(f"http://127.0.0.1:{port}/_stcore/health")
        with nginx_proxy(tmp_path / "nginx", free_port(), apps) as base:
            upstream, cookie = upstream_of(base, None)
            assert upstream in apps
            assert cookie.startswith("qs_route=") and "HttpOnly" in cookie  # a new browser gets a route
            routes = routes_to(base, apps)
            for app, route in routes.items():
                for _ in range(5):
                    assert upstream_of(base, route) == (app, None)  # the same process, no new cookie
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
