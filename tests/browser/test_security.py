"""Two real browsers (two cookie jars): a link copied from Alice's address bar gives Bob a read-only view
(her training's progress without Stop, his own form), Alice's refresh keeps her Stop button and her form,
and text planted in a run file shows as text."""

from __future__ import annotations

import json
import re

import pytest

from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from tests.browser import choose_losses, chromium, requires_chromium, screenshot, streamlit_server, wait_until_idle

pytestmark = [pytest.mark.browser, requires_chromium]

INJECTION = "[re-login](http://x.example) ![x](http://x.example/y.png)"
CHOSEN = ["Softmax cross-entropy", "CosFace (AM-Softmax)"]


def plant(runs_dir) -> None:
    """A shared experiment whose run files quote a link and an image: a failed run's message and a run
    whose config.json holds them."""
    store = RunStore(runs_dir)
    failed = store.create(RunConfig(experiment="planted", epochs=3))
    failed.set_status("failed", message=INJECTION)
    broken = store.create(RunConfig(experiment="planted", epochs=3, loss="opl"))
    broken.set_status("finished", message="done")
    config = json.loads((broken.run_dir / "config.json").read_text())
    (broken.run_dir / "config.json").write_text(json.dumps({**config, "feat_dim": INJECTION}))


def active_pills(page) -> set[str]:
    pills = page.get_by_role("toolbar", name="Losses").locator("button[aria-pressed='true']")
    return {text.strip() for text in pills.all_inner_texts()}


def owner_cookie(page, jar) -> dict:
    """The credential cookie, which the server sets with the first page it sends."""
    for _ in range(100):
        found = [c for c in jar.cookies() if c["name"] == "losslens_owner"]
        if found:
            return found[0]
        page.wait_for_timeout(100)
    raise AssertionError("the app set no losslens_owner cookie within 10 s")


def test_a_copied_link_is_read_only_and_a_refresh_keeps_stop_and_the_form(tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    plant(runs_dir)
    with (
        streamlit_server(runs_dir, LOSSLENS_CACHE_DIR=str(tmp_path / "cache")) as url,
        chromium() as browser,
    ):
        alice_jar = browser.new_context(viewport={"width": 1400, "height": 1000})
        bob_jar = browser.new_context(viewport={"width": 1400, "height": 1000})
        alice, bob = alice_jar.new_page(), bob_jar.new_page()

        alice.goto(f"{url}/train")
        wait_until_idle(alice)
        cookie = owner_cookie(alice, alice_jar)
        assert cookie["sameSite"] == "Strict" and cookie["httpOnly"] and len(cookie["value"]) == 87  # ID.MAC
        choose_losses(alice, CHOSEN)
        epochs = alice.get_by_role("textbox", name="Epochs")
        epochs.fill("30")
        epochs.press("Enter")
        wait_until_idle(alice)
        assert active_pills(alice) == set(CHOSEN)
        alice.get_by_role("button", name="Start training").click()
        alice.get_by_text(re.compile(r"epoch \d+ of 30")).first.wait_for(timeout=120_000)
        alice.wait_for_url(re.compile(r"exp=(?!example-)"), timeout=60_000)  # her experiment, not the landing example
        link = alice.url
        assert "u=" not in link and "job=" not in link and cookie["value"] not in link
        alice.get_by_role("button", name="Share a read-only link").click()
        assert alice.locator("[data-testid='stCode']").first.inner_text().strip() == link
        alice.keyboard.press("Escape")
        screenshot(alice, "security-alice-training")

        bob.goto(link)  # Bob opens the link Alice copied from her address bar
        wait_until_idle(bob)
        sidebar = bob.locator("[data-testid='stSidebar']")
        sidebar.get_by_text("Opened from a link").wait_for(timeout=60_000)
        # Alice's training, read-only from its run files: no Stop, and Bob's form stays his own
        bob.get_by_text("Only the browser that started it can stop it").wait_for(timeout=60_000)
        bob.locator("[data-testid='stProgress']").nth(1).wait_for(timeout=60_000)
        wait_until_idle(bob)
        assert bob.locator("[data-testid='stProgress']").count() == 2
        assert bob.get_by_role("button", name="Stop").count() == 0
        assert sidebar.get_by_text("Delete this experiment").count() == 0
        assert bob.get_by_role("button", name="Start training").is_enabled(), "Bob's own form is his"
        assert bob.get_by_role("textbox", name="Epochs").input_value() == "12", "not Alice's 30"
        screenshot(bob, "security-bob-read-only-train")
        bob.get_by_role("link", name="Feature space").click()
        wait_until_idle(bob)
        bob.get_by_text(re.compile(r"training: runs? \d+")).first.wait_for(timeout=60_000)
        assert sidebar.get_by_text("Delete this experiment").count() == 0
        screenshot(bob, "security-bob-read-only-features")
        bob.get_by_role("link", name="Follow the training on the Train page").click()  # not to an empty form
        wait_until_idle(bob)
        bob.get_by_text("Only the browser that started it can stop it").wait_for(timeout=60_000)
        bob.locator("[data-testid='stProgress']").nth(1).wait_for(timeout=60_000)
        wait_until_idle(bob)
        assert bob.locator("[data-testid='stProgress']").count() == 2
        assert bob.get_by_role("button", name="Stop").count() == 0

        alice.reload()  # Alice's refresh: the cookie keeps her the owner; the form keeps her settings
        wait_until_idle(alice)
        alice.get_by_role("button", name="Stop").wait_for(timeout=60_000)
        assert alice.get_by_role("textbox", name="Epochs").input_value() == "30"
        assert active_pills(alice) == set(CHOSEN)
        assert alice.get_by_role("button", name="Start training").is_disabled()
        screenshot(alice, "security-alice-refreshed")
        alice.get_by_role("button", name="Stop").click()
        alice.get_by_text(re.compile(r"Done: \d of 2 runs finished")).wait_for(timeout=120_000)

        bob.goto(f"{url}/?exp=planted&u=someone")
        wait_until_idle(bob)
        assert "u=" not in bob.url
        # a zero-width space keeps "http://" from being linked: the text reads the same
        sidebar.get_by_text(re.compile(r"\[re-login\]\(http.?://x\.example\)")).first.wait_for(timeout=60_000)
        assert bob.locator("a[href^='http://x.example']").count() == 0
        assert bob.locator("img[src^='http://x.example']").count() == 0
        assert sidebar.get_by_text(re.compile("config.json is unreadable")).count() >= 1, "the broken run is listed"
        screenshot(bob, "security-planted-text")
