"""The Train form holds no more variants than one training may: "Add a variant" stops at the cap the job
manager enforces (lab.training.jobs.MAX_RUNS_PER_JOB) and says why, and a form whose variants x seeds pass it is refused
under the form before its runs are built."""

from __future__ import annotations

import pytest

from lab.settings import form
from lab.training.jobs import MAX_RUNS_PER_JOB
from tests.apptest import app_reads, open_page, shown
from ui import form_widgets, variants_editor


@pytest.fixture(scope="module")
def train_page(tmp_path_factory):
    with app_reads(tmp_path_factory.mktemp("form-size-runs")):
        yield


def _full_form():
    """The default losses and added AMC-Loss variants: as many variants as one training may hold."""
    room = MAX_RUNS_PER_JOB - len(form.DEFAULT_LOSSES)
    extra = [("amc", {"margin": round(0.1 + i / 1000, 4)}) for i in range(room)]
    return open_page("pages/train.py", state={form_widgets.EXTRA_VARIANTS: extra})


def test_add_a_variant_stops_at_the_cap_and_says_why(train_page):
    app = _full_form()
    assert not app.error, [shown(e.value) for e in app.error]
    assert f"{MAX_RUNS_PER_JOB} variants x 1 seed = {MAX_RUNS_PER_JOB} runs" in [c.value for c in app.caption]
    button = app.button(key="add_variant")
    assert button.disabled
    assert any(variants_editor.variants_cap_text() in shown(c.value) for c in app.caption)
    app.button(key="remove_variant_0").click().run()
    assert not app.button(key="add_variant").disabled, "removing one makes room"


def test_more_runs_than_a_training_holds_are_refused_under_the_form(train_page):
    app = _full_form()
    app.text_input(key=form_widgets.SEEDS).set_value("2").run()
    said = " ".join(shown(e.value) for e in app.error)
    assert f"make {2 * MAX_RUNS_PER_JOB} runs; at most {MAX_RUNS_PER_JOB} may train together" in said
    assert not any("runs" in c.value and "=" in c.value for c in app.caption), "no count of runs it will not train"
