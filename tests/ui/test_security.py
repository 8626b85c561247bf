"""The UI half of security and reliability, in AppTest: who may stop and delete (a credential in a cookie,
never in a link), file-derived text shown as text, which experiment a new browser opens, faults that must
not take a page down, and the Train page's form."""

from __future__ import annotations

import functools
import json
import os
import pickle
import re
import time
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torchvision
from streamlit.runtime.context import ContextProxy
from streamlit.testing.v1 import AppTest

from lab.runs import credentials
from lab.runs.arraycache import ArrayCache
from lab.runs.record import RunRecord
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.shown_text import plotly_text
from lab.training import jobs
from lab.training.loop import train_experiment
from tests import apptest
from tests.apptest import app_reads, shown
from ui import loaders, session, titles
from ui.text import plain

ALICE = "alice-browser".ljust(43, "a")  # credentials, as the browsers' cookies hold them
BOB = "bob-browser".ljust(43, "b")
ALICE_EXP = "alice-private"
LANDING = "landing-exp"
TWINS = ("twin-one", "twin-two")
PLANTED = "planted-exp"
LEGACY_TOKEN = "legacyowner0001"  # an old ?u= token, as run files written before credentials hold it
INJECTION = "[re-login](http://x) ![x](http://x/y.png)"
open_page = functools.partial(apptest.open_page, credential=ALICE)


def fabricate(store: RunStore, experiment: str, owner: str = "", status: str = "finished", **fields) -> Path:
    """A run folder with a config and a status and nothing else (enough for the sidebar)."""
    writer = store.create(RunConfig(experiment=experiment, epochs=3), owner=owner)
    writer.set_status(status, message=fields.pop("message", "done"), **fields)
    return writer.run_dir


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("security-ui-runs")
    store = RunStore(root)
    alice = session.owner_of(ALICE)
    train_experiment(
        [RunConfig(loss=loss, epochs=1, experiment=ALICE_EXP, snapshot_points=100) for loss in ("softmax", "amc")],
        store,
        owner=alice,
    )
    train_experiment([RunConfig(epochs=1, experiment=LANDING, snapshot_points=100)], store)
    store.create(RunConfig(experiment=LANDING, loss="opl"))  # training now, in this very process
    fabricate(store, "from-the-future", started=time.time() + 10 * 365 * 86400)
    started = time.time() - 3600
    for twin in TWINS:
        fabricate(store, twin, started=started)
    fabricate(store, PLANTED, status="failed", message=INJECTION)
    broken = fabricate(store, PLANTED)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "feat_dim": INJECTION}))
    fabricate(store, "legacy-exp", owner=LEGACY_TOKEN)
    fabricate(store, "cli-newer")  # shared, and the newest of all
    with app_reads(root, LOSSLENS_CACHE_DIR=str(tmp_path_factory.mktemp("security-ui-cache"))):
        yield root


def bodies(app: AppTest) -> list[str]:
    """Every Markdown text on the page and in the sidebar (alerts, captions, progress texts, toasts)."""
    found = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "toast"):
        found += [element.value for element in app.get(kind)]
    return found + [bar.proto.text for bar in app.get("progress")]


def renders_markup(markdown: str) -> bool:
    """Whether Streamlit would draw a link, an image, a coloured span or a formula from ``markdown``'s
    characters outside what the app itself writes: its backslash escapes and zero-width spaces resolve to
    literal characters, and GitHub-flavoured Markdown links bare URLs."""
    literal = re.sub(r"\\.", "", markdown)
    return bool(re.search(r"\]\(|!\[|https?://|www\.|\$", literal))


def position(app: AppTest, experiment: str) -> int | None:
    """Where the sidebar's experiment choice lists ``experiment`` (AppTest knows options by their labels)."""
    box = app.sidebar.selectbox[0]
    try:
        return list(box.options).index(box.format_func(experiment))
    except (KeyError, ValueError):
        return None


def has_button(app: AppTest, key_prefix: str) -> bool:
    return any((button.key or "").startswith(key_prefix) for button in app.button)


# ---------------------------------------------------------------- identity


def test_the_credential_is_issued_by_the_server_and_never_in_the_address_bar(runs_dir, monkeypatch):
    first = open_page("pages/features.py", credential=None)
    credential = first.session_state[session.CREDENTIAL]
    assert session.valid_credential(credential)
    assert not first.get("html"), "no script sets the cookie: the server does, HttpOnly (ui.owner_cookie)"
    assert credential not in json.dumps(dict(first.query_params))
    # a refresh: a new session whose browser sends the cookie the server issued is the same owner
    fabricate(RunStore(runs_dir), "issued-exp", owner=session.owner_of(credential))
    monkeypatch.setattr(ContextProxy, "cookies", property(lambda self: {session.COOKIE: credential}))
    refreshed = open_page("pages/features.py", credential=None)
    assert refreshed.session_state[session.CREDENTIAL] == credential
    assert position(refreshed, "issued-exp") is not None


def forged_credentials() -> list[str]:
    """Values a page of another site could plant: well formed, but not signed with this server's secret."""
    issued = credentials.issue(b"another server's secret, not this one".ljust(32))
    ident, mac = issued.split(".")
    return [ALICE, "F" * 43, issued, f"{ident}.{'A' * 43}", f"{'A' * 43}.{mac}"]


@pytest.mark.parametrize(
    "cookie", ["١" * 43, "short", "x" * 43 + "\n", "<script>".ljust(43, "x"), *forged_credentials()]
)
def test_a_cookie_this_server_did_not_issue_is_a_new_owner(runs_dir, monkeypatch, cookie):
    monkeypatch.setattr(ContextProxy, "cookies", property(lambda self: {session.COOKIE: cookie}))
    app = open_page("pages/features.py", credential=None)
    assert app.session_state[session.CREDENTIAL] != cookie
    assert session.valid_credential(app.session_state[session.CREDENTIAL])
    assert position(app, ALICE_EXP) is None, "a value planted as Alice's cookie does not make Alice"


def test_an_old_owner_link_is_ignored_and_removed(runs_dir):
    app = open_page("pages/features.py", credential=BOB, u=LEGACY_TOKEN)
    assert "u" not in app.query_params
    assert position(app, "legacy-exp") is None
    linked = open_page("pages/features.py", credential=BOB, u=LEGACY_TOKEN, exp="legacy-exp")
    assert not has_button(linked, "confirm_delete"), "a token from a link gives no right to delete"


def test_a_link_gives_another_browser_a_read_only_view(runs_dir):
    alice = open_page("pages/features.py", exp=ALICE_EXP)
    assert has_button(alice, "confirm_delete")
    link = alice.get("code")[0].value
    assert link == f"?exp={ALICE_EXP}", "the Share link holds the experiment and nothing else"

    bob = open_page("pages/features.py", credential=BOB, exp=ALICE_EXP)
    assert bob.sidebar.selectbox[0].value == ALICE_EXP
    assert "shared with you" in bob.sidebar.selectbox[0].format_func(ALICE_EXP)
    assert any("Opened from a link" in caption.value for caption in bob.sidebar.caption)
    assert not has_button(bob, "confirm_delete")
    assert len(bob.get("plotly_chart")) >= 2, "the view itself is there"
    bob.switch_page("pages/compare.py")
    bob.run()  # a page switch drops ?exp= from the URL: the session keeps the linked experiment
    assert bob.sidebar.selectbox[0].value == ALICE_EXP and not has_button(bob, "confirm_delete")

    unlinked = open_page("pages/features.py", credential=BOB)
    assert position(unlinked, ALICE_EXP) is None, "without the link, another browser's experiment stays private"


# ---------------------------------------------------------------- file-derived text


def test_file_derived_text_is_shown_literally(runs_dir):
    app = open_page("pages/features.py", credential=BOB, exp=PLANTED)
    texts = bodies(app)
    assert sum(INJECTION in shown(text) for text in texts) >= 2, "the planted message and error are shown"
    assert not [text for text in texts if renders_markup(text)]


def test_a_stored_variant_with_markup_is_its_own_text_in_a_figure():
    config = RunConfig(loss="amc", variant="<a href='http://x'>re-login</a> & co")
    label = titles.loss_label(RunRecord("r", Path("r"), config, {}, []))
    assert label == config.variant, "the run's own label, not another name"
    assert plotly_text(label) == "&lt;a href='http://x'&gt;re-login&lt;/a&gt; &amp; co"  # plotly draws <a href>


def test_plain_escapes_every_markdown_feature():
    for text in (INJECTION, "see www.x.example or mail a@b.example", ":red[x] :material/home: $x$", "<b>x</b>"):
        assert not renders_markup(plain(text)) and shown(plain(text)) == text
    assert shown(plain("a\n\n# b\u202e")) == "a # b"
    assert len(plain("x" * 10_000)) <= 700


# ---------------------------------------------------------------- which experiment opens


def test_a_new_browser_opens_on_the_example_and_the_list_is_newest_first(runs_dir):
    app = open_page("pages/features.py", credential=BOB)
    assert app.sidebar.selectbox[0].value == session.DEFAULT_EXAMPLE
    assert position(app, "cli-newer") == 0, "newest by a believable start time"
    assert position(app, "from-the-future") > position(app, session.DEFAULT_EXAMPLE), "a future time does not count"


def test_no_two_experiments_share_a_label_and_each_opens_its_own(runs_dir):
    app = open_page("pages/features.py", credential=BOB)
    box = app.sidebar.selectbox[0]
    assert len(set(box.options)) == len(box.options)
    box.set_value(TWINS[1]).run()
    assert app.session_state[session.EXPERIMENT] == TWINS[1]
    box = app.sidebar.selectbox[0]
    box.set_value(TWINS[0]).run()
    assert app.session_state[session.EXPERIMENT] == TWINS[0]


# ---------------------------------------------------------------- faults


def test_a_run_with_a_broken_config_shows_in_its_experiment(runs_dir):
    app = open_page("pages/features.py", credential=BOB, exp=PLANTED)
    assert len(app.sidebar.markdown[1:]) == 2, "both runs of the planted experiment are listed"
    assert any("config.json is unreadable" in shown(caption.value) for caption in app.sidebar.caption)


def test_an_unwritable_runs_folder_shows_the_examples_and_says_why(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with app_reads(blocker / "runs", LOSSLENS_CACHE_DIR=str(tmp_path / "cache")):
        for page in ("pages/features.py", "pages/angles.py", "pages/compare.py", "pages/learn.py"):
            app = open_page(page, credential=BOB)
            assert app.sidebar.selectbox[0].value == session.DEFAULT_EXAMPLE, page
            assert any("cannot be written" in shown(c.value) for c in app.sidebar.caption), page
        assert open_page("pages/features.py", credential=BOB).get("plotly_chart")
        train = open_page("pages/train.py", credential=BOB)
        assert any("Training is unavailable" in w.value for w in train.warning)
        assert train.button(key="start").disabled


def offline(*args, **kwargs):
    raise OSError("Name or service not known")


def test_the_data_folder_field_reaches_only_allowed_folders(runs_dir, tmp_path, monkeypatch):
    data = tmp_path / "data"
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv("LOSSLENS_DATA_DIR", str(data))
    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    app = open_page("pages/train.py", credential=BOB)
    app.selectbox(key="dataset").set_value("mnist").run()
    refusals = []
    for outside in ("/etc", "/no/such/folder", "../..", str(tmp_path)):
        app.text_input(key="data_root").set_value(outside).run()
        refusals.append([e.value for e in app.error])
    assert refusals[0] and all(refusal == refusals[0] for refusal in refusals), "same words, existing or not"
    assert "must be a folder inside the data folder" in shown(refusals[0][0])
    monkeypatch.setenv(loaders.ALLOW_DATA_ROOTS, str(allowed))
    app.text_input(key="data_root").set_value(str(allowed / "mnist")).run()
    assert not app.error
    blocked = data / "a-file"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("x")
    app.text_input(key="data_root").set_value("a-file/below").run()  # inside the data folder, unreadable
    app.button(key="start").click().run()
    assert not app.exception and app.error and not session.job_manager().jobs_of(session.owner_of(BOB))


def test_projections_are_cached_as_safetensors_within_a_bound(runs_dir):
    app = open_page("pages/features.py", exp=ALICE_EXP)
    assert [f for f in app.get("plotly_chart") if "PC1" in f.proto.spec]
    entries = list((Path(os.environ["LOSSLENS_CACHE_DIR"]) / "projections").iterdir())
    assert entries and all(entry.suffix == ".safetensors" for entry in entries)
    for entry in entries:  # a tampered entry is recomputed, not trusted
        entry.write_bytes(b"\x00" * 64)
    st.cache_data.clear()
    again = open_page("pages/features.py", exp=ALICE_EXP)
    assert [f for f in again.get("plotly_chart") if "PC1" in f.proto.spec]


def test_array_cache_round_trip_eviction_and_hostile_entries(tmp_path):
    cache = ArrayCache(tmp_path, max_bytes=2000)  # two entries of 100 x 2 floats, not three
    first = {"coords": np.arange(200, dtype=np.float32).reshape(100, 2)}
    cache.put("first", first)
    assert np.array_equal(cache.get("first")["coords"], first["coords"])
    os.utime(cache.path("first"), (1, 1))
    cache.put("second", {"coords": np.zeros((100, 2), np.float32)})
    cache.put("third", {"coords": np.ones((100, 2), np.float32)})
    assert cache.get("first") is None and cache.get("third") is not None, "the least recently used went"
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 2000

    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    cache.path("pickle").write_bytes(pickle.dumps(Payload()))
    assert cache.get("pickle") is None and not marker.exists()
    cache.path("link").symlink_to("/dev/zero")
    assert cache.get("link") is None
    os.mkfifo(cache.path("fifo"))
    assert cache.get("fifo") is None  # returns at once instead of waiting for a writer


# ---------------------------------------------------------------- the Train page


def test_losses_are_pills_by_the_papers_names_and_picking_one_adds_only_it(runs_dir):
    app = open_page("pages/train.py", credential=BOB)
    pills = app.button_group(key="losses")
    assert "CosFace (AM-Softmax)" in pills.options and "cosface" not in pills.options
    pills.set_value(["cosface"]).run()
    assert app.button_group(key="losses").value == ["cosface"]
    expanders = [e.label for e in app.expander if "hyperparameters" in e.label]
    assert expanders == ["**CosFace (AM-Softmax)** hyperparameters"]


def test_an_out_of_range_number_is_named_at_once_and_kept(runs_dir):
    app = open_page("pages/train.py", credential=BOB)
    app.text_input(key="epochs").set_value("1000").run()
    assert app.text_input(key="epochs").value == "1000", "not silently put back"
    assert any("epochs: must be an integer from 1 to 200" in shown(e.value) for e in app.error)
    assert "allowed: an integer from 1 to 200" in app.text_input(key="epochs").help


def test_a_training_experiment_says_how_far_and_shows_its_finished_runs(runs_dir):
    app = open_page("pages/features.py", credential=BOB, exp=LANDING)
    assert any("training: run 2, epoch 0 of 12" in info.value for info in app.info)
    assert app.get("page_link")
    assert any("Softmax cross-entropy" in chart.proto.spec for chart in app.get("plotly_chart")), "the finished run"


def test_two_browsers_one_training(runs_dir, monkeypatch):
    """Alice starts; Bob, with her link, cannot stop it or start a second one on a full server; Alice's
    refresh keeps Stop and her form; a second Start or a bogus ?job= cannot start a second training."""
    alice = open_page("pages/train.py")
    alice.selectbox(key="model").set_value("lenetpp")
    alice.text_input(key="epochs").set_value("40")
    alice.text_input(key="lr").set_value("0.05")
    alice.button_group(key="losses").set_value(["cosface", "softmax"]).run()
    alice.text_input(key="hparam.cosface.margin").set_value("0.3")
    alice.button(key="start").click().run()
    assert not alice.error, [e.value for e in alice.error]
    manager = session.job_manager()
    owner = session.owner_of(ALICE)
    job_id = manager.active_job(owner)
    job = manager.get(job_id, owner)
    try:
        deadline = time.time() + 120
        while not job.snapshot().latest and time.time() < deadline:
            time.sleep(0.2)
        experiment = job.experiment

        bob = open_page("pages/train.py", credential=BOB, exp=experiment)
        assert not has_button(bob, "stop-"), "no Stop for Bob"
        assert bob.get("progress"), "her training's progress, read-only from its run files"
        assert not manager.stop(job_id, session.owner_of(BOB))
        monkeypatch.setattr(jobs, "MAX_JOBS", 1)
        bob.button(key="start").click().run()
        assert any("This server already has 1 trainings queued or running" in shown(e.value) for e in bob.error)
        assert not manager.jobs_of(session.owner_of(BOB))

        refreshed = open_page("pages/train.py", exp=experiment, job="bogus")
        assert "job" not in refreshed.query_params
        assert has_button(refreshed, f"stop-{job_id}")
        assert refreshed.selectbox(key="model").value == "lenetpp"
        assert refreshed.text_input(key="epochs").value == "40" and refreshed.text_input(key="lr").value == "0.05"
        assert set(refreshed.button_group(key="losses").value) == {"cosface", "softmax"}
        assert refreshed.text_input(key="hparam.cosface.margin").value == "0.3"
        assert refreshed.button(key="start").disabled
        assert manager.jobs_of(owner) == [job_id]

        features = open_page("pages/features.py", exp=experiment)
        assert any(re.search(r"training: runs? 1(-2)? of 2, epoch \d+ of 40", i.value) for i in features.info)
        assert features.get("page_link")

        refreshed.button(key=f"stop-{job_id}").click().run()
        job.join(120)
    finally:
        manager.stop(job_id, owner)
        job.join(120)
    assert not job.running
