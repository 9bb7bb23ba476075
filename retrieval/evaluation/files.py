"""Reading an evaluation data file, with the one-line errors every data set gives."""

from __future__ import annotations

from pathlib import Path

from quotebot.index.errors import QuotebotError


def read_data_file(path: Path, error: type[QuotebotError], expected: str) -> bytes:
    """The bytes of ``path``; ``error("path: what is wrong")`` when it cannot be read.

    ``expected`` names what the file should be ("a SQuAD JSON file"), for the message
    given when ``path`` is a folder.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, expected {expected}") from None
    except OSError as problem:
        raise error(f"{path}: cannot read ({problem.strerror or problem})") from None
