"""The owner cookie, set by the server itself: an ASGI middleware in front of Streamlit (``app.py`` serves
the app as ``st.App`` with it).

A script cannot set an ``HttpOnly`` cookie and Streamlit has no call that sets one, so the server sets it:
every HTML page and the websocket handshake of a browser that holds no credential this server issued
(:mod:`lab.runs.credentials`) get a fresh one in a ``Set-Cookie`` header (``HttpOnly; SameSite=Strict``, ``Secure``
over HTTPS). The handshake's ``Cookie`` header is rewritten so that the session sees exactly the credential
that counts, or none: values nobody issued are dropped, and so is every value when the browser sends
*several* issued ones (a page of another site on this host can add a cookie of the same name for a longer
path, which browsers send first; the server cannot tell which is the browser's own, so it honors none and
says so through :data:`CONFLICT_HEADER`, instead of overwriting the browser's own).

One browser is one owner across its tabs, but two tabs opened before the browser holds a cookie each get
one, and the later overwrites the earlier: a session may hold a credential its browser no longer does.
So a session that starts a training asks its own page to make its credential the browser's cookie
(:data:`CLAIM_PATH`, with a short-lived token signed for that credential, :func:`lab.runs.credentials.claim_token`):
whichever tab trains, every tab of the browser is its owner once refreshed.
"""

from __future__ import annotations

import http.cookies
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from lab.runs import credentials

logger = logging.getLogger(__name__)

COOKIE = "losslens_owner"
COOKIE_SECONDS = 365 * 24 * 3600
CONFLICT_HEADER = "x-losslens-owner-conflict"  # set on the request the session reads, never by the browser
CLAIM_PATH = "/losslens/claim"  # POST ?t=TOKEN: the token's credential becomes the browser's cookie

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def sent_values(headers: list[tuple[bytes, bytes]]) -> list[str]:
    """Every value the browser sent for :data:`COOKIE`, in the order it sent them."""
    values = []
    for name, value in headers:
        if name.lower() != b"cookie":
            continue
        for pair in value.decode("latin-1").split(";"):
            key, sep, found = pair.strip().partition("=")
            if sep and key == COOKIE:
                values.append(found.strip().strip('"'))
    return values


def choose(secret: bytes, values: list[str]) -> tuple[str | None, bool]:
    """(the credential that counts or None, whether the browser sent several issued ones)."""
    issued = list(dict.fromkeys(value for value in values if credentials.verify(secret, value)))
    if len(issued) == 1:
        return issued[0], False
    return None, len(issued) > 1


def set_cookie_header(credential: str, path: str, secure: bool) -> tuple[bytes, bytes]:
    cookie = http.cookies.SimpleCookie()
    cookie[COOKIE] = credential
    morsel = cookie[COOKIE]
    morsel["path"] = path
    morsel["max-age"] = COOKIE_SECONDS
    morsel["httponly"] = True
    morsel["samesite"] = "Strict"
    if secure:
        morsel["secure"] = True
    return b"set-cookie", morsel.OutputString().encode("latin-1")


def _rewritten(headers: list[tuple[bytes, bytes]], credential: str | None, conflict: bool) -> list[tuple[bytes, bytes]]:
    """``headers`` with one ``Cookie`` header (Starlette reads only the first): the browser's other cookies,
    then ``credential`` as :data:`COOKIE`, if any."""
    kept, pairs = [], []
    for name, value in headers:
        if name.lower() == b"cookie":
            found = [p.strip() for p in value.decode("latin-1").split(";")]
            pairs += [p for p in found if p and p.partition("=")[0].strip() != COOKIE]
        elif name.lower() != CONFLICT_HEADER.encode():
            kept.append((name, value))
    if credential is not None:
        pairs.append(f"{COOKIE}={credential}")
    if pairs:
        kept.append((b"cookie", "; ".join(pairs).encode("latin-1")))
    if conflict:
        kept.append((CONFLICT_HEADER.encode(), b"1"))
    return kept


def _secure(scope: Scope) -> bool:
    if scope.get("scheme") in ("https", "wss"):
        return True
    forwarded = dict(scope.get("headers") or []).get(b"x-forwarded-proto", b"")
    return forwarded.split(b",")[0].strip().lower() == b"https"


class OwnerCookie:
    """ASGI middleware: see the module docstring. ``base_path`` is Streamlit's ``server.baseUrlPath``."""

    def __init__(self, app: ASGIApp, base_path: str = "") -> None:
        self.app = app
        self.path = "/" + base_path.strip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        secret = credentials.server_secret(credentials.runs_root())
        if scope["type"] == "http" and scope.get("path") == self.path.rstrip("/") + CLAIM_PATH:
            await self._claim(scope, send, secret)
            return
        headers = list(scope.get("headers") or [])
        credential, conflict = choose(secret, sent_values(headers))
        fresh = None
        if credential is None and not conflict:
            fresh = credential = credentials.issue(secret)
        if conflict:
            logger.warning("a browser sent several owner credentials; none is honored for its session")
        scope = dict(scope, headers=_rewritten(headers, credential, conflict))
        if fresh is None:
            await self.app(scope, receive, send)
            return
        set_cookie = set_cookie_header(fresh, self.path, _secure(scope))

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "websocket.accept" or (
                message["type"] == "http.response.start" and _is_html(message.get("headers") or [])
            ):
                message = dict(message, headers=[*(message.get("headers") or []), set_cookie])
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _claim(self, scope: Scope, send: Send, secret: bytes) -> None:
        """Answer a page's claim (see the module docstring): 204 with the cookie, or 403."""
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        credential = credentials.claimed(secret, (query.get("t") or [""])[0], time.time())
        headers = [(b"cache-control", b"no-store")]
        if scope.get("method") == "POST" and credential is not None:
            status = 204
            headers.append(set_cookie_header(credential, self.path, _secure(scope)))
        else:
            status = 403
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in headers)
