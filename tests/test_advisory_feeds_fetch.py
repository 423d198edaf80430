"""Advisory feeds in real runs: fetched each run (304 if unchanged), last good copy, fail closed."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from sitegen.config import SiteConfig, make_scrub
from sitegen.filters.feeds import encode_copy, kept_copy
from sitegen.filters.osv_archive import read_archive
from sitegen.layout import FEED_VALIDATORS, advisory_feed_dir, run_page_path
from sitegen.sync.notify import run_summary
from sitegen.web.render import render_site
from testkit.advisories import FEED_PATH, NEW_ZLIB, OLD_ZLIB, write_feed, write_zip, zlib_advisory
from testkit.site import (
    CHANNEL,
    channel_config,
    mirror_unchecked,
    published,
    rewrite_repodata,
    site_config,
)
from testkit.upstream import ExampleUpstream, UpstreamServer, respond, serve_bytes

pytestmark = pytest.mark.integration


def feed_config(site: Path, upstream: str, feed: str) -> SiteConfig:
    setting = f"filters: {{advisories: {{feeds: ['{feed}'], min_score: 7}}}}"
    return channel_config(site, upstream, extra=setting)


def bad_archives() -> dict[str, bytes]:
    """Archives no run may use, by what is wrong with them."""
    good = write_zip({"TEST-ZLIB-1.json": json.dumps(zlib_advisory()).encode()})
    return {
        "a bomb": write_zip({"TEST-ZLIB-1.json": b"[" + bytes(17 << 20)}),
        "a name climbing out": write_zip({"../../cron.d/TEST.json": json.dumps(zlib_advisory())}),
        "cut short": good[: len(good) // 2],
        "an error page": b"<html>503 Service Unavailable</html>",
        "no advisories": write_zip({"README.md": b"moved to a new address"}),
        # The id is what the run's log names a blocked record's reason by.
        "an id forging log lines": write_zip(
            {"TEST-ZLIB-1.json": json.dumps({**zlib_advisory(), "id": "X\nERROR forged\x1b[2J"})}
        ),
    }


async def test_a_feed_blocks_refreshes_itself_and_costs_a_304_when_unchanged(
    example_upstream: ExampleUpstream,
    upstream_server_factory: Callable[..., UpstreamServer],
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    feeds = tmp_path / "feeds"
    archive = write_feed(feeds / "conda" / "all.zip", [zlib_advisory()], {"README.md": b"OSV"})
    server = upstream_server_factory(feeds)
    url = f"{server.url}{FEED_PATH}"
    config = feed_config(site, example_upstream.url, url)

    # A dry run fetches and applies the feed, and keeps nothing.
    dry = await mirror_unchecked(config, dry_run=True)
    assert not dry.failed and dry.mirrors[0].subdirs["linux-64"].excluded == {
        "advisory TEST-ZLIB-1": 2
    }
    assert not site.exists()
    server.reset()

    report = await mirror_unchecked(config)
    assert not report.failed, report.errors
    (mirror,) = report.mirrors
    assert mirror.subdirs["linux-64"].excluded == {"advisory TEST-ZLIB-1": 2}
    assert mirror.warnings == [] and {b.file for b in mirror.advisories_blocked} == OLD_ZLIB
    assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB
    assert published(site, CHANNEL, "linux-64") >= NEW_ZLIB
    (first,) = server.requests
    assert first.status == 200 and first.body_bytes == len(archive)
    assert first.header("if-none-match") is None
    kept = advisory_feed_dir(site, url)
    assert json.loads((kept / FEED_VALIDATORS).read_bytes())["etag"]
    # The copy kept is the advisories as read, for the runs that find the feed unchanged; the
    # archive itself is not kept.
    copy = kept_copy(site, url)
    assert sorted(p.name for p in kept.iterdir()) == [copy.name, FEED_VALIDATORS]
    assert copy.read_bytes() == encode_copy(read_archive(feeds / "conda" / "all.zip"))

    # Unchanged: one conditional request, answered 304, and nothing downloaded.
    server.reset()
    report = await mirror_unchecked(config)
    assert not report.failed and report.mirrors[0].warnings == []
    (again,) = server.requests
    assert again.status == 304 and again.body_bytes == 0
    assert again.header("if-none-match") == f'"{hashlib.sha256(archive).hexdigest()}"'
    assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB

    # The package pages list the feed's advisories, from the copy the run kept.
    render_site(config)
    page = (site / CHANNEL / "packages" / "zlib.html").read_text()
    notes = page.split('id="advisories"', 1)[1].split("</section>", 1)[0]
    assert "TEST-ZLIB-1" in notes and "1.2.13" in notes and "blocked" in notes

    # The feed changes upstream: 1.3.1 is affected too, and the next run selects again.
    write_feed(feeds / "conda" / "all.zip", [zlib_advisory(fixed="1.3.2")])
    report = await mirror_unchecked(config)
    assert not report.failed
    assert not published(site, CHANNEL, "linux-64") & (OLD_ZLIB | NEW_ZLIB)
    assert {b.file for b in report.mirrors[0].advisories_blocked} == OLD_ZLIB | NEW_ZLIB
    assert server.requests[-1].status == 200
    # The new copy's advisories replaced the old copy's.
    assert sorted(p.name for p in kept.iterdir()) == [copy.name, FEED_VALIDATORS]
    assert copy.read_bytes() == encode_copy(read_archive(feeds / "conda" / "all.zip"))

    # No filter names the feed any more: its copy goes (a dry run keeps it).
    unfiltered = channel_config(site, example_upstream.url)
    assert not (await mirror_unchecked(unfiltered, dry_run=True)).failed and kept.is_dir()
    assert not (await mirror_unchecked(unfiltered)).failed
    assert not kept.exists() and kept.parent.is_dir()


async def test_a_feed_down_or_serving_a_bad_archive_leaves_its_last_good_copy_in_force(
    example_upstream: ExampleUpstream,
    upstream_server_factory: Callable[..., UpstreamServer],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = tmp_path / "site"
    feeds = tmp_path / "feeds"
    write_feed(feeds / "conda" / "all.zip", [zlib_advisory()])
    server = upstream_server_factory(feeds)
    url = f"{server.url}{FEED_PATH}"
    config = feed_config(site, example_upstream.url, url)
    assert not (await mirror_unchecked(config)).failed
    kept = kept_copy(site, url)
    good = kept.read_bytes()

    server.add_fault(FEED_PATH, respond(503))
    with caplog.at_level(logging.WARNING, logger="sitegen"):
        report = await mirror_unchecked(config)
    assert not report.failed, report.errors  # a warning, not a failure
    (warning,) = report.mirrors[0].warnings
    assert warning.startswith(f"advisory feed {url} could not be refreshed: HTTP 503")
    assert "last good copy" in warning
    assert any(r.getMessage() == warning for r in caplog.records)
    assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB
    assert report.mirrors[0].subdirs["linux-64"].excluded == {"advisory TEST-ZLIB-1": 2}
    # The run page and the notification hooks' summary carry it too.
    summary = run_summary(report, config, 0, make_scrub(config))
    assert summary["mirrors"][0]["warnings"] == [warning]
    render_site(config)
    page = (site / run_page_path(report.id)).read_text()
    assert '<ul class="warnings"><li>advisory feed' in page and "last good copy" in page

    for what, body in bad_archives().items():
        server.clear_faults()
        server.add_fault(FEED_PATH, serve_bytes(body, "application/zip"))
        report = await mirror_unchecked(config)
        assert not report.failed, (what, report.errors)
        (warning,) = report.mirrors[0].warnings
        assert "the archive it served cannot be used" in warning, (what, warning)
        assert warning.isprintable(), (what, warning)
        assert kept.read_bytes() == good, what  # the good copy stays
        assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB, what
    # The good copy and its validators: no scratch file left.
    left = sorted(p.name for p in kept.parent.iterdir())
    assert left == [kept.name, FEED_VALIDATORS]
    assert not list(tmp_path.rglob("cron.d"))  # nothing extracted anywhere

    # Back up: the next run is fresh again, without a warning.
    server.clear_faults()
    report = await mirror_unchecked(config)
    assert not report.failed and report.mirrors[0].warnings == []

    # A kept copy damaged on disk (cut short by a power cut) is not trusted after a 304: the
    # feed is fetched whole again.
    kept.write_bytes(good[:100])
    server.reset()
    report = await mirror_unchecked(config)
    assert not report.failed and report.mirrors[0].warnings == []
    assert [r.status for r in server.requests] == [304, 200]
    assert server.requests[1].header("if-none-match") is None
    assert kept.read_bytes() == good


@pytest.mark.parametrize("fault", ["down", "a bomb", "a name climbing out"])
async def test_a_feed_never_had_fails_closed_for_its_mirrors_only(
    example_upstream: ExampleUpstream,
    upstream_server_factory: Callable[..., UpstreamServer],
    tmp_path: Path,
    fault: str,
) -> None:
    site = tmp_path / "site"
    feeds = tmp_path / "feeds"
    write_feed(feeds / "conda" / "all.zip", [zlib_advisory()])
    server = upstream_server_factory(feeds)
    url = f"{server.url}{FEED_PATH}"
    hook = respond(503) if fault == "down" else serve_bytes(bad_archives()[fault])
    server.add_fault(FEED_PATH, hook)

    def config(guarded: str) -> SiteConfig:
        return site_config(
            site,
            f"""
            channels:
              cloud/guarded:
                url: {example_upstream.url}
                subdirs: [linux-64]
                {guarded}
              cloud/other:
                url: {example_upstream.url}
                subdirs: [linux-64]
            """,
        )

    assert not (
        await mirror_unchecked(config(""))
    ).failed  # published before the feed was configured
    before = (site / "cloud/guarded/linux-64/repodata.json").read_bytes()
    assert published(site, "cloud/guarded", "linux-64") >= OLD_ZLIB

    def drop_old_zlib(document: dict) -> None:  # upstream moves on
        for key in ("packages", "packages.conda"):
            document[key] = {
                fn: r for fn, r in document[key].items() if not fn.startswith("zlib-1.2.13")
            }

    rewrite_repodata(example_upstream.root, "linux-64", drop_old_zlib)
    setting = f"filters: {{advisories: {{feeds: ['{url}']}}}}"
    report = await mirror_unchecked(config(setting))

    assert report.failed
    mirrors = {m.name: m for m in report.mirrors}
    (error,) = mirrors["cloud-guarded"].errors
    assert error.startswith(f"advisory feed {url}: ") and "no good copy of it yet" in error
    assert mirrors["cloud-guarded"].subdirs == {}  # not run: its upstream was not even read
    assert mirrors["cloud-other"].errors == []
    subdirs = {(c.channel, c.subdir): c for c in report.channels}
    assert subdirs[("cloud/guarded", "linux-64")].status == "failed"
    assert subdirs[("cloud/other", "linux-64")].status == "published"
    # The previous publication stays, with what the feed would have had to decide on.
    assert (site / "cloud/guarded/linux-64/repodata.json").read_bytes() == before
    assert not published(site, "cloud/other", "linux-64") & OLD_ZLIB
    assert not kept_copy(site, url).exists()

    server.clear_faults()  # the feed comes up: the mirror runs, and the feed blocks
    report = await mirror_unchecked(config(setting))
    assert not report.failed, report.errors
    assert published(site, "cloud/guarded", "linux-64") >= NEW_ZLIB
    assert not published(site, "cloud/guarded", "linux-64") & OLD_ZLIB


async def test_an_advisory_withdrawn_at_a_leap_second_is_read_beside_the_others(
    example_upstream: ExampleUpstream,
    upstream_server_factory: Callable[..., UpstreamServer],
    tmp_path: Path,
) -> None:
    """RFC 3339 allows a leap second (``23:59:60``): the advisory withdrawn then reads as
    withdrawn, and the feed's other advisories block, on the first run as on any."""
    site = tmp_path / "site"
    feeds = tmp_path / "feeds"
    withdrawn = {**zlib_advisory(fixed="1.3.2"), "id": "TEST-ZLIB-2"}
    withdrawn["withdrawn"] = "2016-12-31T23:59:60Z"
    write_feed(feeds / "conda" / "all.zip", [zlib_advisory(), withdrawn])
    server = upstream_server_factory(feeds)
    config = feed_config(site, example_upstream.url, f"{server.url}{FEED_PATH}")

    report = await mirror_unchecked(config)

    assert not report.failed, report.errors
    assert report.mirrors[0].warnings == []
    assert report.mirrors[0].subdirs["linux-64"].excluded == {"advisory TEST-ZLIB-1": 2}
    assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB
    assert published(site, CHANNEL, "linux-64") >= NEW_ZLIB  # what only the withdrawn one names
