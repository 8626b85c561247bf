"""The real app in headless Chromium: train two losses from the Train page, then look at the results."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from tests.browser import choose_losses, chromium, requires_chromium, screenshot, streamlit_server, wait_until_idle
from tests.conftest import ROOT

pytestmark = [pytest.mark.browser, requires_chromium]


def test_train_two_losses_then_feature_space_and_gradcam(tmp_path):
    runs_dir = tmp_path / "runs"
    with streamlit_server(runs_dir) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(f"{url}/train")
        wait_until_idle(page)
        assert page.get_by_role("heading", name="Train an experiment").is_visible()

        # keep two of the five default losses, one epoch
        choose_losses(page, ["Softmax cross-entropy", "L-Softmax"])
        epochs = page.get_by_role("textbox", name="Epochs", exact=True)  # not its help button
        epochs.fill("1")
        epochs.press("Enter")
        wait_until_idle(page)
        chosen = page.get_by_role("toolbar", name="Losses").locator("button[aria-pressed='true']").all_inner_texts()
        assert chosen == ["Softmax cross-entropy", "L-Softmax"]
        screenshot(page, "train-settings")

        page.get_by_role("button", name="Start training").click()
        page.get_by_text("Done: 2 of 2 runs finished").wait_for(timeout=240_000)
        wait_until_idle(page)
        assert page.locator("[data-testid='stProgress']").count() == 2
        screenshot(page, "train-done")

        page.get_by_role("link", name="Feature space").click()
        wait_until_idle(page)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        titles = page.locator(".js-plotly-plot .gtitle").evaluate_all("nodes => nodes.map(n => n.textContent)")
        assert any(t.startswith("Softmax cross-entropy") for t in titles)
        assert any(t.startswith("L-Softmax") for t in titles)
        assert page.locator(".js-plotly-plot").count() >= 4  # circles and projections of both losses
        screenshot(page, "feature-space")

        page.get_by_role("link", name="Grad-CAM").click()
        wait_until_idle(page)
        page.locator("[data-testid='stImage'] img").first.wait_for(timeout=120_000)
        wait_until_idle(page)
        # 6 images x (image + 2 losses), and the color bar
        assert page.locator("[data-testid='stImage'] img").count() == 6 * 3 + 1
        assert page.get_by_text("GradCAM at each model's last convolution (").is_visible()
        screenshot(page, "gradcam")


# the app's page addresses, as app.py declares them
APP_SOURCE = (ROOT / "app.py").read_text()
URL_PATHS = re.findall(r'url_path="([\w-]+)"', APP_SOURCE)
DEFAULT_PAGE = re.search(r'url_path="([\w-]+)",\s*default=True', APP_SOURCE).group(1)  # Streamlit shows it at /


@pytest.mark.parametrize("url_path", URL_PATHS)
def test_a_shared_page_link_opens_inside_the_app_after_a_restart(tmp_path, url_path):
    """The first request to a fresh server is a page URL (a shared link, a refresh after a restart). Streamlit
    then starts in its legacy mode for a pages/ folder: the page must still come inside the app (its sidebar
    and navigation), at its own address, and Streamlit must not claim that the page does not exist."""
    with streamlit_server(tmp_path / "runs") as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{url}/{url_path}")
        wait_until_idle(page)
        page.locator("h1").first.wait_for()
        assert page.get_by_role("link", name="Feature space").is_visible()  # the app's top navigation
        assert page.locator("[data-testid='stSidebar']").get_by_text("LossLens").is_visible()
        assert page.get_by_text("Page not found").count() == 0
        assert urlparse(page.url).path.strip("/") == ("" if url_path == DEFAULT_PAGE else url_path)
        screenshot(page, f"first-request-{url_path}")


def test_a_switch_of_experiment_never_shows_both_experiments_charts(tmp_path):
    """A new user's switch from the Fashion-MNIST example to the digits one never shows charts of both: the
    3-D example's projection choice once carried over and asked for five UMAPs while the new panels stood
    above the old example's faded projections."""
    from bench.browser import Tab

    cache = str(tmp_path / "cache")
    with streamlit_server(tmp_path / "runs", LOSSLENS_CACHE_DIR=cache) as url, chromium() as browser:
        tab = Tab(browser)
        opened = tab.open("fashion", url)  # a new browser opens on the Fashion-MNIST 3-D example
        assert opened["charts"] == 10 and opened["webgl_contexts"] == 5  # five spheres, five projections
        switch = tab.choose_experiment("to digits", "example-digits-2d", "digits · model")
        assert switch is not None and switch["charts"] == 10 and switch["webgl_contexts"] == 0
        assert switch["mixed"] == 0, f"old and new charts shared the page for {switch['mixed']:.2f} s"
        screenshot(tab.page, "switched-to-digits")
