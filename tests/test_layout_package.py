"""``sitegen.layout`` offers every path of its modules: the rest of sitegen imports from it
alone, whichever module of the package lays a path out."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil

import pytest

import sitegen.layout

pytestmark = pytest.mark.unit


def own_names(source: str) -> list[str]:
    """The public names a module defines itself (not those it imports)."""
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [target.id for target in node.targets if isinstance(target, ast.Name)]
    return [name for name in names if not name.startswith("_")]


def test_every_name_of_the_layout_modules_is_offered_by_the_package() -> None:
    modules = [
        importlib.import_module(f"sitegen.layout.{info.name}")
        for info in pkgutil.iter_modules(sitegen.layout.__path__)
    ]
    assert sorted(module.__name__ for module in modules) == [
        "sitegen.layout.access",
        "sitegen.layout.published",
        "sitegen.layout.state",
    ]
    for module in modules:
        names = own_names(inspect.getsource(module))
        assert names
        for name in names:
            assert name in sitegen.layout.__all__, f"{module.__name__}.{name}"
            assert getattr(sitegen.layout, name) is getattr(module, name)
