"""README.md's code map names every module of sitegen, so that it says what each may touch.

A module ``sitegen/<room>/<name>.py`` is named by ```<name>``` in the row of its room
(``sitegen/<room>/``); a module at the top, ``sitegen/<name>.py``, by a row of its own. A
package's ``__init__.py`` is its face (what it re-exports), not a module of its own.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent
ROOM = re.compile(r"`(sitegen/[^`]*)`")


def code_map() -> dict[str, str]:
    """Room -> the rest of its row, from the table under README.md's ``### Code map``."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n### Code map\n", 1)[1].split("\n#", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `sitegen/"):
            continue
        rooms, rest = line.removeprefix("|").split("|", 1)
        for room in ROOM.findall(rooms):
            rows[room] = rest
    return rows


def unnamed_modules(package: Path, rows: dict[str, str]) -> list[str]:
    missing = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        relative = path.relative_to(package.parent).as_posix()
        if path.parent == package:
            named = relative in rows
        else:
            named = f"`{path.stem}`" in rows.get(f"{path.parent.relative_to(package.parent)}/", "")
        if not named:
            missing.append(relative)
    return missing


def test_every_module_is_named_in_the_code_map() -> None:
    assert unnamed_modules(REPO / "sitegen", code_map()) == []


def test_every_room_of_the_code_map_exists() -> None:
    assert [room for room in code_map() if not (REPO / room).exists()] == []


def test_a_module_left_out_of_its_room_is_found(tmp_path: Path) -> None:
    package = tmp_path / "sitegen"
    (package / "web").mkdir(parents=True)
    for name in ("cli.py", "resources.py", "web/__init__.py", "web/render.py", "web/landing.py"):
        (package / name).write_text("")
    rows = {"sitegen/cli.py": " the parser |", "sitegen/web/": " `render` (`landing_page`) |"}
    assert unnamed_modules(package, rows) == ["sitegen/resources.py", "sitegen/web/landing.py"]
