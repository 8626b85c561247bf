"""Two real browsers on one app: simultaneous trainings (one queued), a refresh mid-training, and a
run that diverges on purpose."""

from __future__ import annotations

import re

import pytest

from tests.browser import choose_losses, chromium, requires_chromium, screenshot, streamlit_server, wait_until_idle

pytestmark = [pytest.mark.browser, requires_chromium]


def set_up_training(page, url: str, losses: list[str], epochs: int, lr: str | None = None) -> None:
    page.goto(f"{url}/train")
    wait_until_idle(page)
    choose_losses(page, losses)
    for label, value in (("Epochs", str(epochs)), ("Learning rate (peak)", lr)):
        if value is not None:
            field = page.get_by_role("textbox", name=label)
            field.fill(value)
            field.press("Enter")
            wait_until_idle(page)


def experiment_options(page) -> list[str]:
    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return options


def test_two_browsers_train_at_once_refresh_reattaches_and_divergence_is_shown(tmp_path):
    with streamlit_server(tmp_path / "runs", LOSSLENS_MAX_TRAININGS="1") as url, chromium() as browser:
        alice = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        bob = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        # Alice's training must outlast the steps below (Bob queued, Alice refreshed): 25 epochs on
        # digits take 10-30 s per loss; any epoch shown proves her job is training.
        set_up_training(alice, url, ["Softmax cross-entropy", "L-Softmax"], epochs=25)
        set_up_training(bob, url, ["Softmax cross-entropy"], epochs=2, lr="10")
        assert bob.get_by_role("textbox", name="Learning rate (peak)").input_value() == "10"

        alice.get_by_role("button", name="Start training").click()
        alice.get_by_text(re.compile(r"epoch \d+ of 25")).first.wait_for(timeout=120_000)
        bob.get_by_role("button", name="Start training").click()
        bob.get_by_text("Waiting for a free training slot: position 1").wait_for(timeout=60_000)
        screenshot(bob, "two-users-queued")
        bob.reload()  # a refresh (a new session) while queued: the experiment has no folder yet
        bob.get_by_text("Waiting for a free training slot: position 1").wait_for(timeout=60_000)

        alice.reload()  # a refresh mid-training re-attaches to the job
        alice.get_by_role("heading", name="Training").wait_for(timeout=60_000)
        alice.locator("[data-testid='stProgress']").nth(1).wait_for(timeout=60_000)
        assert alice.locator("[data-testid='stProgress']").count() == 2
        screenshot(alice, "two-users-refreshed")

        alice.get_by_text("Done: 2 of 2 runs finished").wait_for(timeout=600_000)
        bob.get_by_text("Done: 0 of 1 runs finished").wait_for(timeout=600_000)
        wait_until_idle(bob)
        assert bob.get_by_text("diverged: the loss became").first.is_visible()
        # the sidebar follows after the full rerun the finished job asks for, which a busy server may start late
        sidebar = bob.locator("[data-testid='stSidebar']")
        sidebar.get_by_text("diverged").first.wait_for(timeout=60_000)
        assert sidebar.get_by_text("try a lower learning rate than 10").first.is_visible()
        screenshot(bob, "two-users-diverged")

        wait_until_idle(alice)
        alice_sees = experiment_options(alice)
        bob_sees = experiment_options(bob)
        assert any("2 losses" in option for option in alice_sees)
        assert not any("1 loss " in option for option in alice_sees)  # bob's experiment stays his
        assert not any("2 losses" in option for option in bob_sees)

        alice.get_by_role("link", name="Feature space").click()
        wait_until_idle(alice)
        alice.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        screenshot(alice, "two-users-features")
