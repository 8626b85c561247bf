"""The teaching views in a real browser (Debian's Chromium): clicks pick images on 2-D charts and on the
sphere map, the picked image is ringed in every panel and shown beside the charts, Play animates the
epochs, the Angles bound's label has its own box, the Compare table fits a 1440-pixel screen, the
playground reads every loss where it is clicked, and presentation mode folds the sidebar and enlarges
everything. The last test saves a screenshot of every page, 2-D and 3-D, with presentation mode off and
on, for a person to look at (tests/screenshots/)."""

from __future__ import annotations

import pytest

from lab.analysis import wording
from lab.figures import JITTER
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.training.loop import train_experiment
from tests.browser import chromium, requires_chromium, screenshot, streamlit_server, wait_until_idle
from tests.conftest import FULL_TESTS

pytestmark = [pytest.mark.browser, requires_chromium]

TWO_D = "browser-digits-2d"
THREE_D = "browser-digits-3d"
WIDE = {"width": 1440, "height": 1000}
PROJECTOR = {"width": 1920, "height": 1080}
EVAL_IMAGES = 250  # of digits' 360 test images: the accuracy after each epoch is this subset's
PAGES = ("", "angles", "gradcam", "compare", "learn", "train")  # "": Feature space, the default page
VIEW_BUTTONS = "[data-testid='stButtonGroup'] button"  # segmented controls' buttons, as Feature space's view choice

# The figures a page draws, read from plotly's own graph divs: title, trace names and the points of each.
CHARTS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
    title: (gd.layout.title && gd.layout.title.text) || '',
    font: gd.layout.font && gd.layout.font.size,
    traces: gd.data.map(t => ({name: t.name || '', n: (t.x || []).length})),
}))"""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    store = RunStore(tmp_path_factory.mktemp("browser-teach") / "runs")
    for dim, experiment in ((2, TWO_D), (3, THREE_D)):
        configs = [
            RunConfig(
                loss=loss, feat_dim=dim, epochs=2, experiment=experiment, snapshot_points=200, eval_images=EVAL_IMAGES
            )
            for loss in ("softmax", "cosface")
        ]
        train_experiment(configs, store)
    return store


@pytest.fixture(scope="module")
def app_url(store):
    with streamlit_server(store.root) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


def open_page(browser, url: str, path: str, experiment: str, viewport: dict = WIDE, **params: str):
    page = browser.new_page(viewport=viewport)
    query = "&".join(f"{k}={v}" for k, v in {"exp": experiment, **params}.items())
    page.goto(f"{url}/?{query}")  # the app's root first: a fresh server answers a page's own URL with a dialog
    wait_until_idle(page)
    if path:
        page.get_by_role(
            "link", name={"angles": "Angles", "gradcam": "Grad-CAM", "compare": "Compare"}.get(path, path.capitalize())
        ).click()
        wait_until_idle(page)
    page.locator("[data-testid='stApp']").first.wait_for()
    page.wait_for_timeout(1500)
    return page


def charts(page) -> list[dict]:
    return page.evaluate(CHARTS)


def feature_charts(page) -> list[dict]:
    return [c for c in charts(page) if "epoch" in c["title"] or "before training" in c["title"]]


def ringed(chart: dict) -> bool:
    return any(t["name"] == "selected" and t["n"] == 1 for t in chart["traces"])


def inspected_index(page) -> int:
    return int(page.locator("input[aria-label='Test image index']").input_value())


def click_and_settle(page, selector: str, text: str, settle_ms: int = 1000) -> None:
    """Click the first ``selector`` element showing ``text``, wait for the app's rerun, then give plotly
    ``settle_ms`` to redraw the charts."""
    page.locator(selector).filter(has_text=text).first.click()
    wait_until_idle(page)
    page.wait_for_timeout(settle_ms)


def click_a_point(page, chart_index: int, point_index: int) -> None:
    """Click one marker of one class trace of the chart ``chart_index`` (2-D: SVG paths)."""
    chart = page.locator(".js-plotly-plot").nth(chart_index)
    chart.locator("g.scatterlayer g.trace g.points path.point").nth(point_index).click(force=True)
    page.wait_for_timeout(800)
    wait_until_idle(page)
    page.wait_for_timeout(800)


def test_a_click_picks_the_image_rings_it_in_every_panel_and_clears_older_picks(app_url, browser):
    page = open_page(browser, app_url, "", TWO_D)
    click_a_point(page, 0, 40)
    first = inspected_index(page)
    panels = feature_charts(page)
    assert len(panels) == 2 and all(ringed(c) for c in panels)
    click_a_point(page, 1, 7)  # a point in the other loss's panel
    second = inspected_index(page)
    assert second != first
    click_a_point(page, 0, 41)  # back in the first panel: the newest click wins, not an older selection
    assert inspected_index(page) not in (second,)
    heading = page.get_by_role("heading", name="Inspect an image").bounding_box()
    chart = page.locator(".js-plotly-plot").first.bounding_box()
    assert heading["x"] > chart["x"] + chart["width"], "the image panel sits to the right of the charts"
    assert heading["y"] < chart["y"] + chart["height"], "and beside them, not below"
    page.close()


# What the first panel shows on every animation frame of the browser for ``ms`` milliseconds: plotly's current
# frame, the title as drawn (its SVG text, not the layout object, which changes before the title is redrawn)
# and, on a 2-D chart, the smallest and largest distance of a drawn point from the centre in data units.
RECORD_PLAY = """([ms]) => new Promise(resolve => {
    const gd = document.querySelector('.js-plotly-plot');
    const samples = [], start = performance.now();
    const tick = () => {
        const full = gd._fullLayout, radii = [];
        for (const point of gd.querySelectorAll('g.scatterlayer g.trace g.points path.point')) {
            const m = /translate\\(([-\\d.e]+),\\s*([-\\d.e]+)\\)/.exec(point.getAttribute('transform') || '');
            if (m && full.xaxis) radii.push(Math.hypot(full.xaxis.p2d(+m[1]), full.yaxis.p2d(+m[2])));
        }
        samples.push({t: performance.now() - start, frame: full._currentFrame,
                      title: (gd.querySelector('.gtitle') || {}).textContent || '',
                      rmin: radii.length ? Math.min(...radii) : null, rmax: radii.length ? Math.max(...radii) : null});
        if (performance.now() - start < ms) requestAnimationFrame(tick); else resolve(samples);
    };
    tick();
})"""


def expected_titles(store: RunStore, experiment: str) -> dict[str, str]:
    """The first panel's (softmax's) title line per frame name, from the run files: each epoch's accuracy as the
    snapshots store it (on the images shown before training, on the evaluation subset after an epoch), the
    final one the run's test accuracy from its status."""
    record = next(r for r in store.experiments()[experiment] if r.config.loss == "softmax")
    snapshots = store.load_snapshots(record.run_id)
    epochs, measured = snapshots.epochs.tolist(), snapshots.test_acc.tolist()
    lines = {}
    for epoch, accuracy in zip(epochs, measured, strict=True):
        if epoch == 0:
            lines["0"] = f"before training · accuracy {wording.percent_text(accuracy)} on the 200 images shown"
        elif epoch == epochs[-1]:
            lines[str(epoch)] = f"epoch {epoch} · test accuracy {wording.percent_text(record.status['test_acc'])}"
        else:
            lines[str(epoch)] = (
                f"epoch {epoch} · accuracy {wording.percent_text(accuracy)} on {EVAL_IMAGES} test images"
            )
    return lines


def play_and_record(page, ms: int = 3200) -> list[dict]:
    page.locator(".js-plotly-plot").first.locator("g.updatemenu-button").first.click()
    return page.evaluate(RECORD_PLAY, [ms])


def check_each_frame(samples: list[dict], expected: dict[str, str], on_circle: bool) -> None:
    """Every epoch was played, and once a frame has been up 150 ms its title is that epoch's; on the unit
    circle every point drawn at any moment lies on it (a tween would draw them on chords)."""
    began: dict[str, float] = {}
    for sample in samples:
        began.setdefault(sample["frame"], sample["t"])
    assert set(expected) <= set(began), f"frames played: {sorted(began, key=str)}"
    for sample in samples:
        if sample["frame"] in expected and sample["t"] - began[sample["frame"]] > 150:
            assert sample["title"].endswith(expected[sample["frame"]]), (sample["frame"], sample["title"])
        if on_circle and sample["rmin"] is not None:
            assert 1 - JITTER - 0.02 <= sample["rmin"] and sample["rmax"] <= 1.02, sample


def test_every_frame_that_play_shows_has_its_epochs_title_and_points_on_the_circle(store, app_url, browser):
    expected = expected_titles(store, TWO_D)
    page = open_page(browser, app_url, "", TWO_D)
    check_each_frame(play_and_record(page), expected, on_circle=True)
    click_and_settle(page, "label", "Decision regions", settle_ms=1500)
    check_each_frame(play_and_record(page), expected, on_circle=True)
    page.close()
    page = open_page(browser, app_url, "", THREE_D)
    check_each_frame(play_and_record(page, ms=4500), expected_titles(store, THREE_D), on_circle=False)
    page.close()


def test_a_paused_frame_keeps_its_epochs_title(store, app_url, browser):
    expected = expected_titles(store, TWO_D)
    page = open_page(browser, app_url, "", TWO_D, viewport=PROJECTOR, present="1")
    chart = page.locator(".js-plotly-plot").first
    current = "() => document.querySelector('.js-plotly-plot')._fullLayout._currentFrame"
    for _ in range(3):  # a busy machine may click Pause after epoch 1's 0.7 s; Play then starts over
        chart.locator("g.updatemenu-button").first.click()  # Play: before training, then epoch 1
        page.wait_for_function(f"({current})() === '1'")
        chart.locator("g.updatemenu-button").nth(1).click()  # Pause
        page.wait_for_timeout(500)
        frame = page.evaluate(current)
        if frame != "2":
            break
    assert frame != "2", "paused before the last epoch"
    assert chart.locator(".gtitle").text_content().endswith(expected[frame])
    screenshot(page, f"play-2d-paused-at-epoch-{frame}")
    page.close()


def test_the_sphere_map_picks_points_of_3d_features(app_url, browser):
    page = open_page(browser, app_url, "", THREE_D)
    click_and_settle(page, VIEW_BUTTONS, "Map")
    before = inspected_index(page)
    click_a_point(page, 0, 25)
    assert inspected_index(page) != before
    click_and_settle(page, VIEW_BUTTONS, "Unit sphere")
    assert all(ringed(c) for c in feature_charts(page)), "the picked point is ringed on every sphere"
    page.close()


def test_the_bound_label_on_angles_has_its_own_box(app_url, browser):
    page = open_page(browser, app_url, "angles", TWO_D)
    label = page.locator(".js-plotly-plot g.annotation").filter(has_text="closest pair at most").first
    label.wait_for()
    assert label.is_visible()
    assert label.locator("rect.bg").evaluate("r => getComputedStyle(r).fill") in ("rgb(255, 255, 255)",)
    ticks = page.locator(".js-plotly-plot").filter(has_text="closest pair at most").first.locator("g.xtick text")
    assert ticks.evaluate_all("nodes => nodes.map(n => n.textContent)") == [str(c) for c in range(10)]
    page.close()


def test_the_compare_table_fits_a_1440_pixel_screen(app_url, browser):
    page = open_page(browser, app_url, "compare", TWO_D)
    scroller = page.locator("[data-testid='stDataFrame'] .dvn-scroller").first
    scroller.wait_for()
    width = scroller.evaluate("s => [s.scrollWidth, s.clientWidth]")
    assert width[0] <= width[1], f"the table scrolls sideways: {width}"
    page.close()


def test_a_click_on_the_playground_reads_every_loss_there(app_url, browser):
    page = open_page(browser, app_url, "learn", TWO_D)
    field = page.locator(".js-plotly-plot").first
    field.scroll_into_view_if_needed()
    box = field.locator("g.draglayer rect.nsewdrag, rect.nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.3)
    page.get_by_text("Every loss at").wait_for(timeout=120_000)
    wait_until_idle(page)
    assert page.locator("[data-testid='stDataFrame']").count() >= 1
    page.close()


def test_presentation_mode_fills_a_projector_screen_with_two_losses_side_by_side(app_url, browser):
    page = open_page(browser, app_url, "", TWO_D, viewport=PROJECTOR)
    click_and_settle(page, "label", "Presentation", settle_ms=1500)
    assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") == "21px"
    # folded: Streamlit 1.67 marks a collapsed sidebar by its width alone (no aria-expanded)
    assert page.locator("[data-testid='stSidebar']").evaluate("e => e.getBoundingClientRect().width") == 0
    panels = feature_charts(page)
    assert len(panels) == 2 and all(panel["font"] == 18 for panel in panels)
    left, right = (page.locator(".js-plotly-plot").nth(i).bounding_box() for i in range(2))
    assert left["y"] == right["y"] and right["x"] >= left["x"] + left["width"], "side by side"
    assert left["width"] >= 700 and left["height"] >= 650, "each panel a third of the screen or more"
    fold = PROJECTOR["height"]
    for play in page.locator("g.updatemenu-button").all():
        box = play.bounding_box()
        assert box["y"] + box["height"] <= fold, "Play is on the first screen"
    swatches = page.locator("span[style*='nowrap']")  # the class legends: over the panels, and the projections'
    legend = page.locator("[data-testid='stMarkdown']").filter(has=swatches).first
    assert legend.bounding_box()["y"] + legend.bounding_box()["height"] <= fold, "the class legend too"
    screenshot(page, "present-features-2d")
    page.close()


def screenshot_views() -> list[tuple[str, str, str, str]]:
    """(page, experiment, dimension, presentation) to draw: every page in 2-D and 3-D with presentation off
    and on with LOSSLENS_FULL_TESTS=1; else every page once, each mode on some pages (a quarter of the time)."""
    views = [
        (path, experiment, dim, present)
        for experiment, dim in ((TWO_D, "2d"), (THREE_D, "3d"))
        for present in ("0", "1")
        for path in PAGES
    ]
    if FULL_TESTS:
        return views
    modes = [(experiment, dim, present) for path, experiment, dim, present in views if path == PAGES[0]]
    return [(path, *modes[i % len(modes)]) for i, path in enumerate(PAGES)]


def test_screenshots_of_every_page_in_2d_and_3d_with_presentation_off_and_on(app_url, browser):
    """Not an assertion about looks: these are for a person to check. Each page must draw without an
    exception box."""
    for path, experiment, dim, present in screenshot_views():
        page = open_page(browser, app_url, path, experiment, {"width": 1440, "height": 2200}, present=present)
        assert page.locator("[data-testid='stException']").count() == 0, (path, dim, present)
        mode = "presentation" if present == "1" else "normal"
        screenshot(page, f"teach-{path or 'features'}-{dim}-{mode}")
        page.close()
