"""Markdown rendered to the plain text a reader sees, which is what gets stored and quoted.

"The mayor, [Jane Smith](https://example.com/jane), said" is stored as "The mayor, Jane
Smith, said"; "Mayor opens **new** library" as "Mayor opens new library". Each block
(paragraph, heading, list item, block quote line, table row, code block) becomes one
paragraph; paragraphs are separated by blank lines, like a ``.txt`` article, so paragraph
numbers mean the same in both.
"""

from __future__ import annotations

from quotebot.index.lazyre import lazy

_SPACES = lazy(r"[ \t]+")
# A first block this long is an opening paragraph, not a headline (as for .txt files).
TITLE_MAX_CHARS = 300

_PARSER = None


def _parser():
    global _PARSER
    if _PARSER is None:
        from markdown_it import MarkdownIt

        _PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    return _PARSER


def render_markdown(content: str) -> tuple[str | None, str]:
    """``(title, text)``: the title is a leading heading (or a one-line first paragraph
    followed by more), None when there is none; the text is every other block."""
    blocks = _blocks(_parser().parse(content))
    title = None
    if len(blocks) > 0 and blocks[0][0] == "heading":
        title = blocks.pop(0)[1]
    elif len(blocks) > 1 and blocks[0][0] == "line" and len(blocks[0][1]) <= TITLE_MAX_CHARS:
        title = blocks.pop(0)[1]
    return title, "\n\n".join(text for _, text in blocks)


def _blocks(tokens) -> list[tuple[str, str]]:
    """(kind, text) per block: kind "heading", "line" (a one-line paragraph) or "block"."""
    blocks: list[tuple[str, str]] = []
    row: list[str] | None = None
    opening = None
    for token in tokens:
        if token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            _append(blocks, "block", " | ".join(cell for cell in row if cell))
            row = None
        elif token.type in ("heading_open", "paragraph_open"):
            opening = token
        elif token.type == "inline":
            text = _inline_text(token.children or [])
            if row is not None:
                row.append(text)
            elif opening is not None and opening.type == "heading_open":
                _append(blocks, "heading", text)
            elif opening is not None and opening.map and opening.map[1] - opening.map[0] == 1 and not opening.hidden:
                _append(blocks, "line", text)
            else:
                _append(blocks, "block", text)
            opening = None
        elif token.type in ("fence", "code_block"):
            for line in token.content.split("\n"):
                _append(blocks, "block", line)
    return blocks


def _append(blocks: list[tuple[str, str]], kind: str, text: str) -> None:
    # Lines of one block (hard breaks) stay lines: "\n" inside is a paragraph break for quoting.
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(line for line in lines if line)
    if text:
        blocks.append((kind, text))


def _inline_text(children) -> str:
    parts: list[str] = []
    for child in children:
        if child.type == "image":
            continue  # a picture's alt text is not prose the article says
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        # link_open/close, em, strong, s and inline HTML are markup: their words come as text
    return "".join(parts)
