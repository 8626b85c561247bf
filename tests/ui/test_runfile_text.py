"""Text from run files reaches every page as text: a Markdown link, image and heading marks, a bare address
and HTML planted in every field of every run file (tests/planted.py) are never drawn as a link, an image or
markup, in Streamlit's Markdown (headings, captions, column headers, help, progress text) or in plotly's
titles, legends, ticks and hover labels. The real-browser check is tests/test_browser_runfile_text.py."""

from __future__ import annotations

import json

import pytest

from tests.apptest import app_reads, open_page
from tests.planted import EXPERIMENT, MARKER, PLANTS, live_markup, plant, strings

PAGES = ["pages/features.py", "pages/angles.py", "pages/gradcam.py", "pages/compare.py", "pages/train.py"]
PAGES += ["pages/learn.py"]
# fields Streamlit shows as plain text: a select box's options, text and code elements
PLAIN_TEXT = {
    "Selectbox.options",
    "Selectbox.default",
    "Selectbox.raw_value",
    "MultiSelect.options",
    "Text.body",
    "Code.code_text",
}
# what plotly draws of the HTML it is given in a title, a legend, a tick or a hover label
PLOTLY_MARKUP = ("<img", "<a ", "<i>")


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = plant(tmp_path_factory.mktemp("planted-runs"))
    with app_reads(root, LOSSLENS_CACHE_DIR=str(tmp_path_factory.mktemp("planted-cache"))):
        yield root


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def page_strings(app) -> list[tuple[str, str]]:
    """(``Type.field``, text) for every text field of every element the page sent, sidebar included."""
    found = []
    stack = list(app._tree.children.values())
    while stack:
        element = stack.pop()
        stack += list(getattr(element, "children", {}).values())
        proto = getattr(element, "proto", None)
        if proto is not None and hasattr(proto, "ListFields"):
            found += strings(proto)
    return found


def markup_shown(app) -> list[tuple[str, str, list[str]]]:
    """(field, text, live markup) for every text of the page that shows a plant as markup."""
    found = []
    for field, text in page_strings(app):
        if field == "PlotlyChart.spec":
            for shown in _texts(json.loads(text)):
                live = [mark for mark in PLOTLY_MARKUP if MARKER in shown and mark in shown]
                if live:
                    found.append((field, shown, live))
        elif MARKER in text and field not in PLAIN_TEXT and live_markup(text):
            found.append((field, text, live_markup(text)))
    return found


@pytest.mark.parametrize("page", PAGES)
def test_text_planted_in_every_run_file_field_shows_as_text(runs_dir, page):
    app = open_page(page, experiment=EXPERIMENT)
    assert not markup_shown(app)
    assert any(MARKER in text for _, text in page_strings(app)), "a planted label or message is on the page"
    assert not markup_shown(open_page(page, experiment=PLANTS[0])), "an experiment named by a plant"
