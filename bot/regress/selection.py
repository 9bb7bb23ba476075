"""``-k EXPR``: choosing cases by question text or tag, with ``and``, ``or``, ``not`` and parentheses.

A term is one or more words; it selects a case when it is a case-insensitive substring of
one of the case's questions, or equals one of its tags. Adjacent words form one phrase:
``-k "blind eye"`` looks for the phrase; ``-k "herzog and not hezbollah"`` combines terms;
``-k '"and" or "not"'`` quotes words that would be operators.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from quotebot.bot.regress.fixtures import FixtureCase
from quotebot.index.errors import ExitCode, QuotebotError

Matcher = Callable[[FixtureCase], bool]

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"|\'([^\']*)\'|([^\s()"\']+))')
_OPERATORS = ("and", "or", "not")


class SelectionError(QuotebotError, ValueError):
    """A -k expression that does not parse; ``str()`` says where."""

    exit_code = ExitCode.USAGE


def compile_selection(expression: str) -> Matcher:
    """A predicate over cases for ``expression``; an empty expression selects everything."""
    tokens = _tokenize(expression)
    if not tokens:
        return lambda case: True
    parser = _Parser(tokens, expression)
    matcher = parser.parse_or()
    if parser.position < len(tokens):
        raise SelectionError(f"-k {expression!r}: unexpected {tokens[parser.position][1]!r}")
    return matcher


def term_matches(case: FixtureCase, term: str) -> bool:
    wanted = " ".join(term.split()).casefold()
    if any(tag.casefold() == wanted for tag in case.tags):
        return True
    return any(wanted in " ".join(turn.question.split()).casefold() for turn in case.case.turns)


def _tokenize(expression: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pairs: kind is ``(``, ``)``, an operator, or ``word`` (quoted words are never operators)."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expression):
        if not expression[position:].strip():
            break
        match = _TOKEN.match(expression, position)
        if not match or match.end() == position:
            raise SelectionError(f"-k {expression!r}: cannot read {expression[position:].strip()!r}")
        position = match.end()
        opening, closing, double, single, bare = match.groups()
        if opening:
            tokens.append(("(", opening))
        elif closing:
            tokens.append((")", closing))
        elif bare is not None and bare.lower() in _OPERATORS:
            tokens.append((bare.lower(), bare))
        else:
            word = next(text for text in (double, single, bare) if text is not None)
            tokens.append(("word", word))
    return tokens


class _Parser:
    """or_expr := and_expr ("or" and_expr)*; and_expr := not_expr ("and" not_expr)*;
    not_expr := "not" not_expr | "(" or_expr ")" | word+"""

    def __init__(self, tokens: list[tuple[str, str]], expression: str) -> None:
        self.tokens = tokens
        self.expression = expression
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def _fail(self, wanted: str) -> SelectionError:
        found = repr(self.tokens[self.position][1]) if self.position < len(self.tokens) else "the end"
        return SelectionError(f"-k {self.expression!r}: expected {wanted}, found {found}")

    def parse_or(self) -> Matcher:
        left = self.parse_and()
        while self._peek() == "or":
            self.position += 1
            right = self.parse_and()
            left = (lambda a, b: lambda case: a(case) or b(case))(left, right)
        return left

    def parse_and(self) -> Matcher:
        left = self.parse_not()
        while self._peek() == "and":
            self.position += 1
            right = self.parse_not()
            left = (lambda a, b: lambda case: a(case) and b(case))(left, right)
        return left

    def parse_not(self) -> Matcher:
        kind = self._peek()
        if kind == "not":
            self.position += 1
            inner = self.parse_not()
            return lambda case: not inner(case)
        if kind == "(":
            self.position += 1
            inner = self.parse_or()
            if self._peek() != ")":
                raise self._fail("')'")
            self.position += 1
            return inner
        if kind == "word":
            words = []
            while self._peek() == "word":
                words.append(self.tokens[self.position][1])
                self.position += 1
            phrase = " ".join(words)
            return lambda case: term_matches(case, phrase)
        raise self._fail("a word, 'not' or '('")
