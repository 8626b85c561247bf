"""A runs folder whose run files quote hostile text in every field: Markdown links, images and heading marks,
a bare address, and HTML. The AppTest and the real-browser suites open every page on it and check that the
text reaches the screen as text."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from lab.runs import contents
from lab.runs.store import RunStore
from lab.settings.config import RunConfig, settings
from lab.training.loop import train_run

EXPERIMENT = "planted"
HOST = "x.example"  # reserved for examples: a request to it means the page loaded something it was told to
MARKER = "relogin"  # in every plant, without punctuation: it survives every escape, so it finds the plant
PLANTS = (
    f"## [{MARKER}](http://{HOST}) ![pic](http://{HOST}/y.png) http://{HOST}/q *planted* :violet[planted] $x^2$",
    f"# <img src=http://{HOST}/z.png> <a href='http://{HOST}'>{MARKER}</a> <i>planted</i> &amp;",
)
# readable runs: the text fields a valid config.json or status.json may hold
READABLE_CONFIG = ("variant",)
READABLE_STATUS = ("message",)


def _edit_json(path: Path, **changes: Any) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def plant(root: Path) -> Path:
    """Fill ``root`` with experiment :data:`EXPERIMENT`: a trained run, copies of it whose variant label and
    status message are each plant (one of them running, so the Train page follows it), and a run per field of
    each run file (every config setting, an unknown one, a hyperparameter; every status field; a metrics line;
    a safetensors header's metadata and tensor name) holding a plant. One more run is named after a plant."""
    store = RunStore(root)
    good = train_run(
        RunConfig(experiment=EXPERIMENT, epochs=1, train_limit=200, snapshot_points=50, eval_images=100), store
    )
    copies = iter(range(1_000))

    def copy(state: str = "finished") -> Path:
        target = root / f"{good.run_id}-planted-{next(copies)}"
        shutil.copytree(good.run_dir, target)
        _edit_json(target / contents.STATUS, status=state)
        return target

    for index, text in enumerate(PLANTS):
        labelled = copy("running" if index == 0 else "finished")
        _edit_json(labelled / contents.CONFIG, variant=text)
        _edit_json(labelled / contents.STATUS, message=text)
        for field in [s.name for s in settings(RunConfig) if s.name != "experiment"] + [text]:
            _edit_json(copy() / contents.CONFIG, **{field: text})
        _edit_json(copy() / contents.CONFIG, loss="amc", loss_params={"margin": text, text: 1.0})
        for field in [*contents.STATUS_TEXT, *contents.STATUS_NUMBERS, *contents.STATUS_COUNTS, text]:
            if field != "owner":  # a run owned by someone else is shown to nobody else
                _edit_json(copy("failed" if field == "status" else "finished") / contents.STATUS, **{field: text})
        metrics = copy() / contents.METRICS
        line = {"epoch": 1, **{name: text for name in contents.METRIC_NUMBERS}, text: text}
        metrics.write_text(metrics.read_text() + json.dumps(line) + "\n")
        save_file({text: torch.zeros(2)}, str(copy() / contents.FEATURES), metadata={"format": text})
        save_file({"labels": torch.zeros(2)}, str(copy() / contents.SNAPSHOTS), metadata={text: text})
        _edit_json(copy() / contents.CONFIG, experiment=text)
    return root


def strings(message: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every text field of a protobuf message, recursively, as (``Type.field``, value)."""
    for field, value in message.ListFields():
        where = f"{path or type(message).__name__}.{field.name}"
        single = isinstance(value, (str, bytes, int, float)) or hasattr(value, "ListFields")
        items = [value] if single else list(value)
        for item in items:
            if isinstance(item, str):
                yield where, item
            elif hasattr(item, "ListFields"):
                yield from strings(item, f"{type(item).__name__}")


def live_markup(markdown: str) -> list[str]:
    """The plants' syntax that ``markdown`` leaves live: what Streamlit would draw as a link, an image, HTML or
    a coloured span (a backslash makes the character after it text; a heading mark is live only where a link or
    an image of the same plant is)."""
    bare = re.sub(r"\\.", " ", markdown)
    return [mark for mark in ("](", "![", "<img", "<a ", "<i>", f"http://{HOST}", ":violet[", "$x") if mark in bare]
