"""Text made ready to be shown: a count with its noun (one rule for singular and plural), and text from files
(a run's variant label, messages, names) shown as the characters it holds:
one line of visible characters, and for a plotly figure those characters written so plotly draws them. Plotly
reads a subset of HTML in titles, legends, ticks and hover labels (``<a href>`` makes a link, ``<b>``, ``<br>``,
``<span style>``) and decodes character references, so ``<``, ``>`` and ``&`` go in as references. (Streamlit's
Markdown has its own escape: :func:`ui.text.plain`.)"""

from __future__ import annotations

import html
import unicodedata

MAX_CHARACTERS = 600  # an error message quoting a whole file stays one readable paragraph


def _visible(char: str) -> bool:
    # control and format characters (bidirectional overrides among them) can make text read differently
    return unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co")


def one_line(text: object, limit: int = MAX_CHARACTERS) -> str:
    """``text`` as one line (white space collapsed) without control and format characters, at most ``limit``
    characters (then an ellipsis)."""
    value = " ".join("".join(c if _visible(c) or c.isspace() else "" for c in str(text)).split())
    return value[: limit - 1] + "…" if len(value) > limit else value


def plotly_text(text: object, limit: int = MAX_CHARACTERS) -> str:
    """``text`` for a plotly title, legend, tick or hover label: :func:`one_line`, drawn as it reads."""
    return html.escape(one_line(text, limit), quote=False)


def count_text(n: int, noun: str, plural: str = "") -> str:
    """``1 run``, ``2 runs``, ``1,000 runs``: a count and its noun, the singular for exactly one (``plural``
    where the noun's plural is not the singular and an s: ``losses``)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
