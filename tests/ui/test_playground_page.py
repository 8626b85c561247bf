"""The Learn page's playground as a student meets it: a loss with a schedule is shown at the end of training,
where its margin is at full strength, and a slider moves it back to the start (the page, run by AppTest)."""

from __future__ import annotations

import numpy as np
import pytest

from lab.analysis import playground
from tests.apptest import app_reads, figures, open_page, values
from ui import session

NEAR_A_BOUNDARY = [0.5, 1.1]  # 24 degrees from class 0's direction: 6 past its boundary with class 9


@pytest.fixture
def learn(tmp_path_factory):
    with app_reads(tmp_path_factory.mktemp("runs")):
        yield open_page("pages/learn.py", state={session.PLAYGROUND_POINT: NEAR_A_BOUNDARY})


def _field(app) -> dict:
    return next(f for f in figures(app) if any(t.get("name") == "loss" for t in f["data"]))


def _readings(app) -> dict[str, float]:
    table = app.dataframe[0].value
    return {row["loss"].removesuffix(" (your settings)"): row["loss value"] for _, row in table.iterrows()}


def test_lsoftmax_is_shown_with_its_margin_and_the_slider_takes_it_back_to_the_start(learn):
    learn.selectbox(key="playground_loss").set_value("lsoftmax").run()
    assert learn.slider(key="playground_progress").value == 1.0
    captions = " ".join(c.value for c in learn.caption)
    assert "At 100% of training L-Softmax's schedule gives softmax_share 0.5." in captions
    field = _field(learn)
    heat = next(t for t in field["data"] if t.get("name") == "loss")
    expected = playground.loss_field("lsoftmax", playground.evenly_spaced(10), 0)
    np.testing.assert_allclose(values(heat, "z"), expected.loss)
    assert any(t.get("name") == "margin band" for t in field["data"])
    read = _readings(learn)
    assert read["L-Softmax"] > read["Softmax cross-entropy"] + 0.1

    learn.slider(key="playground_progress").set_value(0.0).run()
    read = _readings(learn)
    assert read["L-Softmax"] == pytest.approx(read["Softmax cross-entropy"], abs=2e-3)

    learn.selectbox(key="playground_loss").set_value("softmax").run()  # no schedule, so no slider
    assert not [s for s in learn.slider if s.key == "playground_progress"]
