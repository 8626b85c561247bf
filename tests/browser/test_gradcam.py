"""The Grad-CAM page of the shipped Fashion-MNIST example in a real browser, on a server that has no
copy of Fashion-MNIST: the grid, the color bar and the metrics table come from the runs' own files."""

from __future__ import annotations

import os
import re

import pytest

from tests.browser import chromium, requires_chromium, screenshot, streamlit_server, wait_until_idle
from tests.conftest import ROOT

pytestmark = [pytest.mark.browser, requires_chromium]

EXAMPLE = "example-fashion-3d"
LOSSES = 5
IMAGES = 6  # the page's default number of images
SCORED = 20  # images the metrics score: enough for CIs, quick on two cores
METRICS = 6  # rows per loss in the metrics table
FIRST_VISIT_MS = 600_000

# Imported by the server's Python at startup (through PYTHONPATH): Debian's dataset-fashion-mnist package
# folder is looked in after the data folder, and CI installs that package, so an empty data folder alone
# would not make the dataset missing. Emptying the entry's extra folders does.
HIDE_SYSTEM_COPY = """\
from lab import datasets

object.__setattr__(datasets.info("fashion-mnist"), "extra_folders", ())
"""


@pytest.fixture
def server_without_fashion(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HIDE_SYSTEM_COPY)
    python_path = os.pathsep.join(p for p in (str(hook), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    runs_dir = tmp_path / "runs"
    with streamlit_server(runs_dir, LOSSLENS_DATA_DIR=str(data_dir), PYTHONPATH=python_path) as url:
        yield url, runs_dir
    assert not any(data_dir.iterdir()), "the app downloaded or wrote data although the runs hold their images"


def test_gradcam_page_on_the_fashion_example_without_the_dataset(server_without_fashion):
    url, runs_dir = server_without_fashion
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(f"{url}/gradcam?exp={EXAMPLE}")
        wait_until_idle(page)
        page.get_by_role("heading", name="Grad-CAM").wait_for(timeout=60_000)
        images = page.locator("[data-testid='stImage'] img")
        images.first.wait_for(timeout=120_000)
        wait_until_idle(page)

        # no dataset: the images are the ones the runs stored, and the page says so
        assert page.get_by_text("the dataset is not on this machine, so images are drawn from these").is_visible()

        # the grid: a header per loss, six rows of (image + one map per loss), then the color bar
        for loss in ("Softmax cross-entropy", "L-Softmax", "AMC-Loss"):
            assert page.get_by_text(loss, exact=True).first.is_visible(), loss
        assert images.count() == IMAGES * (1 + LOSSES) + 1
        screenshot(page, "gradcam-fashion-top")
        sizes = images.evaluate_all("nodes => nodes.map(n => [n.naturalWidth, n.naturalHeight])")
        assert all(width > 0 and height > 0 for width, height in sizes), "an image did not load"
        cells = sizes[1 : 1 + LOSSES]
        assert all(width >= 28 for width, _ in cells), "a map is smaller than the 28x28 image"
        assert page.get_by_text(re.compile(r"GradCAM at each model's last convolution \(7x7 cells\)")).is_visible()
        assert page.get_by_text("each map on its own scale", exact=False).first.is_visible()

        # the color bar: a wide, short legend under the grid
        bar = images.last
        bar_width, bar_height = sizes[-1]
        assert bar_width > 4 * bar_height, sizes[-1]
        bar.scroll_into_view_if_needed()
        assert bar.is_visible()
        screenshot(page, "gradcam-fashion-grid")

        # the metrics wait until asked for, then fill a table per loss with a row per metric
        heading = page.get_by_role("heading", name="How interpretable are these maps?")
        heading.scroll_into_view_if_needed()
        tables = page.locator("[data-testid='stTable']").filter(has=page.locator("th", has_text="verdict"))
        assert tables.count() == 0
        count = page.get_by_role("spinbutton", name="Images to score")
        count.fill(str(SCORED))
        count.press("Enter")
        wait_until_idle(page)
        page.get_by_text("Score the maps").click()
        tables.first.wait_for(timeout=300_000)
        wait_until_idle(page, timeout=300_000)
        assert tables.count() == 2 * LOSSES  # the example's seeds first, then the seed shown, a table per loss each
        first = tables.first
        columns = first.locator("th").all_inner_texts()
        for column in ("metric", "value", "95% CI", "random map", "centred Gaussian", "verdict", "adjusted p"):
            assert column in columns, columns
        assert first.locator("tbody tr").count() == METRICS
        assert "deletion AUC" in first.locator("tbody tr").first.inner_text()
        # on a 1440-pixel screen every table fits the main column and every cell shows all its text
        page.set_viewport_size({"width": 1440, "height": 900})
        wait_until_idle(page)
        right = page.locator("[data-testid='stMainBlockContainer']").evaluate("n => n.getBoundingClientRect().right")
        for i in range(LOSSES):
            table = tables.nth(i)
            assert table.evaluate("n => n.getBoundingClientRect().right") <= right + 1
            cut = table.locator("th, td").evaluate_all(
                "cells => cells.filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.innerText)"
            )
            assert not cut, cut
        first.evaluate("node => node.scrollIntoView({block: 'start'})")
        screenshot(page, "gradcam-fashion-metrics")

        # the claim: every other loss against softmax, in a sentence with its numbers
        comparisons = page.locator("[data-testid='stExpander'] summary").all_inner_texts()
        # every other loss against softmax over the example's seeds, then on the seed shown
        assert sum("softmax" in label and "training seeds" in label for label in comparisons) == LOSSES - 1, comparisons
        assert sum("softmax" in label and "images" in label for label in comparisons) == LOSSES - 1, comparisons
        page.locator("[data-testid='stExpander'] summary").filter(has_text="AMC-Loss").first.click()
        wait_until_idle(page)
        screenshot(page, "gradcam-fashion-claim")
        assert not page.locator("[data-testid='stException']").count()


def test_a_first_visit_opens_on_the_fashion_example_with_maps_in_the_inspector(server_without_fashion):
    url, _ = server_without_fashion
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(url)  # no experiment named: what a first-time visitor sees
        # a cold server imports torch, plotly and pytorch-grad-cam and draws five 3-D charts of 10,000
        # points each: minutes on two cores that other work shares
        wait_until_idle(page, timeout=FIRST_VISIT_MS)
        page.get_by_role("heading", name="Feature space").wait_for(timeout=FIRST_VISIT_MS)
        assert page.url.endswith(f"?exp={EXAMPLE}"), page.url  # the app chose the Fashion-MNIST example
        page.get_by_role("heading", name="Inspect an image").wait_for(timeout=FIRST_VISIT_MS)
        page.locator(".js-plotly-plot").first.wait_for(timeout=FIRST_VISIT_MS)
        wait_until_idle(page, timeout=FIRST_VISIT_MS)
        # the stored image, one map per loss and the color bar, all drawn without the dataset
        images = page.locator("[data-testid='stImage'] img")
        assert images.count() == 1 + LOSSES + 1
        sizes = images.evaluate_all("nodes => nodes.map(n => [n.naturalWidth, n.naturalHeight])")
        assert all(width > 0 and height > 0 for width, height in sizes), "an image did not load"
        assert not page.locator("[data-testid='stException']").count()
        screenshot(page, "first-visit-fashion")
