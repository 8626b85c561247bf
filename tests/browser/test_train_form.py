"""The Train form in a real browser: "Fill the form with this preset" fills every input the user sees, in a
fresh browser and over a form already changed, and Start trains what the inputs show (the run folders'
config.json files are read back)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import losses
from lab.runs.store import RunStore
from lab.settings import form, presets
from lab.settings.config import RunConfig, settings
from lab.settings.experiment import loss_title, make_experiment
from tests.browser import choose_losses, chromium, requires_chromium, screenshot, streamlit_server, wait_until_idle
from ui import form_widgets, train_form, variants_editor

pytestmark = [pytest.mark.browser, requires_chromium]

# Every input of the main area, by its label, as the browser shows it; the "Add a variant" box is left out
# (it edits the variant to add, not what Start trains). A label shared by two inputs (two losses' "weight")
# lists both values in page order.
READ_FORM = """main => {
    const shown = {};
    for (const input of main.querySelectorAll('input[aria-label]')) {
        const expander = input.closest('[data-testid="stExpander"]');
        if (expander && expander.querySelector('summary').innerText.includes('Add a variant')) continue;
        const value = input.type === 'checkbox' ? String(input.checked) : input.value;
        (shown[input.getAttribute('aria-label')] ??= []).push(value);
    }
    const pressed = group => [...main.querySelectorAll(`[aria-label="${group}"] button[aria-pressed="true"],`
        + `[aria-label="${group}"] button[aria-checked="true"]`)].map(b => b.innerText.trim());
    shown['Losses'] = pressed('Losses');
    shown['Feature dimension (segment)'] = pressed('Feature dimension');
    shown['variants'] = [...main.querySelectorAll('[data-testid="stMarkdownContainer"] strong')]
        .filter(s => s.closest('[data-testid="stMarkdownContainer"]').innerText.startsWith('call_split'))
        .map(s => s.innerText.trim());
    return shown;
}"""


def _text(kind: type, value) -> str:
    if kind is bool:
        return str(bool(value)).lower()
    if kind is float:
        return f"{value:g}"
    return "" if value is None else str(value)


def expected_form(chosen: form.TrainSettings) -> dict[str, list[str]]:
    """What the form's inputs must show once filled with ``chosen``, derived from the settings' and the
    losses' declarations as the form draws them."""
    config = chosen.config
    values = config.to_dict()
    expected: dict[str, list[str]] = {}
    for declared in settings(RunConfig):
        if not declared.shown(values):
            continue
        value = getattr(config, declared.name)
        if declared.presets:
            segment = declared.presets.get(value, form_widgets.MORE)
            expected[f"{declared.label} (segment)"] = [segment]
            if segment == form_widgets.MORE:
                expected[declared.label] = [str(value)]
        elif declared.form_choices():
            expected[declared.label] = [declared.label_of(value)]
        else:
            expected[declared.label] = [_text(declared.kind, value)]
    for loss in chosen.losses:
        for spec in losses.info(loss).hparams:
            value = chosen.hparams[loss][spec.name]
            text = str(value) if spec.choices else _text(spec.kind, value)
            expected.setdefault(spec.name, []).append(text)
    expected["Losses"] = [loss_title(loss) for loss in chosen.losses]
    expected["Seeds per variant"] = [str(chosen.seeds)]
    expected["variants"] = variants_editor.variant_labels(chosen.entries())[len(chosen.losses) :]
    return expected


def shown_form(page) -> dict[str, list[str]]:
    shown = page.locator("[data-testid='stMain']").evaluate(READ_FORM)
    for outside in ("Preset", "Presentation"):  # the picker above the form, the page's projector switch
        shown.pop(outside, None)
    return shown


def fill_with_preset(page, title: str) -> None:
    picker = page.locator("[data-testid='stExpander']").filter(has_text="Start from a paper's experiment")
    choice = picker.get_by_role("combobox", name="Preset")
    if not choice.is_visible():
        picker.get_by_text("Start from a paper's experiment").click()
    # the menu lists the options that match what is typed; the first two words name one preset
    choice.click()
    choice.fill(" ".join(title.split()[:2]))
    page.get_by_role("option", name=title, exact=True).wait_for()
    assert page.get_by_role("option").all_inner_texts() == [title]
    choice.press("ArrowDown")
    choice.press("Enter")
    wait_until_idle(page)
    page.get_by_role("button", name="Fill the form with this preset").click(timeout=120_000)  # a busy CI machine
    wait_until_idle(page)


def new_run_configs(runs_dir: Path) -> list[dict]:
    """The config.json of every run folder that is not a shipped example's."""
    found = []
    for path in sorted(runs_dir.glob("*/config.json")):
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError):  # being written
            continue
        if not config.get("experiment", "").startswith("example-"):
            found.append(config)
    return found


def comparable(config: dict) -> str:
    """A run's settings, but for the experiment's name (it holds the time it was started)."""
    return json.dumps({**config, "experiment": ""}, sort_keys=True)


def test_a_preset_fills_every_input_and_start_trains_what_they_show(tmp_path):
    runs_dir = tmp_path / "runs"
    figure = presets.get("lsoftmax-fig2")  # variants of one loss: one pill and three added variants
    amc = presets.get("amc-gradcam")  # two losses, three seeds, 16-D features
    with streamlit_server(runs_dir) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/train")
        wait_until_idle(page)

        # a fresh browser: the form was drawn with the defaults before the fill
        fill_with_preset(page, figure.title)
        screenshot(page, "train-form-filled-fresh")
        assert shown_form(page) == expected_form(train_form.preset_settings(figure.name))

        # a form the user has changed, then filled with another preset
        choose_losses(page, ["Softmax cross-entropy", "CosFace (AM-Softmax)"])
        for label, value in (("Epochs", "2"), ("Learning rate (peak)", "0.05"), ("Seeds per variant", "2")):
            field = page.get_by_role("textbox", name=label, exact=True)
            field.fill(value)
            field.press("Enter")
            wait_until_idle(page)
        fill_with_preset(page, amc.title)
        screenshot(page, "train-form-filled-over-changes")
        assert shown_form(page) == expected_form(train_form.preset_settings(amc.name))

        page.get_by_role("button", name="Start training").click()
        deadline = time.time() + 180
        while len(new_run_configs(runs_dir)) < amc.n_runs and time.time() < deadline:
            time.sleep(0.5)
        page.get_by_role("button", name="Stop").click()  # the folders and their configs are all this test needs
        trained = new_run_configs(runs_dir)
        assert sorted(map(comparable, trained)) == sorted(comparable(c.to_dict()) for c in amc.configs())
        assert len({config["experiment"] for config in trained}) == 1


def settled_boxes(chart, selectors: list[str]) -> list[dict]:
    """The boxes of ``selectors`` in ``chart`` once plotly has stopped moving them: it draws once, then
    again with the margins its legend and title push out."""
    previous = None
    for _ in range(50):
        boxes = [chart.locator(selector).first.bounding_box() for selector in selectors]
        if boxes == previous:
            return boxes
        previous = boxes
        chart.page.wait_for_timeout(200)
    raise AssertionError(f"the chart was still moving after 10 s: {previous}")


def plant_training(runs_dir: Path) -> list[RunConfig]:
    """Another browser's experiment, 3 variants x 2 seeds, two epochs into its training as its run files
    tell it (this process writes them, so the app reads them as training now)."""
    configs = make_experiment(
        RunConfig(experiment="other-browser-training", epochs=5), ["softmax", "lsoftmax", "amc"], seeds=[0, 1]
    )
    store = RunStore(runs_dir)
    for index, config in enumerate(configs):
        writer = store.create(config, owner="0" * 32)
        lines = [
            {"epoch": epoch, "train_loss": 2.0 / epoch + 0.01 * index, "test_acc": 0.3 * epoch, "eval_images": 2000}
            for epoch in (1, 2)
        ]
        writer.write_metrics(lines)
        writer.set_status("running", message="epoch 2 of 5", epoch=2, test_acc=0.6)
    return configs


def test_a_linked_viewer_follows_a_training_read_only_and_legends_leave_titles_clear(tmp_path):
    runs_dir = tmp_path / "runs"
    configs = plant_training(runs_dir)
    with streamlit_server(runs_dir) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/train?exp={configs[0].experiment}")
        wait_until_idle(page)
        page.get_by_text("Only the browser that started it can stop it").wait_for(timeout=60_000)
        bars = page.locator("[data-testid='stProgress']")
        bars.nth(len(configs) - 1).wait_for(timeout=60_000)
        assert bars.count() == len(configs)
        assert page.get_by_role("button", name="Stop").count() == 0
        assert bars.nth(5).inner_text().startswith("AMC-Loss · seed 1: 2 of 5 epochs done")
        charts = page.locator(".js-plotly-plot")
        charts.nth(1).wait_for(timeout=60_000)
        screenshot(page, "train-followed-read-only")
        # six runs give each chart a legend of three rows, half as wide as the page: under the title
        for chart in (charts.nth(0), charts.nth(1)):
            title, legend, plot = settled_boxes(chart, [".gtitle", "g.legend", ".nsewdrag"])
            assert title["y"] + title["height"] <= legend["y"], (title, legend)
            assert legend["y"] + legend["height"] <= plot["y"], (legend, plot)  # the plotting area
