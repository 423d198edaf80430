"""The copy of upstream's repodata kept under ``.sitegen/upstream/`` for conditional requests:
one damaged on disk (cut short, a bit flipped, replaced) is not trusted again. A copy whose
bytes are not the ones kept is fetched whole instead of asked for conditionally; one that was
kept without its sha256 (by an earlier sitegen) and does not parse after a 304 is forgotten
and fetched whole once, in the same run. A body upstream serves that does not parse still
fails its mirror alone, with one request, never a loop.

Every scenario runs real mirror runs against a 127.0.0.1 upstream that honours
``If-None-Match`` (:class:`testkit.upstream.UpstreamServer`)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard

from sitegen.config import SiteConfig, parse_config
from sitegen.layout import upstream_cache_dir
from sitegen.sync.report import COMPLETED, FAILED
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, write_channel
from testkit.invariant import assert_site_invariant, make_sandbox, site_digest
from testkit.site import mirror_unchecked
from testkit.small_channel import filenames, small_packages
from testkit.upstream import UpstreamHandler, UpstreamServer

pytestmark = pytest.mark.integration

LINUX = "linux-64"
ZST = "repodata.json.zst"
# Two channels on one upstream: a fault in one mirror must leave the other alone.
CHANNELS = {"cloud/example": "one", "cloud/other": "two"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[UpstreamServer]:
    for folder in CHANNELS.values():
        write_channel(tmp_path / "upstream" / folder, small_packages(), zst=True)
    with UpstreamServer(tmp_path / "upstream") as started:
        yield started


def config(site: Path, url: str) -> SiteConfig:
    lines = [
        f"output: {site}",
        "download: {concurrency: 4, per_host: 4, retries: 1, timeout: 2}",
        "channels:",
    ]
    for channel, folder in CHANNELS.items():
        lines.append(f"  {channel}: {{url: '{url}/{folder}', subdirs: [{LINUX}]}}")
    return parse_config("\n".join(lines) + "\n")


def kept(site: Path, mirror: str = "cloud-example") -> Path:
    return upstream_cache_dir(site, mirror, LINUX)


def listed(site: Path, channel: str = "cloud/example") -> set[str]:
    document = json.loads((site / channel / LINUX / "repodata.json").read_bytes())
    return set(document["packages"]) | set(document["packages.conda"])


def on_disk(site: Path, channel: str = "cloud/example") -> set[str]:
    names = (p.name for p in (site / channel / LINUX).iterdir())
    return {n for n in names if n.endswith((".conda", ".tar.bz2"))}


def assert_mirrored(site: Path, specs: list[PackageSpec]) -> None:
    for channel in CHANNELS:
        assert listed(site, channel) == on_disk(site, channel) == filenames(specs, LINUX)
    assert_site_invariant(site)


def as_earlier_sitegen_kept_it(site: Path) -> None:
    """validators.json without the sha256 of the body it describes."""
    path = kept(site) / "validators.json"
    document = json.loads(path.read_bytes())
    del document["sha256"]
    path.write_text(json.dumps(document))


def _flip_a_bit(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "cut short": lambda body: body[: len(body) // 2],
    "a bit flipped": _flip_a_bit,
    "not JSON": lambda _body: zstandard.ZstdCompressor().compress(b"<html>502</html>"),
    "not zstd": lambda _body: b"\x00" * 64,
}


def repodata_requests(server: UpstreamServer) -> list[tuple[int, str | None]]:
    """(status, If-None-Match) of each request for cloud/example's linux-64 repodata."""
    path = f"/one/{LINUX}/{ZST}"
    return [(r.status, r.header("if-none-match")) for r in server.requests if r.path == path]


# Without a sha256 kept, only damage the parse sees is told (a flipped bit may still parse).
CASES = [(d, True) for d in DAMAGE] + [(d, False) for d in DAMAGE if d != "a bit flipped"]


@pytest.mark.parametrize(
    ("damage", "recorded"),
    CASES,
    ids=[f"{d}, {'sha256 kept' if r else 'kept by earlier sitegen'}" for d, r in CASES],
)
async def test_a_damaged_copy_is_fetched_whole_again_in_the_same_run(
    server: UpstreamServer, tmp_path: Path, damage: str, recorded: bool
) -> None:
    site = make_sandbox(tmp_path)
    cfg = config(site, server.url)
    assert (await mirror_unchecked(cfg)).status == COMPLETED
    good = (kept(site) / ZST).read_bytes()
    assert good == (tmp_path / "upstream" / "one" / LINUX / ZST).read_bytes()
    assert json.loads((kept(site) / "validators.json").read_bytes())["sha256"]
    published = site_digest(site)
    if not recorded:
        as_earlier_sitegen_kept_it(site)
    (kept(site) / ZST).write_bytes(DAMAGE[damage](good))
    server.reset()

    report = await mirror_unchecked(cfg)
    assert report.status == COMPLETED and not report.failed, report
    etag = f'"{hashlib.sha256(good).hexdigest()}"'  # the test upstream's
    # A copy whose sha256 is not the one kept is not asked about; one that cannot be told
    # is, and once its 304 is answered and it does not parse, it is fetched whole.
    expected = [(200, None)] if recorded else [(304, etag), (200, None)]
    assert repodata_requests(server) == expected
    assert (kept(site) / ZST).read_bytes() == good  # sound again, its sha256 kept with it
    assert json.loads((kept(site) / "validators.json").read_bytes())["sha256"]
    assert_mirrored(site, small_packages())
    assert site_digest(site) == published

    server.reset()
    assert (await mirror_unchecked(cfg)).status == COMPLETED
    assert repodata_requests(server) == [(304, etag)]


def _bad_unless_conditional(handler: UpstreamHandler) -> bool | None:
    """304 for a conditional request that the file matches; a body that is not JSON for any
    other: an upstream whose body broke, though its validators did not change."""
    if handler.headers.get("If-None-Match"):
        return False  # served as the file is: 304
    handler.respond(200, zstandard.ZstdCompressor().compress(b"<html>"), {})
    return None


@pytest.mark.parametrize("recorded", [True, False], ids=["sha256 kept", "kept by earlier sitegen"])
async def test_a_bad_body_fetched_in_place_of_a_damaged_copy_fails_its_mirror_once(
    server: UpstreamServer, tmp_path: Path, recorded: bool
) -> None:
    site = make_sandbox(tmp_path)
    cfg = config(site, server.url)
    assert (await mirror_unchecked(cfg)).status == COMPLETED
    published = {c: site_digest(site / c) for c in CHANNELS}
    good = (kept(site) / ZST).read_bytes()
    if not recorded:
        as_earlier_sitegen_kept_it(site)
    (kept(site) / ZST).write_bytes(good[: len(good) // 2])
    server.add_fault(f"/one/{LINUX}/{ZST}", _bad_unless_conditional)
    server.reset()

    report = await mirror_unchecked(cfg)
    statuses = {m.name: m.status for m in report.mirrors}
    assert statuses == {"cloud-example": FAILED, "cloud-other": COMPLETED}, report
    (error,) = next(m for m in report.mirrors if m.name == "cloud-example").errors
    assert "not valid JSON" in error, error
    # Asked once more, whole, and no more: the body upstream serves is what failed.
    statuses_seen = [status for status, _tag in repodata_requests(server)]
    assert statuses_seen == ([200] if recorded else [304, 200])
    assert repodata_requests(server)[-1][1] is None
    assert {c: site_digest(site / c) for c in CHANNELS} == published
    assert_site_invariant(site)

    # The damaged copy is trusted no more: the next run asks for the body whole, once.
    server.reset()
    report = await mirror_unchecked(cfg)
    assert [m.status for m in report.mirrors] == [FAILED, COMPLETED]
    assert repodata_requests(server) == [(200, None)]

    # Upstream mended: the next run publishes and keeps a sound copy.
    server.clear_faults()
    server.reset()
    assert (await mirror_unchecked(cfg)).status == COMPLETED
    assert repodata_requests(server) == [(200, None)]
    assert (kept(site) / ZST).read_bytes() == good
    assert_mirrored(site, small_packages())


async def test_a_copy_changed_on_disk_that_still_parses_is_not_published(
    server: UpstreamServer, tmp_path: Path
) -> None:
    """Plain repodata.json kept (upstream serves no .zst), one sha256 in it changed on disk:
    still valid JSON, but not what upstream served. It is fetched whole, not published."""
    for folder in CHANNELS.values():
        (tmp_path / "upstream" / folder / LINUX / ZST).unlink()
    site = make_sandbox(tmp_path)
    cfg = config(site, server.url)
    assert (await mirror_unchecked(cfg)).status == COMPLETED
    copy = kept(site) / "repodata.json"
    good = copy.read_bytes()
    document = json.loads(good)
    fn, record = sorted(document["packages.conda"].items())[0]
    wrong = record["sha256"][:-1] + ("0" if record["sha256"][-1] != "0" else "1")
    copy.write_bytes(good.replace(record["sha256"].encode(), wrong.encode()))
    server.reset()

    report = await mirror_unchecked(cfg)
    assert report.status == COMPLETED and not report.failed, report
    path = f"/one/{LINUX}/repodata.json"
    assert [(r.status, r.header("if-none-match")) for r in server.requests if r.path == path] == [
        (200, None)
    ]
    assert copy.read_bytes() == good
    published = json.loads((site / "cloud/example" / LINUX / "repodata.json").read_bytes())
    assert published["packages.conda"][fn]["sha256"] == record["sha256"]
    assert_mirrored(site, small_packages())


@pytest.mark.parametrize("recorded", [True, False], ids=["sha256 kept", "kept by earlier sitegen"])
async def test_a_damaged_copy_of_a_mirror_not_run_is_not_used(
    server: UpstreamServer, tmp_path: Path, recorded: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A mirror the run does not fetch (another's ``--only``) stands on its copy: a damaged
    one holds the channel, says so, and upstream is not asked for it."""
    site = make_sandbox(tmp_path)
    url = f"{server.url}/one"
    mirrors = "".join(
        f"      - {{name: {name}, url: '{url}', subdirs: [{LINUX}]}}\n"
        for name in ("first", "second")
    )
    cfg = parse_config(f"output: {site}\nchannels:\n  m/c:\n    mirrors:\n{mirrors}")
    assert (await mirror_unchecked(cfg)).status == COMPLETED
    copy = kept(site, "second")
    if recorded:
        (copy / ZST).write_bytes(b"\x00" * 64)
    else:
        path = copy / "validators.json"
        document = json.loads(path.read_bytes())
        del document["sha256"]
        path.write_text(json.dumps(document))
        (copy / ZST).write_bytes(b"\x00" * 64)
    published = site_digest(site / "m/c")
    server.reset()

    with caplog.at_level(logging.ERROR, logger="sitegen"):
        report = await run_mirror(cfg, MirrorOptions(progress=False, only=("first",)))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    (held,) = [c for c in report.channels if c.subdir == LINUX]
    assert held.status == "failed", held
    assert site_digest(site / "m/c") == published
    assert not [r for r in server.requests if r.path.startswith(f"/one/{LINUX}/repodata")][1:]
    if recorded:
        assert errors == [f"second: {LINUX}: the copy kept is lost or damaged; run mirror second"]
    else:  # damage only its parse tells: the copy is forgotten
        (error,) = errors
        assert error.startswith(f"second: {LINUX}: ") and "not valid zstd data" in error
        assert not (copy / "validators.json").exists()
    # The mirror's own run fetches it whole, and the channel is whole again.
    server.reset()
    assert (await mirror_unchecked(cfg)).status == COMPLETED
    second = [(r.status, r.header("if-none-match")) for r in server.requests]
    assert (200, None) in second
    assert site_digest(site / "m/c") == published
    assert_site_invariant(site)


async def test_a_copy_kept_without_its_sha256_gets_it_once_it_parses(
    server: UpstreamServer, tmp_path: Path
) -> None:
    """A sound copy an earlier sitegen kept without its sha256, found current by upstream,
    parses: its sha256 is recorded then, so damage a parse does not see (a bit flipped) is
    told when it is read back, before upstream is asked whether it is current."""
    site = make_sandbox(tmp_path)
    cfg = config(site, server.url)
    assert (await mirror_unchecked(cfg)).status == COMPLETED
    good = (kept(site) / ZST).read_bytes()
    as_earlier_sitegen_kept_it(site)
    server.reset()

    assert (await mirror_unchecked(cfg)).status == COMPLETED
    etag = f'"{hashlib.sha256(good).hexdigest()}"'  # the test upstream's
    assert repodata_requests(server) == [(304, etag)]
    validators = json.loads((kept(site) / "validators.json").read_bytes())
    assert validators["sha256"] == hashlib.sha256(good).hexdigest()
    assert validators["variant"] == ZST and validators["etag"] == etag

    (kept(site) / ZST).write_bytes(_flip_a_bit(good))
    server.reset()
    assert (await mirror_unchecked(cfg)).status == COMPLETED
    assert repodata_requests(server) == [(200, None)]
    assert (kept(site) / ZST).read_bytes() == good
    assert_mirrored(site, small_packages())
