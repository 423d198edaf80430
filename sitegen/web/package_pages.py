"""The package pages of a channel: each rendered (with the facts of its package, when they
changed) in the render's process, or split between worker processes when there are many:
each part of them sent as its tasks without their records' objects, the records of each
package in one piece (:class:`PackageRecords`)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import jinja2

from sitegen.store.site import Site
from sitegen.web.downloads import PackageDownloads
from sitegen.web.environment import build_environment
from sitegen.web.facts import package_facts
from sitegen.web.gates import advisory_notes, versions_of
from sitegen.web.manifest import KnownPackage, package_key
from sitegen.web.package import package_model
from sitegen.web.pool import NoWorkers, parts_in_processes
from sitegen.web.published import (
    PackageRecords,
    PublishedFile,
    package_records,
    parse_records,
)
from sitegen.web.writer import PageFiles, render_page

log = logging.getLogger("sitegen")

# Package pages are rendered by worker processes (one per CPU, at most PAGE_PROCESSES) when a
# channel has at least PROCESSES_FROM of them to render, in parts of PART_PAGES pages.
PAGE_PROCESSES = 4
PROCESSES_FROM = 2000
PART_PAGES = 250


class PackageTask(NamedTuple):
    """A package page to render. ``known`` None: its facts (and key) are computed first, and
    nothing is rendered if the key is ``old_key`` after all."""

    relpath: str
    name: str
    files: list[PublishedFile]  # none in a part sent to a worker: its records go beside it
    fingerprint: str
    entry: Any  # its channeldata.json entry
    known: KnownPackage | None
    old_key: str | None
    stored: list[str] | None = None  # its files stored (subdir/fn) in a passive channel
    downloads: PackageDownloads | None = None  # while the site has download statistics
    # The page leads out of the site (see PageWriter.leave_out): its facts only, no page.
    left_out: bool = False


class PackageResult(NamedTuple):
    """What rendering a package page gave: its key and facts when they were computed;
    ``written`` True (written) / False (unchanged) / None (up to date: not rendered)."""

    key: str | None
    written: bool | None
    known: KnownPackage | None


class PackageContext(NamedTuple):
    """What every package page of a channel is rendered with."""

    site: Site
    templates_dir: Path
    title: str
    global_key: str
    channel: str
    names: dict[str, str]  # the channel's package names, lower case -> their pages' (page_names)
    base_url: str | None = None  # of the site, for the install lines
    # The channel's advisory filter levels, and by name the versions blocked with the ids of
    # the advisories that blocked them (web/gates.py).
    advisories: tuple[tuple[Any, ...], dict[str, dict[str, list[str]]]] | None = None


class PackagePages:
    """Renders and writes package pages."""

    def __init__(self, context: PackageContext, env: jinja2.Environment) -> None:
        self.context = context
        self.env = env
        self.files = PageFiles(context.site)

    def run(self, task: PackageTask, package: PackageRecords) -> PackageResult:
        c = self.context
        records = None
        key = None
        known = task.known
        if known is None:
            records = parse_records(package)
            known = KnownPackage(task.fingerprint, package_facts(records))
            if task.left_out:
                return PackageResult(None, None, known)
            key = package_key(
                c.global_key,
                c.channel,
                task.name,
                known,
                task.entry,
                c.names,
                task.stored,
                task.downloads,
            )
            if key == task.old_key and self.files.exists(task.relpath):
                return PackageResult(key, None, known)
        model = package_model(
            c.channel,
            task.name,
            records or parse_records(package),
            task.entry,
            c.names,
            c.base_url,
            task.stored,
            task.downloads,
        )
        if c.advisories is not None:
            levels, blocked = c.advisories
            blocked_by = blocked.get(task.name, {})
            versions = versions_of(model, blocked_by)
            model["advisories"] = advisory_notes(levels, task.name, versions, blocked_by)
        data = render_page(self.env, c.title, "package.html", task.relpath, model=model)
        written = self.files.write(task.relpath, data)
        return PackageResult(key, written, known if task.known is None else None)


@contextlib.contextmanager
def package_pages(
    context: PackageContext, env: jinja2.Environment, tasks: list[PackageTask]
) -> Iterator[Callable[[], Iterator[PackageResult]]]:
    """Render the package pages of ``tasks``; yields a function giving their results in
    order. Many pages are split between worker processes, which render while the body of the
    with statement runs."""
    processes = min(PAGE_PROCESSES, os.cpu_count() or 1)
    if len(tasks) < PROCESSES_FROM or processes < 2:
        yield _here(context, env, tasks)
        return
    payloads = (
        _part(tasks[start : start + PART_PAGES]) for start in range(0, len(tasks), PART_PAGES)
    )
    with contextlib.ExitStack() as stack:
        try:
            results = stack.enter_context(parts_in_processes(_worker, context, payloads, processes))
        except NoWorkers as exc:  # all here, then
            log.warning("pages: rendering the package pages in one process: %s", exc)
            results = None
        if results is None:
            yield _here(context, env, tasks)
        else:
            yield lambda: (result for part in results() for result in part)


def _part(tasks: list[PackageTask]) -> list[tuple[PackageTask, PackageRecords]]:
    """What a worker is sent of ``tasks``."""
    return [(task._replace(files=[]), package_records(task.files)) for task in tasks]


def _worker(context: PackageContext) -> Callable[[list[tuple[PackageTask, PackageRecords]]], list]:
    """The work of a worker process: the pages of a part (see :func:`_part`), rendered with a
    jinja2 environment of its own, made once."""
    pages = PackagePages(context, build_environment(context.templates_dir))
    return lambda part: [pages.run(task, package) for task, package in part]


def _here(
    context: PackageContext, env: jinja2.Environment, tasks: list[PackageTask]
) -> Callable[[], Iterator[PackageResult]]:
    pages = PackagePages(context, env)
    return lambda: (pages.run(task, package_records(task.files)) for task in tasks)
