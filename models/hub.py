"""Where an open_clip ``pretrained`` tag's weights come from, checked before any download starts.

open_clip fetches a tag's weights from the Hugging Face hub (or a URL) and caches them. Without a
network, huggingface_hub retries each file with backoff for about 40 s before it gives up. So
:func:`weights_source` looks first: weights already in the local cache load with the hub set
offline (no request at all); weights that are not cached need the hub, and when the hub is
offline (``HF_HUB_OFFLINE``) or its host cannot be reached the caller learns at once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import open_clip

__all__ = ["WeightsSource", "hub_offline", "reachable", "weights_source"]

#: How long the reachability probe waits for name resolution and a TCP connect, in seconds.
PROBE_TIMEOUT_S = 3.0
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_offline_lock = threading.Lock()


@dataclass(frozen=True)
class WeightsSource:
    """Where a tag's weights would be loaded from.

    Attributes:
        cached: the weights are in the local cache: load them with :func:`hub_offline`.
        problem: why they cannot be had (not cached and no network), or ``None``.
    """

    cached: bool
    problem: str | None = None


def _hub() -> object | None:
    try:
        import huggingface_hub
    except ImportError:  # open_clip then downloads from URLs only
        return None
    return huggingface_hub


def _hf_cached(repo_and_file: str) -> bool:
    """Whether the local hub cache holds the file open_clip would fetch for ``org/repo/[file]``."""
    hub = _hub()
    if hub is None:
        return False
    from open_clip import pretrained as oc_pretrained

    repo_id, filename = os.path.split(repo_and_file)
    filename = filename or oc_pretrained.HF_WEIGHTS_NAME
    # open_clip tries the .safetensors alternatives first, then the named file.
    for name in [*oc_pretrained._get_safe_alternatives(filename), filename]:
        found = hub.try_to_load_from_cache(repo_id, name)  # type: ignore[attr-defined]
        if isinstance(found, str) and Path(found).is_file():
            return True
    return False


def _url_cached(url: str) -> bool:
    return (Path("~/.cache/clip").expanduser() / os.path.basename(url)).is_file()


def _hub_host() -> tuple[str, int]:
    hub = _hub()
    endpoint = getattr(getattr(hub, "constants", None), "ENDPOINT", None) or "https://huggingface.co"
    parsed = urlparse(endpoint)
    return parsed.hostname or "huggingface.co", parsed.port or (443 if parsed.scheme == "https" else 80)


def _hub_offline_configured() -> bool:
    hub = _hub()
    return bool(hub is not None and hub.constants.is_offline_mode())  # type: ignore[attr-defined]


def reachable(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds (name lookup included)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    # getaddrinfo has no timeout of its own: a thread bounds a resolver that hangs.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def weights_source(model: str, pretrained: str) -> WeightsSource:
    """Check, without downloading, whether the weights of an open_clip tag can be loaded here.

    Args:
        model: an open_clip model name.
        pretrained: one of its ``pretrained`` tags (a known one: the caller checked).

    Returns:
        ``cached`` when the local cache holds the weights; otherwise a ``problem`` when the hub is
        offline or unreachable (none when a proxy is set: it may well reach what a probe cannot).
    """
    cfg = open_clip.get_pretrained_cfg(model, pretrained) or {}
    if cfg.get("file"):
        return WeightsSource(cached=True)
    hf_hub, url = cfg.get("hf_hub", ""), cfg.get("url", "")
    if _hub() is None:
        hf_hub = ""  # open_clip then downloads from the URL
    # open_clip prefers the hub when a tag has both: a URL download cached elsewhere is not used.
    if (hf_hub and _hf_cached(hf_hub)) or (not hf_hub and url and _url_cached(url)):
        return WeightsSource(cached=True)
    where = f"the Hugging Face hub ({hf_hub.rstrip('/')})" if hf_hub else url
    if hf_hub and _hub_offline_configured():
        return WeightsSource(
            cached=False,
            problem=f"its weights are not in the local cache and the hub is set offline (HF_HUB_OFFLINE); "
            f"they come from {where}",
        )
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return WeightsSource(cached=False)
    host, port = _hub_host() if hf_hub else (urlparse(url).hostname or "", 443)
    if not reachable(host, port):
        return WeightsSource(
            cached=False,
            problem=f"its weights are not in the local cache and {host} cannot be reached (no network?); "
            f"they come from {where}",
        )
    return WeightsSource(cached=False)


@contextlib.contextmanager
def hub_offline(enabled: bool = True) -> Iterator[None]:
    """Set huggingface_hub offline for the duration (cached weights then load without a request)."""
    hub = _hub()
    if not enabled or hub is None:
        yield
        return
    constants = hub.constants  # type: ignore[attr-defined]
    with _offline_lock:
        before = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = True
        try:
            yield
        finally:
            constants.HF_HUB_OFFLINE = before
