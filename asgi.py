"""The web server: Streamlit's app (app.py, the router) plus Qrels Studio's own routes (ui/server.py).

``python cli.py serve`` runs it (``streamlit run asgi.py``); ``make run`` does that.
"""

import streamlit as st

from ui.server import routes

app = st.App("app.py", routes=routes())
