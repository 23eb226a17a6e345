"""nginx in front of app processes for the tests: the repo's site file, run unprivileged-style in a folder.

The site (``deploy/nginx/qrels.conf`` rendered by ``cli.proxy.render_nginx_site``) is included in a
minimal main configuration whose pid file, logs and temporary files all live in the test's folder;
nginx runs in the foreground (``daemon off``) and is stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cli.proxy import render_nginx_site

UPSTREAM_HEADER = "X-Qrels-Upstream"
ROUTE_COOKIE = "qs_route"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


def require_nginx() -> str:
    found = nginx_binary()
    if found is None:
        pytest.skip("Debian's nginx is not installed (`make test` installs it when it can)")
    return found


def _main_conf(folder: Path, site: Path) -> str:
    temp = "\n".join(
        f"    {name}_temp_path {folder / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, nginx's workers would switch to nobody, who cannot write the test's folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} info;\n"
        "events { worker_connections 512; }\n"
        f"http {{\n    access_log {folder / 'access.log'};\n{temp}\n    include {site};\n}}\n"
    )


@contextmanager
def nginx_proxy(folder: Path, port: int, apps: list[str]) -> Iterator[str]:
    """Run nginx with the repo's site on ``127.0.0.1:port`` in front of ``apps``; yield its base URL."""
    binary = require_nginx()
    folder.mkdir(parents=True, exist_ok=True)
    site = folder / "qrels.conf"
    site.write_text(render_nginx_site(f"127.0.0.1:{port}", apps), encoding="utf-8")
    conf = folder / "nginx.conf"
    conf.write_text(_main_conf(folder, site), encoding="utf-8")
    args = [binary, "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx refuses the configuration:\n{checked.stderr}")
    log = (folder / "nginx.out").open("ab")
    proc = subprocess.Popen([*args, "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"nginx did not start:\n{(folder / 'error.log').read_text()}"
                    ) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def upstream_of(base: str, route: str | None, path: str = "/_stcore/health") -> tuple[str, str | None]:
    """Which app process answers a request with route cookie ``route`` (and the cookie nginx sets)."""
    request = urllib.request.Request(f"{base}{path}")
    if route is not None:
        request.add_header("Cookie", f"{ROUTE_COOKIE}={route}")
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.headers[UPSTREAM_HEADER], r.headers.get("Set-Cookie")


def routes_to(base: str, apps: list[str], tries: int = 200) -> dict[str, str]:
    """A route cookie value that nginx sends to each app process (the hash decides: ask it)."""
    found: dict[str, str] = {}
    for n in range(tries):
        route = f"test-route-{n}"
        upstream, _ = upstream_of(base, route)
        found.setdefault(upstream, route)
        if set(found) >= set(apps):
            return {app: found[app] for app in apps}
    raise AssertionError(f"nginx sent {tries} routes only to {sorted(found)}, never to all of {apps}")
