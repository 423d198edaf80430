"""Every test is exactly one kind, and a unit test that opens a socket or starts a process fails."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testkit.kinds import UnitGuard, during_import, kind_problem

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.unit
def test_exactly_one_kind() -> None:
    assert kind_problem(["parametrize", "unit"]) is None
    assert kind_problem(["integration"]) is None
    assert "neither" in (kind_problem(["parametrize"]) or "")
    assert "both" in (kind_problem(["unit", "integration"]) or "")


@pytest.mark.unit
def test_guard_records_sockets_and_processes_only_while_on() -> None:
    guard = UnitGuard()
    guard("socket.connect", (None, ("127.0.0.1", 80)))
    assert guard.stop() == []
    guard.start()
    guard("open", ("/etc/hosts", "r", 0))
    guard("socket.connect", (None, ("127.0.0.1", 80)))
    guard("socket.connect", (None, ("127.0.0.1", 80)))
    guard("subprocess.Popen", ("nginx", ["nginx"], None, None))
    assert guard.stop() == ["socket.connect ('127.0.0.1', 80)", "subprocess.Popen nginx"]
    assert guard.stop() == []
    assert not during_import()


@pytest.mark.unit
def test_guard_leaves_what_a_module_does_while_it_is_imported(tmp_path: Path) -> None:
    # croniter, imported lazily, runs `file` on the interpreter: the import's doing
    path = tmp_path / "probing_library.py"
    path.write_text('guard("subprocess.Popen", ("file", ["file"], None, None))\n')
    spec = importlib.util.spec_from_file_location("probing_library", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.guard = guard = UnitGuard()
    guard.start()
    spec.loader.exec_module(module)
    assert guard.stop() == []


def run_suite(root: Path, tests: str) -> subprocess.CompletedProcess[str]:
    """Run pytest, with this repository's configuration and conftest, on ``tests``."""
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "tests").mkdir()
    shutil.copy(REPO / "tests" / "conftest.py", root / "tests" / "conftest.py")
    (root / "tests" / "test_sample.py").write_text(textwrap.dedent(tests))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.integration
def test_an_unmarked_test_stops_collection(tmp_path: Path) -> None:
    result = run_suite(
        tmp_path,
        """
        import pytest

        @pytest.mark.unit
        def test_marked():
            pass

        def test_unmarked():
            pass
        """,
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "test_sample.py::test_unmarked: carries neither kind" in result.stderr
    assert "test_marked" not in result.stderr


@pytest.mark.integration
def test_a_unit_test_that_starts_a_process_fails(tmp_path: Path) -> None:
    result = run_suite(
        tmp_path,
        """
        import subprocess
        import pytest

        @pytest.mark.unit
        def test_unit():
            subprocess.run(["true"], check=True)

        @pytest.mark.integration
        def test_integration():
            subprocess.run(["true"], check=True)
        """,
    )
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout
    assert "FAILED tests/test_sample.py::test_unit" in result.stdout
    assert "subprocess.Popen true" in result.stdout
    assert "mark it integration" in result.stdout
