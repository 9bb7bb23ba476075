"""Text from articles, file names and users, made safe to print on a terminal.

An article's title, text or id may hold escape sequences (``\\x1b]0;...\\x07`` retitles the
terminal window, others move the cursor or rewrite what was printed) and newlines that
forge lines of output. Everything a front end prints to a terminal goes through
``printable``; JSON output goes through ``json_line``, which keeps the data exact (every
character is still there, as a JSON escape) while no raw control character reaches the
terminal.
"""

from __future__ import annotations

import json
import re
from typing import Any

from quotebot.index.lazyre import lazy

# C0 and C1 controls, DEL, the bidirectional overrides and isolates (they reorder what
# follows on the line) and the Unicode line and paragraph separators.
_OTHER_CONTROLS = "\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_ALL = lazy(f"[\x00-\x1f{_OTHER_CONTROLS}]")
_ALL_BUT_LAYOUT = lazy(f"[\x00-\x08\x0b-\x1f{_OTHER_CONTROLS}]")  # keeps \t and \n
# What json.dumps(ensure_ascii=False) leaves raw that a terminal would still act on.
_JSON_RAW = lazy(f"[{_OTHER_CONTROLS}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_layout: bool = False) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), so it prints inert.

    ``keep_layout`` keeps newlines and tabs (multi-line text the program laid out itself);
    ids, titles and one-line messages are printed without it.
    """
    return (_ALL_BUT_LAYOUT if keep_layout else _ALL).sub(_escape, text)


def json_line(data: Any, *, indent: int | None = None) -> str:
    """``data`` as one line of JSON, with no raw control character in it.

    ``json.dumps`` escapes C0 controls but not DEL, C1 controls or the bidi and line
    separators; they are written as ``\\uXXXX`` escapes, so the decoded data is unchanged.
    """
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    return _JSON_RAW.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
