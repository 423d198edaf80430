"""What a ``sitegen`` process imports before it answers: building the parser, reading
channels.yaml, ``status`` and a ``mirror --due`` with nothing due load none of what a run needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sitegen.cli import EXIT_OK, main
from testkit.upstream import ExampleUpstream

# What a command's handler imports when it runs; each took a share of the ~0.4 s that every
# `sitegen` process (--help, --version, cron's `mirror --due`) spent starting.
HEAVY_MODULES = (
    "trio",
    "jinja2",
    "rattler",
    "httpx",
    "sitegen.config",
    "sitegen.web",
    "sitegen.sync",
    "sitegen.access.server_files",
)


@pytest.mark.integration  # a process of its own
def test_building_the_parser_imports_no_handlers_modules() -> None:
    """In a fresh interpreter (this one has them all imported), since the gain of leaving them
    to the handlers goes unseen when one module imports one of them at its top again."""
    code = (
        "import sys; from sitegen.cli import build_parser; build_parser()\n"
        f"print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == []


# Libraries a run needs that reading channels.yaml, and showing what it says, do not.
RUN_LIBRARIES = ("rattler", "trio", "jinja2", "httpx", "license_expression")


def config_without_specs(tmp_path: Path, url: str = "https://conda.example.org/example") -> Path:
    """A channels.yaml whose filters name no MatchSpec, for a site not made yet."""
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\n"
        "channels:\n"
        "  cloud/example:\n"
        f"    url: {url}\n"
        "    subdirs: [linux-64, noarch]\n"
        "    filters:\n"
        "      names: {exclude: [openssl]}\n"
        "      licenses: {exclude: ['*GPL*'], allow_missing: false}\n"
        "      builds: {exclude: ['py2*']}\n"
    )
    return config


def run_libraries_imported(code: str, modules: tuple[str, ...] = RUN_LIBRARIES) -> list[str]:
    """Which of ``modules`` ``code`` imports, in a fresh interpreter (this one has them all)."""
    listing = f"print('imported:', *(m for m in {modules!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\n{listing}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.splitlines()[-1].split()[1:]


@pytest.mark.integration  # a process of its own
def test_loading_a_config_without_specs_imports_no_run_libraries(tmp_path: Path) -> None:
    """What `sitegen status` and a `mirror --due` with nothing due load before they answer:
    filters that name no MatchSpec are read without rattler (specs would need it)."""
    config = config_without_specs(tmp_path)
    code = f"from sitegen.config import load_config; load_config({str(config)!r})"
    assert run_libraries_imported(code) == []


@pytest.mark.integration  # a process of its own
def test_status_imports_no_run_libraries(tmp_path: Path) -> None:
    """`sitegen status` reads the run records and the site's state, and runs nothing."""
    config = config_without_specs(tmp_path)
    code = f"from sitegen.cli import main; main(['status', '-c', {str(config)!r}])"
    assert run_libraries_imported(code) == []


# What only a run that has something to do needs: its stages, and the HTTP client under them.
STAGES = ("sitegen.sync.pipeline", "sitegen.sync.installers", "sitegen.net.download", "httpx")


@pytest.mark.integration  # a process of its own, and an upstream served over HTTP
def test_mirror_due_with_nothing_due_loads_no_stages(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """Cron may start `sitegen mirror --due` every minute, and nearly always nothing is due:
    it counts downloads and renders the pages, but loads none of what runs a mirror."""
    config = config_without_specs(tmp_path, example_upstream.url)
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    code = f"from sitegen.cli import main; main(['mirror', '-c', {str(config)!r}, '--due'])"
    assert run_libraries_imported(code, STAGES) == []
