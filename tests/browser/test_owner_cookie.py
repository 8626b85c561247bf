"""The owner cookie in real browsers: a page of another site on another port of the same host (cookies do
not tell ports apart) can neither read the credential nor plant one that the server honors, and the
victim's training survives; two tabs a browser opens before it holds a cookie are one owner, and the
owner of a running training keeps its Stop when cookies are cleared in the middle of it."""

from __future__ import annotations

import contextlib
import http.server
import re
import threading
from collections.abc import Iterator

import pytest

from bench.browser import free_port
from tests.browser import choose_losses, chromium, requires_chromium, screenshot, streamlit_server, wait_until_idle

pytestmark = [pytest.mark.browser, requires_chromium]

COOKIE = "losslens_owner"
FORGED = "F" * 43  # well formed as the old credentials were, issued by nobody
ATTACKER_PAGE = b"<!doctype html><title>another site on this host</title><p>hello</p>"
VIEWPORT = {"width": 1400, "height": 1000}


@contextlib.contextmanager
def other_site() -> Iterator[str]:
    """A page served from another port of the same host (127.0.0.1), as another site there would be."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(ATTACKER_PAGE)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def owner_cookies(jar) -> list[dict]:
    return [cookie for cookie in jar.cookies() if cookie["name"] == COOKIE]


def start_training(page, url: str | None) -> None:
    """Start a 30-epoch training of two losses on the Train page (opened at ``url``; None: the page shows it
    already) and wait until it runs."""
    if url is not None:
        page.goto(f"{url}/train")
        wait_until_idle(page)
    choose_losses(page, ["Softmax cross-entropy", "CosFace (AM-Softmax)"])
    epochs = page.get_by_role("textbox", name="Epochs", exact=True)
    epochs.fill("30")
    epochs.press("Enter")
    wait_until_idle(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"epoch \d+ of 30")).first.wait_for(timeout=120_000)
    page.wait_for_url(re.compile(r"exp=(?!example-)"), timeout=60_000)


def sees_stop(page, url: str) -> bool:
    page.goto(url)
    wait_until_idle(page)
    page.get_by_text(re.compile(r"epoch \d+ of 30|Only the browser that started it")).first.wait_for(timeout=60_000)
    wait_until_idle(page)
    return page.get_by_role("button", name="Stop").count() > 0


def test_another_port_can_neither_read_nor_plant_the_owner_cookie(tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    with (
        streamlit_server(runs_dir, LOSSLENS_CACHE_DIR=str(tmp_path / "cache")) as url,
        other_site() as elsewhere,
        chromium() as browser,
    ):
        victim_jar = browser.new_context(viewport=VIEWPORT)
        attacker_jar = browser.new_context(viewport=VIEWPORT)
        victim, attacker = victim_jar.new_page(), attacker_jar.new_page()

        # before the victim's first visit, the other site plants a well-formed value nobody issued
        victim.goto(elsewhere)
        victim.evaluate(f"document.cookie = '{COOKIE}={FORGED}; Path=/; Max-Age=3600'")
        start_training(victim, url)
        link = victim.url
        (cookie,) = owner_cookies(victim_jar)
        assert cookie["value"] != FORGED, "the server replaced the planted value with one it issued"
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        # the other site reads the victim's cookies: the credential is not among them
        victim.goto(elsewhere)
        assert COOKIE not in victim.evaluate("document.cookie")
        # it tries to overwrite the credential (refused: the cookie is HttpOnly) and to shadow it for the
        # websocket's path with a credential the server issued to the attacker's own browser
        attacker.goto(f"{url}/train")
        wait_until_idle(attacker)
        (attackers,) = owner_cookies(attacker_jar)
        victim.evaluate(f"document.cookie = '{COOKIE}={FORGED}; Path=/; Max-Age=3600'")
        victim.evaluate(f"document.cookie = '{COOKIE}={attackers['value']}; Path=/_stcore; Max-Age=3600'")
        assert cookie["value"] in {c["value"] for c in owner_cookies(victim_jar)}, "not overwritten"

        # the attacker's browser, holding the planted values, gets neither Stop nor Delete
        for value in (FORGED, attackers["value"]):
            attacker_jar.clear_cookies()
            attacker_jar.add_cookies([{"name": COOKIE, "value": value, "url": url}])
            assert not sees_stop(attacker, link), f"a browser holding {value[:8]}... stopped the victim"
            assert attacker.get_by_text("Delete this experiment").count() == 0
        screenshot(attacker, "owner-cookie-attacker-read-only")

        # the victim, whose browser now sends two issued credentials, is a visitor with a warning, never
        # the attacker; once the shadowing cookie is gone the victim has the Stop button again
        assert not sees_stop(victim, link)
        victim.get_by_text("more than one LossLens owner cookie").wait_for(timeout=60_000)
        screenshot(victim, "owner-cookie-shadowed")
        victim_jar.clear_cookies()
        victim_jar.add_cookies(
            [{"name": COOKIE, "value": cookie["value"], "url": url, "httpOnly": True, "sameSite": "Strict"}]
        )
        assert sees_stop(victim, link), "the victim's training survived and is still the victim's"
        victim.get_by_role("button", name="Stop").click()
        victim.get_by_text(re.compile(r"Done: \d of 2 runs finished")).wait_for(timeout=120_000)


def test_two_tabs_opened_before_the_cookie_are_one_owner(tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    with streamlit_server(runs_dir, LOSSLENS_CACHE_DIR=str(tmp_path / "cache")) as url, chromium() as browser:
        jar = browser.new_context(viewport=VIEWPORT)
        first, second = jar.new_page(), jar.new_page()
        # both tabs ask for the app at once, so neither request carries a cookie
        first.evaluate(f"location.href = '{url}/train'")
        second.evaluate(f"location.href = '{url}/train'")
        wait_until_idle(first)
        wait_until_idle(second)
        # the worst order of that race, made certain: the first tab's session holds one credential and the
        # second tab's page load, cookieless, replaces the browser's cookie after the first tab connected
        jar.clear_cookies()
        second.reload()
        wait_until_idle(second)
        start_training(first, None)  # in the session the first tab opened with
        link = first.url
        second.get_by_role("link", name="Learn").click()  # the other tab goes on in its own session
        wait_until_idle(second)
        assert sees_stop(first, link), "the tab that started the training, refreshed, still owns it"
        assert sees_stop(second, link), "and so does the other tab, refreshed"
        screenshot(second, "owner-cookie-second-tab")
        # cookies cleared during the training: the next page view of an open tab gives them back
        jar.clear_cookies()
        second.get_by_role("link", name="Learn").click()
        wait_until_idle(second)
        second.wait_for_timeout(1000)  # the page's request that sets the cookie
        assert owner_cookies(jar), "the open tab of the training's owner set its cookie again"
        assert sees_stop(second, link), "so a refresh after clearing cookies keeps Stop"
        second.get_by_role("button", name="Stop").click()
        second.get_by_text(re.compile(r"Done: \d of 2 runs finished")).wait_for(timeout=120_000)
