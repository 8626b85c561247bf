"""The Train page's live view in AppTest: a shared link's viewer follows another browser's training from
its run files, read-only, with every run named by its variant and seed."""

from __future__ import annotations

import functools

import pytest

from lab.runs.store import RunStore
from lab.settings import form
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from tests import apptest
from tests.apptest import app_reads, shown
from ui import session

EXPERIMENT = "alice-training"
ALICE = "alice-live-view".ljust(43, "a")
BOB = "bob-live-view".ljust(43, "b")
open_page = functools.partial(apptest.open_page, "pages/train.py", experiment=EXPERIMENT, credential=BOB)


def epoch_line(epoch: int, accuracy: float) -> dict:
    return {"epoch": epoch, "train_loss": 2.0 / epoch, "test_acc": accuracy, "eval_images": 2000}


@pytest.fixture
def alice_training(tmp_path):
    """Alice's experiment (softmax and AMC, seeds 0 and 1, 5 epochs) two epochs into its training, as its
    run files show it; the writers, to move it on."""
    store = RunStore(tmp_path / "runs")
    configs = make_experiment(RunConfig(experiment=EXPERIMENT, epochs=5), ["softmax", "amc"], seeds=[0, 1])
    writers = [store.create(config, owner=session.owner_of(ALICE)) for config in configs]
    for writer in writers:
        writer.write_metrics([epoch_line(1, 0.25), epoch_line(2, 0.5)])
        writer.set_status("running", message="epoch 2 of 5", epoch=2, test_acc=0.5)
    with app_reads(store.root):
        yield writers


def progress_texts(app) -> list[str]:
    return [shown(element.proto.text) for element in app.get("progress")]


def test_a_shared_link_follows_the_training_read_only_with_each_run_named_by_variant_and_seed(alice_training):
    app = open_page()
    assert progress_texts(app) == [
        f"**{name} · seed {seed}**: 2 of 5 epochs done · accuracy on 2,000 test images 50.0%"
        for seed in (0, 1)
        for name in ("Softmax cross-entropy", "AMC-Loss")
    ]
    assert not [button for button in app.button if str(button.key).startswith("stop")], "no Stop for a viewer"
    assert any("Only the browser that started it can stop it" in caption.value for caption in app.caption)
    assert app.button_group(key="losses").value == list(form.DEFAULT_LOSSES), "the form stays Bob's own"
    assert not app.button(key="start").disabled
    assert len(app.get("plotly_chart")) == 2, "the training loss and the accuracy, per epoch"

    for writer in alice_training:  # the training ends: the page still shows how it ended
        writer.set_status("finished", message="trained 5 epochs", test_acc=0.6)
    app.run()
    assert progress_texts(app)[0] == "**Softmax cross-entropy · seed 0**: finished · test accuracy 60.0%"
    assert any("Done: 4 of 4 runs finished" in success.value for success in app.success)
    assert progress_texts(open_page()) == [], "a new session that did not follow it gets the form alone"
