"""A render told to stop (``render_site(stop=...)``, as ``sitegen watch`` does on a signal)
gives up while it waits for another render of the site, or at its next page, leaving what a
killed render would: the next render completes the same pages as one never stopped."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from sitegen import layout
from sitegen.store.lock import Stopped, taking_turns
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.web import package_pages
from sitegen.web.render import render_site
from testkit.site import site_config
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration

CHANNEL = "cloud/example"


class StopAfter(threading.Event):
    """Set from the ``checks``-th time it is asked on: a render stopped after that many of its
    pages (or looks at them)."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.left = checks

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0 or super().is_set()


def channels(upstream: ExampleUpstream, subdirs: str) -> str:
    return f"channels:\n  {CHANNEL}:\n    url: {upstream.url}\n    subdirs: {subdirs}\n"


def site_pages(site: Path) -> dict[str, bytes]:
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for p in site.rglob("*")
        if p.is_file() and ".sitegen" not in p.parts
    }


@pytest.mark.parametrize("processes", [False, True])
async def test_a_stopped_render_is_completed_by_the_next(
    tmp_path: Path,
    example_upstream: ExampleUpstream,
    monkeypatch: pytest.MonkeyPatch,
    processes: bool,
) -> None:
    if processes:  # package pages from worker processes: stopped between their parts
        monkeypatch.setattr(package_pages, "PROCESSES_FROM", 1)
        monkeypatch.setattr(package_pages, "PART_PAGES", 2)
        monkeypatch.setattr(os, "cpu_count", lambda: 2)
    site = tmp_path / "site"
    config = site_config(site, channels(example_upstream, "[linux-64, noarch]"))
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert report.status == "completed", report.errors
    never_stopped = tmp_path / "never-stopped"
    shutil.copytree(site, never_stopped, symlinks=True)
    render_site(replace(config, output=never_stopped))
    expected = site_pages(never_stopped)

    manifest = layout.render_manifest_path(site)
    for checks in (0, 3, 10, 25, 40):
        with pytest.raises(Stopped):
            render_site(config, stop=StopAfter(checks))
        assert not manifest.exists()  # written last, by a render that finished
    stats = render_site(config, stop=threading.Event())
    assert stats.rendered  # what the stopped renders did not finish
    assert site_pages(site) == expected
    assert not list(site.rglob(".sitegen-tmp-*"))
    assert render_site(config).rendered == []


async def test_a_render_waiting_for_another_gives_up_when_told(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    config = site_config(site, channels(example_upstream, "[noarch]"))
    await run_mirror(config, MirrorOptions(progress=False))
    lock = layout.render_dir(site) / layout.LOCK_NAME
    lock.parent.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    outcome: list[BaseException | None] = []

    def render() -> None:
        try:
            render_site(config, stop=stop)
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    with taking_turns(lock):  # another render of the site, under way until the test stops it
        thread = threading.Thread(target=render, daemon=True)
        thread.start()
        thread.join(0.5)  # waiting, whether or not it got that far yet
        assert not outcome
        stop.set()
        thread.join(30)
        assert not thread.is_alive()  # gave up while the other render still held the lock
    assert len(outcome) == 1 and isinstance(outcome[0], Stopped)
    assert not (site / "index.html").exists()
    assert render_site(config).rendered
