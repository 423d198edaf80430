"""The Makefile an operator runs in the checkout that holds the mirror (README: `make mirror`
publishes into ./site)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.integration
def test_make_clean_removes_what_make_built_and_keeps_the_mirrored_site(tmp_path: Path) -> None:
    """`make clean` (say, to rebuild the virtualenv after a Python upgrade) must not take the
    mirror with it: ./site is what `make mirror` published and what the web server serves,
    downloads of days, and its run history and state, which no build step makes again."""
    shutil.copy(REPO / "Makefile", tmp_path)
    state = tmp_path / "site" / ".sitegen"
    state.mkdir(parents=True)
    (state / "runs.jsonl").write_text("{}\n")
    built = [".venv/bin", "demo/site", "build", "sitegen.egg-info"]
    for name in built:
        (tmp_path / name).mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    subprocess.run(
        ["make", "-s", "clean"], cwd=tmp_path, env=env, check=True, timeout=60, capture_output=True
    )
    assert (state / "runs.jsonl").read_text() == "{}\n"
    assert [name for name in built if (tmp_path / name.split("/")[0]).exists()] == []


@pytest.mark.integration
def test_the_mirrors_setup_installs_sitegen_alone_and_the_tests_add_their_tools(
    tmp_path: Path,
) -> None:
    """`make -s setup` is what cron runs on the mirror's host: sitegen and what it runs on,
    not the tests' tools (pytest, ruff, a browser driver); `make test` and `make lint` add
    those."""
    shutil.copy(REPO / "Makefile", tmp_path)
    (tmp_path / "pyproject.toml").write_text("")
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}

    def planned(target: str) -> str:
        done = subprocess.run(
            ["make", "-n", target],
            cwd=tmp_path,
            env=env,
            check=True,
            timeout=60,
            capture_output=True,
            text=True,
        )
        return done.stdout

    for target in ("setup", "mirror", "demo"):
        plan = planned(target)
        assert "pip install --quiet --quiet -e .\n" in plan, (target, plan)
        assert "[test]" not in plan, (target, plan)
    for target in ("test", "lint"):
        plan = planned(target)
        assert "-e '.[test]'" in plan, (target, plan)
