"""pyproject.toml declares every third-party distribution that sitegen/ imports itself: one that
only arrives as another's dependency (markupsafe through jinja2) may be dropped by that
dependency's next release, and then the installed sitegen fails on import."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    """The distributions [project] dependencies names (the name before any extra or version)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {
        canonical(re.match(r"[A-Za-z0-9._-]+", requirement).group())
        for requirement in project["dependencies"]
    }


def imported_modules() -> dict[str, str]:
    """Top-level module -> the first file of sitegen/ that imports it (absolute imports)."""
    found: dict[str, str] = {}
    for path in sorted((REPO / "sitegen").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.partition(".")[0], str(path.relative_to(REPO)))
    return found


def test_every_third_party_import_is_a_declared_dependency() -> None:
    distributions = packages_distributions()
    wanted = declared()
    undeclared = []
    for module, where in imported_modules().items():
        if module in sys.stdlib_module_names or module == "sitegen":
            continue
        providers = {canonical(d) for d in distributions.get(module, [])}
        assert providers, f"{module} (imported by {where}) is not installed"
        if not providers & wanted:
            undeclared.append(f"{module} ({where}; from {', '.join(sorted(providers))})")
    assert not undeclared, f"imported but not in [project] dependencies: {undeclared}"


def test_anyio_is_declared_with_its_trio_extra() -> None:
    """``sitegen watch`` and ``sitegen serve`` await watchfiles (built on anyio) inside trio, so
    anyio's trio backend runs: without ``anyio[trio]`` pip pairs the newest anyio with any trio
    that ``trio>=`` allows, and anyio 4.16 on trio 0.25 fails in ``CancelScope.cancel``."""
    assert {"watchfiles", "trio"} <= imported_modules().keys()
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = {
        canonical(match.group(1)): {e.strip() for e in (match.group(2) or "").split(",")}
        for match in (
            re.match(r"([A-Za-z0-9._-]+)\s*(?:\[([^\]]*)\])?", requirement)
            for requirement in project["dependencies"]
        )
    }
    assert "trio" in extras.get("anyio", set()), "pyproject.toml does not declare anyio[trio]"
