"""Helpers of the adversarial suite: running code as an unprivileged user, making bombs."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


@functools.cache
def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--user", "true"], capture_output=True).returncode == 0


def unprivileged_prefix() -> list[str]:
    """The command prefix that runs a process without the right to read a chmod-000 folder.

    Root reads any folder; in a new user namespace (``unshare --user``) the process is
    ``nobody`` and the folder's permissions hold. Skips the test when neither works.
    """
    if os.geteuid() != 0:
        return []
    if not _unshare_works():
        pytest.skip("running as root and `unshare --user` is not available: chmod 000 cannot be tested")
    return ["unshare", "--user"]


def shared_tmp() -> Path:
    """A temporary folder that an unprivileged process can read (pytest's tmp_path is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="quotebot-adversarial-"))
    folder.chmod(0o755)
    return folder


def run_python(code: str, *, unprivileged: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    prefix = unprivileged_prefix() if unprivileged else []
    return subprocess.run(
        [*prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd="/"
    )


def deep_json(depth: int) -> str:
    """``[[[...]]]`` nested ``depth`` levels: made at test time, never stored."""
    return "[" * depth + "]" * depth


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs" YAML: each level a list of ``width`` aliases of the one before.

    ``width ** levels`` values when expanded, from a few hundred bytes.
    """
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"
