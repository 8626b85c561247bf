"""Text from files (run errors and messages, names in a config or status file) made safe to show in
Streamlit's Markdown: shown literally, never as a link, an image, a colour, an icon or a formula."""

from __future__ import annotations

import re

from lab.shown_text import MAX_CHARACTERS, one_line

_MARKDOWN_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation mark: CommonMark escapes them all
# GitHub-flavoured Markdown turns bare URLs and e-mail addresses into links after escapes are resolved,
# so an invisible zero-width space splits what it looks for: "http:", "www." and the "@".
_AUTOLINK_START = re.compile(r"(https?)(\\:)|(www)(\\\.)|(\\@)", re.IGNORECASE)
_ZERO_WIDTH_SPACE = "\u200b"


def plain(text: object, limit: int = MAX_CHARACTERS) -> str:
    """``text`` as Markdown that displays exactly its characters: one line (white space collapsed),
    control and format characters dropped, at most ``limit`` characters (then an ellipsis)."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", one_line(text, limit))
    return _AUTOLINK_START.sub(_split_autolink, escaped)


def _split_autolink(match: re.Match[str]) -> str:
    if match.group(5):
        return _ZERO_WIDTH_SPACE + match.group(5)
    scheme, rest = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    return scheme + _ZERO_WIDTH_SPACE + rest
