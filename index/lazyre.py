"""Regular expressions compiled when first used, not when their module is imported.

A module-level ``re.compile`` runs in every process that imports the module, whether the
pattern is used or not: quotebot's sixty-odd patterns took ~0.1 s of a one-shot
`quotebot ask`, which uses a handful of them (the ones its question's type needs).

``lazy(pattern, flags)`` stands in for ``re.compile(pattern, flags)`` at module level. On
first use it compiles the pattern (``re.compile``: the same ``re.Pattern``) and puts that in
its own place in the module that made it, so later uses there find the compiled pattern
itself, with no cost per call. A stand-in held elsewhere (imported by name into another
module before its first use, a default argument) keeps working; each use there costs one
Python call more. Only ``isinstance(x, re.Pattern)`` and the ``re`` module's functions
(``re.sub(PATTERN, ...)``) need the compiled pattern: call ``.compiled()``.
"""

from __future__ import annotations

import re
import sys
from typing import Any


class LazyPattern:
    """``re.compile(pattern, flags)``, made on first use (see the module's docstring)."""

    __slots__ = ("_source", "_flags", "_compiled", "_home")

    def __init__(self, pattern: str, flags: int | re.RegexFlag = 0, home: dict[str, Any] | None = None) -> None:
        self._source = pattern
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None
        self._home = home  # the globals of the module that made it

    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            compiled = re.compile(self._source, self._flags)
            if self._home is not None:
                for name, value in list(self._home.items()):
                    if value is self:
                        self._home[name] = compiled  # later uses in its module: the pattern itself
            self._compiled = compiled
        return self._compiled

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):  # a tool's probe (pytest's __test__, copy's hooks): not a use
            raise AttributeError(attribute)
        return getattr(self._compiled or self.compiled(), attribute)

    def __repr__(self) -> str:
        return f"lazy({self._source!r}, {self._flags!r})"


def lazy(pattern: str, flags: int | re.RegexFlag = 0) -> LazyPattern:
    """A module-level pattern compiled on first use: ``_WORD = lazy(r"\\w+")``."""
    return LazyPattern(pattern, flags, home=sys._getframe(1).f_globals)
