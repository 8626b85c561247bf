"""Owner credentials (lab.runs.credentials) and the middleware that sets them as an HttpOnly cookie
(ui.owner_cookie), without a browser: what is issued, what is honored, and what reaches the session."""

from __future__ import annotations

import asyncio
import http.cookies
import os
import stat
import time

import pytest

from lab.runs import credentials
from ui import owner_cookie

SECRET = b"a test secret of at least 32 bytes, fixed"


def test_an_issued_credential_verifies_and_nothing_else_does():
    issued = credentials.issue(SECRET)
    assert credentials.verify(SECRET, issued)
    ident, mac = issued.split(".")
    forged = [
        "F" * 43,  # what the old credentials looked like
        credentials.issue(b"another server's secret".ljust(32, b".")),
        f"{ident}.{'A' * 43}",
        f"{'A' * 43}.{mac}",
        issued + "x",
        issued[:-1],
        None,
        42,
        "١" * 87,
    ]
    assert not any(credentials.verify(SECRET, value) for value in forged)
    assert credentials.owner_of(issued) != credentials.owner_of(credentials.issue(SECRET))
    assert ident not in credentials.owner_of(issued) and mac not in credentials.owner_of(issued)


def test_the_secret_is_kept_beside_the_runs_privately(tmp_path, monkeypatch):
    monkeypatch.delenv(credentials.SECRET_ENV, raising=False)
    first = credentials._read_or_create(tmp_path / credentials.SECRET_FILE)
    assert stat.S_IMODE(os.stat(tmp_path / credentials.SECRET_FILE).st_mode) == 0o600
    assert credentials._read_or_create(tmp_path / credentials.SECRET_FILE) == first, "a restart keeps it"
    os.chmod(tmp_path / credentials.SECRET_FILE, 0o644)
    assert credentials._read_or_create(tmp_path / credentials.SECRET_FILE) == first
    assert stat.S_IMODE(os.stat(tmp_path / credentials.SECRET_FILE).st_mode) == 0o600


def test_servers_share_the_secret_through_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(credentials.SECRET_ENV, "s" * 40)
    one = credentials.server_secret(str(tmp_path / "one"))
    other = credentials.server_secret(str(tmp_path / "other"))
    assert one == other and not (tmp_path / "one" / credentials.SECRET_FILE).exists()
    monkeypatch.setenv(credentials.SECRET_ENV, "short")
    with pytest.raises(credentials.CredentialError, match="at least 32 characters"):
        credentials.server_secret(str(tmp_path / "third"))


def test_a_claim_token_carries_its_credential_until_it_expires():
    issued = credentials.issue(SECRET)
    token = credentials.claim_token(SECRET, issued, now=1000.0)
    assert credentials.claimed(SECRET, token, now=1000.0 + credentials.CLAIM_SECONDS) == issued
    assert credentials.claimed(SECRET, token, now=1001.0 + credentials.CLAIM_SECONDS) is None
    later = token.replace(f"~{1000 + credentials.CLAIM_SECONDS}~", f"~{10**10}~")
    assert credentials.claimed(SECRET, later, now=1000.0) is None, "its expiry is signed"
    other = credentials.claim_token(b"another".ljust(32), issued, now=1000.0)
    assert credentials.claimed(SECRET, other, now=1000.0) is None


# ---------------------------------------------------------------- the middleware


def serve(scope: dict) -> tuple[list[dict], dict]:
    """The messages ``OwnerCookie`` sends for ``scope`` in front of an app that answers with an HTML page or
    accepts the websocket, and the scope that app saw."""
    seen: dict = {}

    async def app(scope, receive, send):
        seen.update(scope)
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
        else:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
            await send({"type": "http.response.body", "body": b"<html>"})

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    asyncio.run(owner_cookie.OwnerCookie(app)({"path": "/", "method": "GET", **scope}, receive, send))
    return sent, seen


def set_cookies(messages: list[dict]) -> list[http.cookies.Morsel]:
    found = []
    for message in messages:
        for name, value in message.get("headers") or []:
            if name == b"set-cookie":
                cookie = http.cookies.SimpleCookie()
                cookie.load(value.decode())
                found += list(cookie.values())
    return found


def starlette_cookies(header: bytes) -> dict[str, str]:
    """The cookies Streamlit's session reads from a ``Cookie`` header (``st.context.cookies``)."""
    from starlette.requests import cookie_parser

    return cookie_parser(header.decode("latin-1"))


def cookies_seen(scope: dict) -> list[str]:
    return owner_cookie.sent_values(scope["headers"])


@pytest.fixture
def secret(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLENS_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv(credentials.SECRET_ENV, raising=False)
    credentials.server_secret.cache_clear()
    yield credentials.server_secret(credentials.runs_root())
    credentials.server_secret.cache_clear()


@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_a_browser_without_an_issued_credential_gets_one_httponly(secret, kind):
    sent, seen = serve({"type": kind, "headers": [(b"cookie", b"losslens_owner=" + b"F" * 43 + b"; theme=dark")]})
    (morsel,) = set_cookies(sent)
    assert credentials.verify(secret, morsel.value)
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/" and not morsel["secure"]
    assert cookies_seen(seen) == [morsel.value], "the session sees the new credential, not the planted one"
    (cookie,) = [value for name, value in seen["headers"] if name == b"cookie"]  # Starlette reads only one
    assert starlette_cookies(cookie) == {"theme": "dark", owner_cookie.COOKIE: morsel.value}, "other cookies pass"


def test_over_https_the_cookie_is_secure(secret):
    sent, _ = serve({"type": "http", "scheme": "https", "headers": []})
    assert set_cookies(sent)[0]["secure"]


def test_an_issued_credential_passes_and_a_planted_one_beside_it_is_dropped(secret):
    mine = credentials.issue(secret)
    header = f"losslens_owner={'F' * 43}; losslens_owner={mine}".encode()
    sent, seen = serve({"type": "websocket", "headers": [(b"cookie", header)]})
    assert not set_cookies(sent) and cookies_seen(seen) == [mine]


def test_two_issued_credentials_are_a_conflict_and_neither_counts(secret):
    mine, theirs = credentials.issue(secret), credentials.issue(secret)
    header = f"losslens_owner={theirs}; losslens_owner={mine}".encode()
    sent, seen = serve({"type": "websocket", "headers": [(b"cookie", header)]})
    assert not set_cookies(sent), "the browser's own cookie is not overwritten"
    assert cookies_seen(seen) == [] and (owner_cookie.CONFLICT_HEADER.encode(), b"1") in seen["headers"]
    _, seen = serve({"type": "websocket", "headers": [(owner_cookie.CONFLICT_HEADER.encode(), b"1")]})
    assert (owner_cookie.CONFLICT_HEADER.encode(), b"1") not in seen["headers"], "a browser cannot send it"


def test_a_claim_sets_its_credential_and_a_forged_claim_is_refused(secret):
    mine = credentials.issue(secret)
    token = credentials.claim_token(secret, mine, time.time())
    query = f"t={token}".encode()
    sent, _ = serve(
        {"type": "http", "method": "POST", "path": owner_cookie.CLAIM_PATH, "query_string": query, "headers": []}
    )
    assert sent[0]["status"] == 204 and [m.value for m in set_cookies(sent)] == [mine]
    forged = credentials.claim_token(b"not the server's".ljust(32), mine, time.time())
    for method, query in (("POST", f"t={forged}".encode()), ("GET", f"t={token}".encode())):
        sent, _ = serve(
            {"type": "http", "method": method, "path": owner_cookie.CLAIM_PATH, "query_string": query, "headers": []}
        )
        assert sent[0]["status"] == 403 and not set_cookies(sent)
