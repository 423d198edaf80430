"""The jinja2 environment the pages are rendered with, and the digest of the templates (part of
every page's input key)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from sitegen.resources import templates_dir
from sitegen.web.format import FILTERS, relative_href, shown_text
from sitegen.web.forms import BuildRow, Forms, ListingRow, VersionRow
from sitegen.web.manifest import digest

TEMPLATES_DIR = templates_dir()
# Distinct requirements (a build's dependencies and constraints) kept rendered per environment.
REQUIREMENTS_KEPT = 1 << 12


ASSETS = "assets"


def page_templates(directory: Path) -> list[Path]:
    """The files pages are made of: the templates at the top and assets/ (other tools keep
    their own templates in subdirectories, e.g. webconf/)."""
    files = [p for p in directory.iterdir() if p.is_file()]
    assets = directory / ASSETS
    if assets.is_dir():
        files += [p for p in assets.rglob("*") if p.is_file()]
    return sorted(files)


def page_template_dirs(directory: Path) -> list[Path]:
    """The folders :func:`page_templates` reads: ``directory`` and assets/ with its own."""
    assets = directory / ASSETS
    found = [assets, *(p for p in assets.rglob("*") if p.is_dir())] if assets.is_dir() else []
    return [directory, *sorted(found)]


def is_page_template(directory: Path, path: Path) -> bool:
    """Whether ``path``, there or gone, is or holds one of :func:`page_templates`: a file at
    the top or anything under assets/, not another tool's folder nor what it holds."""
    if path == directory or directory not in path.parents:
        return False
    top = path.relative_to(directory).parts[0]
    if top == ASSETS:
        return True
    return path.parent == directory and not path.is_dir()


def templates_digest(directory: Path) -> str:
    files = page_templates(directory)
    return digest(*[(str(p.relative_to(directory)), p.read_bytes().hex()) for p in files])


@jinja2.pass_context
def _href(context: Any, target: str) -> str:
    return relative_href(target, context["page"])


class TemplateMacros:
    """The macros of a template, called as its attributes; its module (made without context,
    from the environment's globals) is made once, when a macro is first asked for."""

    def __init__(self, env: jinja2.Environment, name: str) -> None:
        self.env = env
        self.name = name

    @functools.cached_property
    def module(self) -> Any:
        return self.env.get_template(self.name).module

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)


def _requirements_filter(macros: TemplateMacros) -> Callable[[Any], markupsafe.Markup]:
    """The ``requirements`` filter of the environment whose macros.html is ``macros``: a
    build's dependencies and constraints (its ``requirements`` in a package page's model) as
    that macro renders them, once per distinct value: the builds of a package repeat them (as
    do many packages), and they are most of the values a package page prints."""

    @functools.lru_cache(maxsize=REQUIREMENTS_KEPT)
    def requirements(value: Any) -> markupsafe.Markup:
        depends, constrains = value
        return macros.requirements(depends, constrains)

    return requirements


def build_environment(templates_dir: Path) -> jinja2.Environment:
    """A new jinja2 environment: autoescape always on, strict about undefined names, bidi
    controls in printed values made visible (see shown_text)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        finalize=shown_text,  # upstream text cannot reorder the page around it
    )
    env.globals["href"] = _href  # href('index.html'): a link from the page being rendered
    # The same in what every page prints (base.html) and in the loops of the large pages,
    # ``{{ path|href(page) }}``: a filter is called directly (a global through Context.call),
    # and this one is the cached function itself.
    env.filters["href"] = relative_href
    env.filters.update(FILTERS)
    # Macros the package pages call, made once (see package.html).
    macros = env.globals["macros"] = TemplateMacros(env, "macros.html")
    env.globals["gates"] = TemplateMacros(env, "_gates.html")
    requirements = env.filters["requirements"] = _requirements_filter(macros)
    builds = Forms(env, "_build.html", "b", BuildRow, requirements)
    env.filters["version_rows"] = Forms(env, "_version.html", "v", VersionRow, builds)
    env.filters["listing_rows"] = Forms(env, "_listing_row.html", "f", ListingRow)
    return env


@functools.lru_cache(maxsize=4)
def make_environment(
    templates_dir: Path = TEMPLATES_DIR, templates_digest: str = ""
) -> jinja2.Environment:
    """:func:`build_environment`, cached per templates directory and content digest, so the
    templates of a long-lived process (``sitegen serve --watch``, the tests) compile once per
    version."""
    return build_environment(templates_dir)
