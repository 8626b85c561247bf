"""Compare on a 1440-pixel screen in a real browser (Debian's Chromium): every variant's name is drawn whole
beside its row of every figure by variant, with presentation mode off and on, and the tables do not
scroll sideways. Saves a screenshot of each for a person to look at (tests/screenshots/)."""

from __future__ import annotations

import re

import pytest

from lab.analysis.seed_stats import METRICS
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from lab.training.loop import train_experiment
from tests.browser import chromium, requires_chromium, screenshot, streamlit_server, wait_until_idle

pytestmark = [pytest.mark.browser, requires_chromium]

EXPERIMENT = "browser-compare-variants"
VARIANTS = ("softmax", "opl", "lsoftmax:margin=2", "lsoftmax:margin=4")
LABELS = ["Softmax cross-entropy", "Orthogonal Projection Loss (OPL)", "L-Softmax m=2", "L-Softmax m=4"]
NUMBER = re.compile(r"[−-]?[\d.]+%?")  # a value axis's tick (plotly writes a minus as U+2212)

# Each figure by variant: its title, the text of each tick label (a label's lines run together) and whether
# the label lies inside the figure, where plotly does not hide it.
VARIANT_LABELS = """() => [...document.querySelectorAll('.js-plotly-plot')]
    .filter(gd => ((gd.layout.title && gd.layout.title.text) || '').includes('by variant'))
    .map(gd => {
        const box = gd.getBoundingClientRect();
        return [...gd.querySelectorAll('g.xtick text, g.ytick text')].map(t => {
            const r = t.getBoundingClientRect();
            const inside = r.width > 0 && r.left >= box.left - 1 && r.right <= box.right + 1;
            return {text: t.textContent, shown: inside && getComputedStyle(t).display !== 'none'};
        });
    })"""


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-compare")
    config = RunConfig(experiment=EXPERIMENT, dataset="digits", epochs=1, train_limit=300, snapshot_points=100)
    records = train_experiment(make_experiment(config, VARIANTS, seeds=[0, 1]), RunStore(root / "runs"))
    assert [r.state for r in records] == ["finished"] * 8
    with streamlit_server(root / "runs") as url:
        yield url


@pytest.mark.parametrize("present", ["0", "1"])
def test_every_variant_is_named_whole_in_every_figure_by_variant(app_url, present):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{app_url}/?exp={EXPERIMENT}&present={present}")
        wait_until_idle(page)
        page.get_by_role("link", name="Compare").click()
        wait_until_idle(page)
        page.locator(".js-plotly-plot").first.wait_for()
        page.wait_for_timeout(1500)
        charts = page.evaluate(VARIANT_LABELS)
        assert len(charts) == len(METRICS)  # a figure by variant for each figure over seeds
        expected = sorted(label.replace(" ", "") for label in LABELS)
        for ticks in charts:
            names = [tick["text"] for tick in ticks if tick["shown"] and not NUMBER.fullmatch(tick["text"])]
            assert sorted(name.replace(" ", "") for name in names) == expected
        for table in page.locator("[data-testid='stDataFrame'] .dvn-scroller").all():
            width = table.evaluate("s => [s.scrollWidth, s.clientWidth]")
            assert width[0] <= width[1], f"a table scrolls sideways: {width}"
        screenshot(page, f"compare-variants-1440{'-present' if present == '1' else ''}")
        page.close()
