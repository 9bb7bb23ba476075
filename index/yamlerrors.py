"""YAML whose mistakes point at a line: shared by config.yaml and the regression fixtures.

``yaml.safe_load`` forgets where things were; the composed node tree keeps a mark on every
node. ``parse_yaml`` parses once and returns both the data and the line of every mapping
key and list item, so a pydantic error location such as ``("cases", 2, "expect", "abstain")``
can be turned into ``file:line: cases[2].expect.abstain: message``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from quotebot.index.errors import ExitCode, QuotebotError

# Aliases let a few hundred bytes stand for billions of nodes ("billion laughs"): every
# reader of the data (the line map, pydantic) walks the expansion. Documents that expand
# past this many nodes are refused; config files and fixtures hold a few thousand at most.
MAX_EXPANDED_NODES = 100_000

# A location in a YAML document: mapping keys and list indexes, all as strings (pydantic
# reports list indexes as ints, settings code as strings; both find the same line).
Lines = dict[tuple[str, ...], int]


class YamlLocatedError(QuotebotError, ValueError):
    """Unparsable YAML; ``str()`` is ``where:line: problem``."""

    exit_code = ExitCode.USAGE

    def __init__(self, where: str, line: int | None, problem: str) -> None:
        super().__init__(f"{where}{f':{line}' if line else ''}: {problem}")
        self.line = line
        self.problem = problem


def parse_yaml(text: str, where: str, *, forbid_duplicate_keys: bool = False) -> tuple[Any, Lines]:
    """The data of ``text`` and the 1-based line of every key and list item in it.

    ``where`` names the source in error messages. PyYAML keeps the last of two equal keys
    without a word; ``forbid_duplicate_keys`` makes that an error instead.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, where)
        if forbid_duplicate_keys:
            _check_duplicate_keys(node, where)
        data = loader.construct_document(node) if node is not None else None
        lines = node_lines(node)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise YamlLocatedError(where, mark.line + 1 if mark else None, problem) from None
    except RecursionError:
        raise YamlLocatedError(where, None, "nested too deeply") from None
    finally:
        loader.dispose()
    return data, lines


def node_lines(node: yaml.Node | None, prefix: tuple[str, ...] = (), _seen: set[int] | None = None) -> Lines:
    """Line number (1-based) of every mapping key and sequence item under ``node``.

    A node reached again through an alias is not walked again (its lines are those of its
    anchor); below it, errors point at the alias.
    """
    seen = set() if _seen is None else _seen
    lines: Lines = {}
    if node is None or id(node) in seen:
        return lines
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = prefix + (str(key_node.value),)
            lines[path] = key_node.start_mark.line + 1
            lines.update(node_lines(value_node, path, seen))
    elif isinstance(node, yaml.SequenceNode):
        for number, item in enumerate(node.value):
            path = prefix + (str(number),)
            lines[path] = item.start_mark.line + 1
            lines.update(node_lines(item, path, seen))
    return lines


def _check_expansion(root: yaml.Node, where: str) -> None:
    """Refuse a document whose aliases expand past ``MAX_EXPANDED_NODES``, or refer to themselves.

    Each node's expanded size is counted once (memoised by identity), so the check costs
    the size of the document as written, not of its expansion.
    """
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if not children_done:
            if key in in_progress:
                raise YamlLocatedError(where, node.start_mark.line + 1, "an alias refers to a node that contains it")
            in_progress.add(key)
            stack.append((node, True))
            for child in children:
                if id(child) in in_progress and id(child) not in sizes:
                    raise YamlLocatedError(where, child.start_mark.line + 1, "an alias refers to a node that contains it")
                if id(child) not in sizes:
                    stack.append((child, False))
            continue
        in_progress.discard(key)
        sizes[key] = 1 + sum(sizes[id(child)] for child in children)
        if sizes[key] > MAX_EXPANDED_NODES:
            raise YamlLocatedError(
                where,
                node.start_mark.line + 1,
                f"aliases expand to more than {MAX_EXPANDED_NODES:,} values (an alias bomb?)",
            )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def nearest_line(loc: Sequence[str | int], lines: Lines) -> int | None:
    """The line of ``loc``, or of the closest enclosing key or item that has one."""
    parts = tuple(str(part) for part in loc)
    for end in range(len(parts), 0, -1):
        if parts[:end] in lines:
            return lines[parts[:end]]
    return None


def format_loc(loc: Sequence[str | int]) -> str:
    """``("cases", 2, "expect")`` -> ``cases[2].expect``; the empty location is the top level."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def describe_validation_error(
    error: ValidationError,
    where: str,
    lines: Lines,
    *,
    default_line: int | None = None,
    unknown_key_hint: Callable[[tuple[str | int, ...]], str] | None = None,
) -> str:
    """The first error as one line: ``where:line: key.path: message (and N more)``.

    An unknown key is named first: it usually explains the other errors (a misspelt key
    is also a missing one).
    """
    errors = error.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(first["loc"])
    line = nearest_line(loc, lines) or default_line
    if first["type"] == "extra_forbidden":
        message = "unknown key" + (unknown_key_hint(loc) if unknown_key_hint else "")
    elif first["type"] == "missing":
        message = "required key is missing"
    else:
        message = first["msg"].removeprefix("Value error, ")
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}{f':{line}' if line else ''}: {format_loc(loc)}: {message}{more}"


def _check_duplicate_keys(
    node: yaml.Node | None, where: str, prefix: tuple[str | int, ...] = (), _seen: set[int] | None = None
) -> None:
    seen_nodes = set() if _seen is None else _seen
    if node is None or id(node) in seen_nodes:  # an alias: its anchor was checked already
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                raise YamlLocatedError(
                    where, key_node.start_mark.line + 1, f"{format_loc(prefix + (key,))}: duplicate key"
                )
            seen.add(key)
            _check_duplicate_keys(value_node, where, prefix + (key,), seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for number, item in enumerate(node.value):
            _check_duplicate_keys(item, where, prefix + (number,), seen_nodes)
