"""The wheel is what ``pip install`` puts on a server: it must carry the templates, and the
installed sitegen must render from them, with no checkout around. The sdist is what a
packager builds and tests from: it must carry the tests and all they need.

The wheel is built offline from a copy of the project (so the build's ``build/`` and
``*.egg-info`` stay out of the checkout) with the test environment's setuptools, and unpacked
as a site-packages directory that the child processes import sitegen from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
# What a build reads: pyproject.toml names the README and maps templates/ into the package.
PROJECT_FILES = ("pyproject.toml", "README.md", "LICENSE", "sitegen", "templates")
# ...and what MANIFEST.in adds to the sdist, for its tests.
SDIST_FILES = (
    *PROJECT_FILES,
    "MANIFEST.in",
    "tests",
    "testkit",
    "channels.yaml",
    "Makefile",
    ".ci",
)

CHECK_IMPORTS = """\
import sys
from pathlib import Path

import sitegen
from sitegen.resources import templates_dir
from sitegen.tools import webconf
from sitegen.web import render

site_packages = Path(sys.argv[1])
assert Path(sitegen.__file__).is_relative_to(site_packages), sitegen.__file__
packaged = site_packages / "sitegen" / "templates"
assert templates_dir() == packaged, templates_dir()
assert render.TEMPLATES_DIR == packaged, render.TEMPLATES_DIR
assert webconf.TEMPLATE_DIR == packaged / "webconf", webconf.TEMPLATE_DIR
environment = render.make_environment(render.TEMPLATES_DIR)
assert Path(environment.get_template("landing.html").filename).is_relative_to(packaged)
"""


def copy_project(names: tuple[str, ...], source: Path) -> None:
    """The checkout's files a build reads, copied (so the build's own files stay out of it)."""
    source.mkdir()
    for name in names:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)


def files_of(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def site_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout, unpacked."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    copy_project(PROJECT_FILES, source)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    build += ["--no-index", "--disable-pip-version-check", "-w", str(tmp / "dist"), str(source)]
    result = subprocess.run(build, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, (
        "building the wheel failed (the backend is the test environment's setuptools, from"
        f" the test extra):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    (wheel,) = (tmp / "dist").glob("sitegen-*.whl")
    target = tmp / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def run_installed(site_packages: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python <args>`` importing sitegen from the unpacked wheel, outside the checkout."""
    env = {**os.environ, "PYTHONPATH": str(site_packages)}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_wheel_carries_every_template(site_packages: Path) -> None:
    def files(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

    source = files(REPO / "templates")
    assert {"base.html", "assets/style.css", "webconf/nginx.conf.j2"} <= source
    assert files(site_packages / "sitegen" / "templates") == source
    # The licence the metadata declares travels with the wheel (BSD-3-Clause asks for it).
    (licence,) = site_packages.glob("sitegen-*.dist-info/licenses/LICENSE")
    assert licence.read_bytes() == (REPO / "LICENSE").read_bytes()


def test_installed_sitegen_uses_its_packaged_templates(site_packages: Path, tmp_path: Path) -> None:
    result = run_installed(site_packages, tmp_path, "-c", CHECK_IMPORTS, str(site_packages))
    assert result.returncode == 0, result.stderr


def test_installed_sitegen_renders_the_demo_and_a_webconf(
    site_packages: Path, tmp_path: Path
) -> None:
    demo = tmp_path / "demo"
    result = run_installed(site_packages, tmp_path, "-m", "sitegen", "demo", "--dir", str(demo))
    assert result.returncode == 0, result.stderr
    assert "<html" in (demo / "site" / "index.html").read_text()
    assert (demo / "site" / "cloud" / "example" / "index.html").is_file()
    stylesheet = (REPO / "templates" / "assets" / "style.css").read_bytes()
    assert (demo / "site" / "assets" / "style.css").read_bytes() == stylesheet

    config = str(demo / "channels.yaml")
    result = run_installed(
        site_packages, tmp_path, "-m", "sitegen", "webconf", "nginx", "-c", config
    )
    assert result.returncode == 0, result.stderr
    assert "location" in result.stdout


BUILD_SDIST = (
    "import sys\nfrom setuptools import build_meta\nprint(build_meta.build_sdist(sys.argv[1]))"
)


def test_the_sdist_carries_the_tests_and_what_they_need(tmp_path: Path) -> None:
    """Built offline with the test environment's setuptools (the backend pyproject.toml names),
    unpacked, and a few of its own tests run from it."""
    source = tmp_path / "source"
    copy_project(SDIST_FILES, source)
    dist = tmp_path / "dist"
    build = [sys.executable, "-c", BUILD_SDIST, str(dist)]
    result = subprocess.run(build, cwd=source, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    (sdist,) = dist.glob("sitegen-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    carried = files_of(unpacked)
    for folder in ("tests", "testkit", "sitegen", "templates"):
        wanted = {f"{folder}/{name}" for name in files_of(REPO / folder)}
        assert wanted <= carried, sorted(wanted - carried)[:10]
    assert {"tests/conftest.py", "channels.yaml", "Makefile", ".ci/run"} <= carried
    assert not [name for name in carried if name.endswith(".pyc")]
    # The sdist's tests run from it: conftest.py's checks, testkit, the example channels.yaml.
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    tests = ["tests/test_config_valid.py", "-k", "committed_channels_yaml or short"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
