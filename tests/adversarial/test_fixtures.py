"""A fixture's ``corpus`` can point anywhere ("Lower"): it stays inside the fixture's folder or
the project unless --allow-outside is given, and reports name paths, never file contents."""

from __future__ import annotations

from pathlib import Path

import pytest

from quotebot.bot.regress.fixtures import FixtureError, load_fixture

SECRET = "TOP-SECRET-LINE-THAT-MUST-NOT-BE-PRINTED"


def _fixture(folder: Path, corpus: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "qa_x.yaml"
    path.write_text(f"corpus: {corpus}\ncases:\n  - question: what?\n", encoding="utf-8")
    return path


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    project = tmp_path / "project"
    (project / "articles").mkdir(parents=True)
    (project / "articles" / "a.txt").write_text("A\n\nText.\n", encoding="utf-8")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "s.txt").write_text(f"{SECRET}\n\n{SECRET}\n", encoding="utf-8")
    return project, secret


@pytest.mark.parametrize("corpus", ["../../secret", "/etc", "link"])
def test_a_corpus_outside_the_fixture_and_project_is_refused(layout, corpus: str) -> None:
    project, secret = layout
    path = _fixture(project / "tests", corpus)
    (project / "tests" / "link").symlink_to(secret, target_is_directory=True)
    with pytest.raises(FixtureError) as caught:
        load_fixture(path, project_root=project)
    message = str(caught.value)
    assert message.startswith(f"{path}:1: corpus:") and "outside" in message and "--allow-outside" in message
    assert SECRET not in message
    assert load_fixture(path, project_root=project, allow_outside=True).corpus is not None


def test_a_corpus_inside_the_project_is_fine(layout) -> None:
    project, _ = layout
    path = _fixture(project / "tests", "../articles")
    assert load_fixture(path, project_root=project).corpus == ((project / "articles").resolve(),)


def test_the_regress_command_refuses_it_in_one_line_without_contents(layout, cli) -> None:
    project, _ = layout
    path = _fixture(project / "tests", "../../secret")
    (project / "config.yaml").write_text("index:\n  index_dir: .quotebot/index\n", encoding="utf-8")
    code, out, err = cli("--config", str(project / "config.yaml"), "regress", str(path))
    assert code == 2 and "outside" in err and SECRET not in err + out
