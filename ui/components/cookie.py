"""An invisible component that sets or clears the session cookie through the app's own routes.

The page never holds the token: it posts a one-time claim code to ``/qs/session`` and the
server answers with an ``HttpOnly`` cookie (see services/core/sessions.py and ui/server.py).
"""

from __future__ import annotations

import streamlit as st

from ui.server import PREFIX

_JS = """
export default function ({ data, setStateValue }) {
  if (!data || !data.nonce) return;
  const url = data.action === "logout" ? "PREFIX/logout" : "PREFIX/session";
  const body = data.action === "logout" ? "" : data.code;
  let tries = 0;
  const send = () => {
    tries += 1;
    fetch(url, { method: "POST", body, credentials: "same-origin", cache: "no-store" })
      .then((r) => setStateValue("done", { nonce: data.nonce, status: r.status }))
      .catch(() => { if (tries < 5) setTimeout(send, 1000 * tries); });
  };
  send();
}
""".replace("PREFIX", PREFIX)

_cookie = st.components.v2.component("qs_session_cookie", js=_JS)


def set_cookie(code: str, nonce: str) -> dict | None:
    """Exchange ``code`` for the session cookie; the result's ``done`` says when the server answered."""
    result = _cookie(key="qs_cookie", data={"action": "claim", "code": code, "nonce": nonce}, height=0)
    return getattr(result, "done", None)


def clear_cookie(nonce: str) -> None:
    _cookie(key="qs_cookie", data={"action": "logout", "nonce": nonce}, height=0)
