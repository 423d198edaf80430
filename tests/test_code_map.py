"""README.md's code map names every module of sitegen, so that it says what each may touch.

A module ``sitegen/<room>/<name>.py`` is named by ```<name>``` in the row of its room
(``sitegen/<room>/``); a module at the top, ``sitegen/<name>.py``, by a row of its own. A
package's ``__init__.py`` is its face (what it re-exports), not a module of its own.

The map also says that a room imports only from the rooms listed below it, but for the one
arrow it names running back up (``config`` asks the ``filters`` registry for its kinds).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent
ROOM = re.compile(r"`(sitegen/[^`]*)`")
# (importing room, imported room): the README names this arrow as the one running back up.
UPWARD = {("config", "filters")}


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


def imported_rooms(path: Path) -> set[str]:
    """The top-level names under ``sitegen`` that a module imports (``sitegen.<name>...``,
    ``from sitegen import <name>``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            if node.module == "sitegen":
                names |= {f"sitegen.{alias.name}" for alias in node.names}
    return {name.split(".")[1] for name in names if name.startswith("sitegen.")}


def upward_imports(package: Path, rows: dict[str, str]) -> list[str]:
    """``module -> room`` for each import of a room listed above the module's own (rooms of
    one row, ``cli`` and ``__main__``, stand level)."""
    row_of = list(dict.fromkeys(rows.values()))
    rank = {
        room.removeprefix("sitegen/").removesuffix("/").removesuffix(".py"): row_of.index(row)
        for room, row in rows.items()
    }
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        room = relative.parts[0].removesuffix(".py")
        if room not in rank:
            continue
        for target in sorted(imported_rooms(path) & set(rank)):
            if rank[target] < rank[room] and (room, target) not in UPWARD:
                found.append(f"{package.name}/{relative.as_posix()} -> {target}")
    return found


def test_every_module_is_named_in_the_code_map() -> None:
    assert unnamed_modules(REPO / "sitegen", code_map()) == []


def test_every_room_of_the_code_map_exists() -> None:
    assert [room for room in code_map() if not (REPO / room).exists()] == []


def test_a_room_imports_only_from_the_rooms_below_it() -> None:
    assert upward_imports(REPO / "sitegen", code_map()) == []


def test_an_import_of_a_room_above_is_found(tmp_path: Path) -> None:
    package = tmp_path / "sitegen"
    for room in ("web", "store", "config", "filters"):
        (package / room).mkdir(parents=True)
    (package / "web/render.py").write_text("from sitegen.store.site import Site\n")
    (package / "store/site.py").write_text("from sitegen import web\nimport sitegen.config\n")
    (package / "config/load.py").write_text("from sitegen.filters.registry import KINDS\n")
    (package / "filters/names.py").write_text("from sitegen.web.format import size\n")
    rooms = ("sitegen/web/", "sitegen/store/", "sitegen/filters/", "sitegen/config/")
    rows = {room: f" row {number} |" for number, room in enumerate(rooms)}
    assert upward_imports(package, rows) == [
        "sitegen/filters/names.py -> web",
        "sitegen/store/site.py -> web",
    ]


def test_a_module_left_out_of_its_room_is_found(tmp_path: Path) -> None:
    package = tmp_path / "sitegen"
    (package / "web").mkdir(parents=True)
    for name in ("cli.py", "resources.py", "web/__init__.py", "web/render.py", "web/landing.py"):
        (package / name).write_text("")
    rows = {"sitegen/cli.py": " the parser |", "sitegen/web/": " `render` (`landing_page`) |"}
    assert unnamed_modules(package, rows) == ["sitegen/resources.py", "sitegen/web/landing.py"]
