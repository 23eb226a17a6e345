"""Start the web app."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def serve(ctx: typer.Context) -> None:
    """Start the web app (extra options go to `streamlit run`, e.g. --server.port 8502)."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli as streamlit_cli

    # torch and open_clip (seconds to import) load here, before the server answers, not in the
    # first page someone opens; the rest of the CLI imports them only when it embeds.
    import models.embedder  # noqa: F401

    # Streamlit treats a pages/ folder as an old-style multipage app until the first request
    # reaches app.py's st.navigation; if that first request is a deep link (say /users), the
    # whole process would serve page files directly and never run the router. app.py is always
    # the router here.
    PagesManager.uses_pages_directory = False
    # asgi.py serves app.py plus the app's own routes (images, the session cookie: ui/server.py).
    sys.argv = ["streamlit", "run", str(Path(__file__).resolve().parent.parent / "asgi.py"), *ctx.args]
    streamlit_cli.main()
