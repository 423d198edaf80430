"""Hostile upstream repodata beyond the fields of one record: bytes that are not UTF-8 outside
the records, huge numbers, other bytes under the same name and size, a ``base_url`` that is
local, not text or not a URL, names as long as a file name may be, a record claiming a
tebibyte. Each costs what it names at most; the rest of the channel is mirrored."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.conda.record_check import REASON_BAD_FIELDS, REASON_BAD_SIZE
from sitegen.sync.report import COMPLETED, RunReport
from sitegen.tools.example_channel import write_channel
from sitegen.web.render import render_site
from testkit.hostile import GOOD, LINUX, run_config, serialise
from testkit.invariant import assert_site_invariant, make_sandbox
from testkit.site import channel_config, mirror_unchecked
from testkit.small_channel import CHANNEL, filenames, set_repodata
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration


async def test_non_utf8_outside_records_does_not_break_the_subdir(
    tmp_path: Path,
) -> None:
    """Bytes that are not UTF-8 in ``info``, ``removed`` or an unknown top-level key: the
    subdir is still published with its good records, as valid UTF-8 JSON."""
    root = tmp_path / "upstream"
    documents = write_channel(root, GOOD, zst=True)
    document = copy.deepcopy(documents[LINUX])
    document["info"]["note"] = "caf@@FF@@"
    document["removed"] = ["gone-1.0-0.conda", "bad@@FF@@-1.0-0.conda"]
    document["x-unknown@@FF@@"] = {"k": "v"}
    document["x-other"] = "v@@FF@@"
    set_repodata(root, LINUX, serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        report = await mirror_unchecked(run_config(site, server.url))
    assert not report.failed, (report.errors, report.mirrors[0].errors)
    raw = (site / CHANNEL / LINUX / "repodata.json").read_bytes()
    published = json.loads(raw.decode("utf-8"))  # strict UTF-8
    assert set(published["packages.conda"]) | set(published["packages"]) == filenames(GOOD, LINUX)
    assert "gone-1.0-0.conda" in published["removed"]
    assert_site_invariant(site)


async def test_huge_numbers_do_not_break_the_subdir(tmp_path: Path) -> None:
    """JSON numbers out of any sane range inside one record cost that record only."""
    root = tmp_path / "upstream"
    documents = write_channel(root, GOOD, zst=True)
    document = copy.deepcopy(documents[LINUX])
    document["packages.conda"]["beta-2.0-h1_0.conda"]["timestamp"] = "@@INF@@"
    document["packages.conda"]["alpha-1.0-h0_0.conda"]["size"] = "@@INF@@"
    set_repodata(root, LINUX, serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        report = await mirror_unchecked(run_config(site, server.url))
    assert report.mirrors[0].subdirs[LINUX].rejected_examples == {
        "alpha-1.0-h0_0.conda": REASON_BAD_SIZE,
        "beta-2.0-h1_0.conda": REASON_BAD_FIELDS,  # an infinite timestamp
    }
    published = json.loads((site / CHANNEL / LINUX / "repodata.json").read_bytes())
    listed = set(published["packages.conda"]) | set(published["packages"])
    assert listed == filenames(GOOD, LINUX) - {"alpha-1.0-h0_0.conda", "beta-2.0-h1_0.conda"}
    assert_site_invariant(site)


async def test_an_integer_of_thousands_of_digits_costs_that_record_at_most(
    tmp_path: Path,
) -> None:
    """An integer of more digits than a decoder turns into a number (5,000) in one record, in
    ``info`` and beside the records: that record is refused, those entries are left out, and
    the rest of the subdir is published."""
    root = tmp_path / "upstream"
    documents = write_channel(root, GOOD, zst=True)
    document = copy.deepcopy(documents[LINUX])
    document["packages.conda"]["beta-2.0-h1_0.conda"]["build_number"] = "@@VAST@@"
    document["info"]["x_count"] = "@@VAST@@"
    document["x_total"] = "@@VAST@@"
    set_repodata(root, LINUX, serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        report = await mirror_unchecked(run_config(site, server.url))
    assert report.mirrors[0].subdirs[LINUX].rejected_examples == {
        "beta-2.0-h1_0.conda": REASON_BAD_FIELDS,
    }, report.mirrors[0].errors
    published = json.loads((site / CHANNEL / LINUX / "repodata.json").read_bytes())
    listed = set(published["packages.conda"]) | set(published["packages"])
    assert listed == filenames(GOOD, LINUX) - {"beta-2.0-h1_0.conda"}
    assert "x_count" not in published["info"] and "x_total" not in published
    assert_site_invariant(site)


async def test_upstream_changing_bytes_under_the_same_name_and_size(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Upstream replaces a published file with other bytes of the same size (a re-upload, or a
    hostile upstream) and lists the new sha256: the mirror must not keep the old bytes under a
    record that now promises the new ones."""
    root = tmp_path / "upstream"
    documents = write_channel(root, GOOD, zst=True)
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        config = run_config(site, server.url)
        assert not (await mirror_unchecked(config)).failed
        fn = "beta-2.0-h1_0.conda"
        path = root / LINUX / fn
        data = bytes(b ^ 0x55 for b in path.read_bytes())  # same size, other bytes
        path.write_bytes(data)
        document = copy.deepcopy(documents[LINUX])
        record = document["packages.conda"][fn]
        record["sha256"] = hashlib.sha256(data).hexdigest()
        record["md5"] = hashlib.md5(data).hexdigest()
        set_repodata(root, LINUX, serialise(document))
        with caplog.at_level(logging.INFO, logger="sitegen"):
            report = await mirror_unchecked(config)
    assert not report.failed
    assert (site / CHANNEL / LINUX / fn).read_bytes() == data
    assert_site_invariant(site)
    # An expected difference, said as such: no warning of a checksum failure.
    assert f"{fn} was replaced upstream" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and fn in r.message]


async def test_hostile_base_url_reads_nothing_local(tmp_path: Path) -> None:
    """``info.base_url`` (CEP-15) pointing at the local filesystem fetches nothing from it."""
    root = tmp_path / "upstream"
    documents = write_channel(root, GOOD, zst=True)
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    for fn in filenames(GOOD, LINUX):  # same names, so a file:// fetch would find them
        (secret_dir / fn).write_bytes((root / LINUX / fn).read_bytes())
    document = copy.deepcopy(documents[LINUX])
    document["info"]["base_url"] = secret_dir.as_uri() + "/"
    set_repodata(root, LINUX, serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        report = await mirror_unchecked(run_config(site, server.url))
    linux = next(c for c in report.channels if c.subdir == LINUX)
    assert report.failed and len(linux.errors) == len(filenames(GOOD, LINUX))
    published = json.loads((site / CHANNEL / LINUX / "repodata.json").read_bytes())
    assert published["packages"] == published["packages.conda"] == {}
    assert "base_url" not in published["info"]
    assert_site_invariant(site)


@pytest.mark.parametrize("timestamp", [1e20, 2**64 + 5], ids=["float", "int"])
async def test_finite_timestamp_beyond_64_bits_costs_that_record_at_most(
    tmp_path: Path, timestamp: float
) -> None:
    """A ``timestamp`` that is finite JSON but beyond any 64-bit integer (in milliseconds):
    the record is refused, the run returns a report and publishes the rest."""
    root = tmp_path / "upstream"
    documents = write_channel(root, GOOD, zst=True)
    document = copy.deepcopy(documents[LINUX])
    document["packages.conda"]["beta-2.0-h1_0.conda"]["timestamp"] = timestamp
    set_repodata(root, LINUX, serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        report = await mirror_unchecked(run_config(site, server.url))
    assert report.status == COMPLETED, (report.errors, report.mirrors[0].errors)
    published = json.loads((site / CHANNEL / LINUX / "repodata.json").read_bytes())
    listed = set(published["packages.conda"]) | set(published["packages"])
    assert listed >= filenames(GOOD, LINUX) - {"beta-2.0-h1_0.conda"}
    for section in ("packages", "packages.conda"):
        for record in published[section].values():
            assert record.get("indexed_timestamp", 0) < 1 << 64
    assert_site_invariant(site)


async def _mirror_with_base_url(tmp_path: Path, site: Path, base_url: Any) -> Any:
    """A run over the good channel whose linux-64 repodata names ``base_url`` (CEP-15)."""
    root = tmp_path / "upstream"
    documents = write_channel(root, GOOD, zst=True)
    document = copy.deepcopy(documents[LINUX])
    document["info"]["base_url"] = base_url
    set_repodata(root, LINUX, serialise(document))
    with UpstreamServer(root) as server:
        return await mirror_unchecked(run_config(site, server.url))


@pytest.mark.parametrize("base_url", [5, True, ["http://x/"], {"a": 1}], ids=repr)
async def test_base_url_that_is_not_text_does_not_crash_the_run(
    tmp_path: Path, base_url: Any
) -> None:
    """``info.base_url`` (CEP-15) of another type than a string names no place to fetch from:
    it is ignored, and the run completes."""
    site = make_sandbox(tmp_path)
    report = await _mirror_with_base_url(tmp_path, site, base_url)
    assert isinstance(report, RunReport) and report.status == COMPLETED, report.errors
    noarch = json.loads((site / CHANNEL / "noarch" / "repodata.json").read_bytes())
    assert set(noarch["packages.conda"]) | set(noarch["packages"]) == filenames(GOOD, "noarch")
    assert_site_invariant(site)


async def test_package_name_longer_than_a_file_name_does_not_stop_the_render(
    tmp_path: Path,
) -> None:
    """A record named with 251 characters has a file name longer than any file system takes:
    refused when parsed, so a passive mirror (which never stores the file) cannot publish it
    for the render to fail on ``packages/<name>.html``."""
    root = tmp_path / "upstream"
    documents = write_channel(root, GOOD, zst=True)
    document = copy.deepcopy(documents[LINUX])
    long_name = "n" * 251
    record = {**document["packages.conda"]["beta-2.0-h1_0.conda"], "name": long_name}
    document["packages.conda"][f"{long_name}-2.0-h1_0.conda"] = record
    set_repodata(root, LINUX, serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        config = channel_config(site, server.url, extra="mode: passive\n")
        report = await mirror_unchecked(config)
    assert report.status == COMPLETED, report.errors
    published = json.loads((site / CHANNEL / LINUX / "repodata.json").read_bytes())
    assert f"{long_name}-2.0-h1_0.conda" not in published["packages.conda"]
    await trio.to_thread.run_sync(render_site, config)
    assert (site / CHANNEL / "packages" / "beta.html").is_file()
    assert (site / CHANNEL / "index.html").is_file()


@pytest.mark.parametrize("tmpfile", [True, False], ids=["o_tmpfile", "named-temporaries"])
async def test_a_file_name_of_255_bytes_mirrors_renders_and_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmpfile: bool
) -> None:
    """A file name may take all 255 bytes, and its name all but the version and build: the
    temporaries beside the file (without O_TMPFILE, and a re-upload waiting under its staging
    name) and beside its page must fit too. They were longer than a file name may be, so the
    render failed for the whole site (and the file could not be stored without O_TMPFILE)."""
    if not tmpfile:
        monkeypatch.delattr(os, "O_TMPFILE")  # as on a filesystem without it
    root = tmp_path / "upstream"
    documents = write_channel(root, GOOD, zst=True)
    document = copy.deepcopy(documents[LINUX])
    long_name = "n" * 240
    fn = f"{long_name}-2.0-h1_0.conda"
    assert len(fn) == 255
    record = {**document["packages.conda"]["beta-2.0-h1_0.conda"], "name": long_name}
    document["packages.conda"][fn] = record
    data = (root / LINUX / "beta-2.0-h1_0.conda").read_bytes()
    (root / LINUX / fn).write_bytes(data)
    set_repodata(root, LINUX, serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        config = run_config(site, server.url)
        report = await mirror_unchecked(config)
        assert report.status == COMPLETED, (report.errors, report.channels)
        await trio.to_thread.run_sync(render_site, config)
        assert (site / CHANNEL / "packages" / f"{long_name}.html").is_file()
        # Re-uploaded: other bytes of the same size under the same name, staged until published.
        data = bytes(b ^ 0x55 for b in data)
        (root / LINUX / fn).write_bytes(data)
        record["sha256"] = hashlib.sha256(data).hexdigest()
        record["md5"] = hashlib.md5(data).hexdigest()
        set_repodata(root, LINUX, serialise(document))
        report = await mirror_unchecked(config)
    assert report.status == COMPLETED, (report.errors, report.channels)
    assert (site / CHANNEL / LINUX / fn).read_bytes() == data
    await trio.to_thread.run_sync(render_site, config)
    assert_site_invariant(site)


async def test_one_record_claiming_a_tebibyte_fails_alone(tmp_path: Path) -> None:
    """``size: 1 << 40`` is a size a package may have, but no disk here holds it: that file
    fails (named in the report), and the free-space guard weighs the others, which are
    published."""
    root = tmp_path / "upstream"
    documents = write_channel(root, GOOD, zst=True)
    document = copy.deepcopy(documents[LINUX])
    document["packages.conda"]["beta-2.0-h1_0.conda"]["size"] = 1 << 40
    set_repodata(root, LINUX, serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        report = await mirror_unchecked(run_config(site, server.url))
    linux = next(c for c in report.channels if c.subdir == LINUX)
    assert any("beta-2.0-h1_0.conda: not downloaded" in e for e in linux.errors), linux.errors
    assert (site / CHANNEL / "noarch" / "repodata.json").is_file()
    published = json.loads((site / CHANNEL / LINUX / "repodata.json").read_bytes())
    listed = set(published["packages.conda"]) | set(published["packages"])
    assert listed == filenames(GOOD, LINUX) - {"beta-2.0-h1_0.conda"}
    assert_site_invariant(site)


@pytest.mark.parametrize(
    "base_url", ["http://[bad/", "http://h:abc/", "http://xn--/", "http://h/\x7f"]
)
async def test_base_url_that_is_not_a_url_fails_its_subdir_not_the_run(
    tmp_path: Path, base_url: str
) -> None:
    """``info.base_url`` (CEP-15) that no URL parser takes (an unclosed IPv6 bracket, a port
    that is not a number, a malformed IDNA label, a control character): the files it would
    name fail with a message, the other subdirs are mirrored."""
    site = make_sandbox(tmp_path)
    report = await _mirror_with_base_url(tmp_path, site, base_url)
    assert isinstance(report, RunReport)
    linux = next(c for c in report.channels if c.subdir == LINUX)
    assert len(linux.errors) == len(filenames(GOOD, LINUX)), linux.errors
    assert all("base_url" in e for e in linux.errors), linux.errors
    noarch = json.loads((site / CHANNEL / "noarch" / "repodata.json").read_bytes())
    assert set(noarch["packages.conda"]) | set(noarch["packages"]) == filenames(GOOD, "noarch")
    assert_site_invariant(site)
