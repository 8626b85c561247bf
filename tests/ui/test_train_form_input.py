"""What a person types into the Train form (and the command line) is read as they mean it or refused with a
message that names it and says what to type: ``1e3`` epochs are 1,000 (not 1), ``1e309`` and ``0_1`` are
refused (not 0.1 put back, not 1), other scripts' digits are refused."""

from __future__ import annotations

import pytest

import losses
from lab.settings.config import RunConfig
from lab.settings.errors import ConfigError
from tests.apptest import app_reads, open_page, shown
from tests.browser import chromium, requires_chromium, screenshot, streamlit_server, wait_until_idle
from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("text", "kind", "number"),
    [("12", int, 12), ("1e3", int, 1000), ("12.0", int, 12), (" -3 ", int, -3), ("0.05", float, 0.05)]
    + [("1e-3", float, 0.001), (".5", float, 0.5), ("5.", float, 5.0), ("2", float, 2.0)],
)
def test_a_number_is_read_as_a_person_writes_it(text, kind, number):
    value = losses.read_number(text, kind)
    assert value == number and type(value) is kind


@pytest.mark.parametrize(
    ("text", "kind", "said"),
    [
        ("1e309", float, "'1e309' is too large"),
        ("1e-400", float, "'1e-400' is too small"),
        ("0_1", float, "'0_1' is not a number: type the digits 0-9"),
        ("inf", float, "'inf' is not a number"),
        ("nan", float, "'nan' is not a number"),
        ("\u0661\u0662", int, "has digits other than 0-9"),  # Arabic-Indic 12
        ("\uff11\uff12", int, "has digits other than 0-9"),  # full-width 12
        ("2.5", int, "'2.5' is not a whole number: type an integer such as 12"),
        ("1e30", int, "'1e30' is too large"),
        ("", float, "nothing was typed"),
    ],
)
def test_anything_else_is_refused_naming_it_and_what_to_type(text, kind, said):
    with pytest.raises(ValueError, match="type") as refused:
        losses.read_number(text, kind)
    assert said in str(refused.value)


def test_settings_and_hyperparameters_read_numbers_the_same_way():
    with pytest.raises(ConfigError, match=r"lr: '0_1' is not a number: .* \(allowed: a number above 0 to 10\)"):
        RunConfig(lr="0_1").validate()
    with pytest.raises(losses.HparamError, match="amc.margin: '0_1' is not a number"):
        losses.make_params("amc", {"margin": "0_1"})
    assert losses.make_params("amc", {"margin": " 0.25 "}).margin == 0.25


def test_the_command_line_refuses_what_the_form_refuses(tmp_path):
    done = run_cli("train", "--lr", "0_1", "--epochs", "1", "--train-limit", "200", "--runs-dir", str(tmp_path))
    assert done.returncode == 2 and not list(tmp_path.iterdir())
    assert done.stderr.strip().splitlines()[-1].startswith("error: lr: '0_1' is not a number")


@pytest.fixture(scope="module")
def train_page(tmp_path_factory):
    with app_reads(tmp_path_factory.mktemp("form-runs")):
        yield


def _errors(app) -> str:
    return " ".join(shown(error.value) for error in app.error)


@pytest.mark.parametrize(
    ("key", "typed", "said"),
    [
        ("epochs", "1e3", "epochs: must be an integer from 1 to 200, got 1000"),  # read as 1,000, not 1
        ("lr", "1e309", "lr: '1e309' is too large to compute with: type a number such as 0.1"),
        ("lr", "0_1", "lr: '0_1' is not a number: type the digits 0-9"),
        ("epochs", "\u0661\u0662", "epochs: '\u0661\u0662' has digits other than 0-9: type it with the digits 0-9"),
        ("epochs", "\uff11\uff12", "has digits other than 0-9"),
        ("n_seeds", "2.5", "seeds: '2.5' is not a whole number"),
    ],
)
def test_the_form_names_a_value_it_cannot_read_and_keeps_it(train_page, key, typed, said):
    app = open_page("pages/train.py")
    app.text_input(key=key).set_value(typed).run()
    assert said in _errors(app)
    assert app.text_input(key=key).value == typed, "what was typed stays, to be corrected"


def test_the_form_reads_an_exponent_as_its_number(train_page):
    app = open_page("pages/train.py")
    app.text_input(key="epochs").set_value("1e2").run()
    app.text_input(key="lr").set_value("5e-2").run()
    assert not app.error, _errors(app)


@pytest.mark.browser
@requires_chromium
def test_a_real_browser_sends_what_was_typed(tmp_path):
    runs_dir = tmp_path / "runs"
    with streamlit_server(runs_dir) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(f"{url}/train")
        wait_until_idle(page)
        epochs = page.get_by_role("textbox", name="Epochs", exact=True)
        for typed, said in (("1e3", "got 1000"), ("\uff11\uff12", "has digits other than 0-9"), ("1e2", None)):
            epochs.fill(typed)
            epochs.press("Enter")
            wait_until_idle(page)
            if said:
                page.get_by_text(said).first.wait_for(timeout=30_000)
            else:
                assert page.get_by_text("Change this setting to start").count() == 0
            assert epochs.input_value() == typed
        screenshot(page, "train-form-exponent")
