"""The app's own HTTP routes beside Streamlit's: images for the pages, and the session cookie.

- ``GET /qs/media/t/<sha256>.jpg`` (thumbnail) and ``/qs/media/o/<sha256>.<ext>`` (original): the
  media store's files, for logged-in browsers only (the session cookie), cached by the browser for
  good (the name is the content's hash, so it never changes).
- ``POST /qs/session`` with a one-time claim code: answers with the ``HttpOnly; SameSite=Strict``
  session cookie (see :mod:`services.core.sessions`); ``POST /qs/logout`` removes it.

Mounted by ``asgi.py`` through ``st.App(routes=...)``; ``python cli.py serve`` runs that.
"""

from __future__ import annotations

import re
from functools import cache

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from db.session import Database
from services.core import sessions
from services.core.config import load_settings
from services.core.media import MediaStore

PREFIX = "/qs"
_SHA = re.compile(r"^[0-9a-f]{64}$")
_EXTENSIONS = {"jpg", "png", "webp", "gif", "bmp", "tif"}
_FOREVER = "private, max-age=31536000, immutable"


@cache
def _database(url: str) -> Database:
    return Database(url)


def _db() -> Database:
    return _database(load_settings().db_url)


async def _logged_in(request: Request) -> bool:
    cookie = request.cookies.get(sessions.COOKIE)
    return await run_in_threadpool(sessions.media_user, _db(), cookie) is not None


async def thumbnail(request: Request) -> Response:
    sha = request.path_params["sha"]
    if not _SHA.match(sha):
        return PlainTextResponse("no such image", status_code=404)
    if not await _logged_in(request):
        return PlainTextResponse("log in to see images", status_code=401)
    path = MediaStore(load_settings().data_dir).thumb_path(sha)
    if not path.is_file():
        return PlainTextResponse("no such image", status_code=404)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": _FOREVER})


async def original(request: Request) -> Response:
    sha, ext = request.path_params["sha"], request.path_params["ext"].lower()
    if not _SHA.match(sha) or ext not in _EXTENSIONS:
        return PlainTextResponse("no such image", status_code=404)
    if not await _logged_in(request):
        return PlainTextResponse("log in to see images", status_code=401)
    path = MediaStore(load_settings().data_dir).original_path(sha, ext)
    if not path.is_file():
        return PlainTextResponse("no such image", status_code=404)
    return FileResponse(path, headers={"Cache-Control": _FOREVER})


def _secure(request: Request) -> bool:
    """Behind a TLS proxy the request arrives as http with X-Forwarded-Proto: https."""
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


async def session(request: Request) -> Response:
    code = (await request.body()).decode("utf-8", "replace").strip()
    claimed = await run_in_threadpool(sessions.claim, _db(), code)
    if claimed is None:
        return PlainTextResponse("unknown or expired code", status_code=403)
    value, max_age = claimed
    response = Response(status_code=204)
    response.set_cookie(
        sessions.COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def logout(request: Request) -> Response:
    response = Response(status_code=204)
    response.delete_cookie(
        sessions.COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/media/t/{{sha}}.jpg", thumbnail, methods=["GET"]),
        Route(f"{PREFIX}/media/o/{{sha}}.{{ext}}", original, methods=["GET"]),
        Route(f"{PREFIX}/session", session, methods=["POST"]),
        Route(f"{PREFIX}/logout", logout, methods=["POST"]),
    ]
