"""Hostile upstream metadata: every bad record is skipped, logged and counted; good ones mirror.

Upstream repodata is untrusted input. Filenames that are paths (``/``, ``\\``, ``..``, absolute),
hold NUL or control characters, disagree with the record's name/version/build/subdir, records
with absurd sizes, without checksums, or holding bytes that are not UTF-8 must never become a
file anywhere, and must not stop the good records of the same subdir from being mirrored. HTML
and JavaScript in free-text fields are not a reason to skip: they are published verbatim in
repodata (it is upstream's data) and escaped on the pages.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.conda.record_check import (
    REASON_BAD_FIELDS,
    REASON_BAD_FILENAME,
    REASON_BAD_SIZE,
    REASON_BAD_TEXT,
    REASON_BAD_VERSION,
    REASON_NAME_MISMATCH,
    REASON_NO_CHECKSUM,
    REASON_SUBDIR_MISMATCH,
)
from sitegen.config import SiteConfig, parse_config
from sitegen.sync.report import COMPLETED, RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import PackageSpec, write_channel
from sitegen.web.render import render_site
from testkit.invariant import METADATA, assert_site_invariant, make_sandbox, shard_files
from testkit.records import as_upstream
from testkit.site import channel_config
from testkit.small_channel import CHANNEL, filenames, set_repodata, small_packages
from testkit.upstream import UpstreamServer

pytestmark = pytest.mark.integration

XSS_SUMMARY = '<script>alert("summary")</script>'
XSS_FIELDS = {
    "summary": XSS_SUMMARY,
    "license": "<b onmouseover=alert(1)>MIT</b>",
    "home": "javascript:alert(document.cookie)",
    "doc_url": '"><img src=x onerror=alert(2)>',
    "description": "</textarea><svg onload=alert(3)>",
}
# Sound records whose other fields are junk: still mirrored, must not break any later stage.
# Odd, but mirrored as upstream wrote them: specs no client parses (a client skips the
# record), and licence fields, which the licenses filter judges.
ODD_FIELDS = {
    "depends": ["numpy >>>1 <<", "", "python"],
    "license": ["MIT"],
    "license_family": 7,
}
# Fields of types no client reads: rattler fails every solve asking for the package's name over
# one such record. Each makes a record of its own that is refused (test_records has them all;
# a run logs the first 20 refused of a subdir, which this test reads whole).
UNREADABLE_FIELDS = {"constrains": "not a list", "noarch": 5}
XSS = PackageSpec("xss", "1.0", "h0_0", license="MIT", formats=("conda",))
ODD = PackageSpec("odd", "1.0", "h0_0", license="MIT", formats=("conda", "tar.bz2"))
GOOD = [*small_packages(), XSS, ODD]
LINUX = "linux-64"

# Placeholders replaced by raw bytes once the document is serialised.
RAW = {
    '"@@INF@@"': b"1e999",
    '"@@HUGE@@"': b"1" + b"0" * 40,
    "@@FF@@": b"\xff\xfe",
}


def _linux_hostile(template: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    """(section, filename, record, reason) of hostile linux-64 records; every record carries
    the size and checksums of a real file, so only the checks can keep them out."""

    def rec(**changes: Any) -> dict[str, Any]:
        out = copy.deepcopy(template)
        for key, value in changes.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        return out

    conda = "packages.conda"
    return [
        (conda, "../alpha-1.0-h0_0.conda", rec(), REASON_BAD_FILENAME),
        (conda, "../../../../../../../../tmp/alpha-1.0-h0_0.conda", rec(), REASON_BAD_FILENAME),
        (conda, "sub/alpha-1.0-h0_0.conda", rec(), REASON_BAD_FILENAME),
        (conda, "alpha\\..\\alpha-1.0-h0_0.conda", rec(), REASON_BAD_FILENAME),
        (conda, "/etc/alpha-1.0-h0_0.conda", rec(), REASON_BAD_FILENAME),
        (conda, "alpha-1.0-h0_0\x00.conda", rec(), REASON_BAD_FILENAME),
        (conda, "alpha-1.0-h0_0\n2030-01-01 ERROR forged line.conda", rec(), REASON_BAD_FILENAME),
        (conda, "alpha\x1b[2J-1.0-h0_0.conda", rec(), REASON_BAD_FILENAME),
        (conda, ".sitegen-tmp-alpha-1.0-h0_0.conda", rec(), REASON_BAD_FILENAME),
        (conda, "..", rec(), REASON_BAD_FILENAME),
        (conda, "alpha-1.0-h0_0.tar.bz2", rec(), REASON_BAD_FILENAME),  # wrong section
        (conda, "alpha-1.0-h0_0@@FF@@.conda", rec(), REASON_BAD_FILENAME),
        (conda, "alpha-9.9-h0_0.conda", rec(), REASON_NAME_MISMATCH),
        (conda, "alpha-1.0-h9_9.conda", rec(), REASON_NAME_MISMATCH),
        (conda, "sigma-1.0-h0_0.conda", rec(name="sigma", subdir="win-64"), REASON_SUBDIR_MISMATCH),
        (conda, "tau-1.0-h0_0.conda", rec(name="tau", summary="caf@@FF@@"), REASON_BAD_TEXT),
        (conda, "ups-1.0-h0_0.conda", rec(name="ups", sha256=None, md5=None), REASON_NO_CHECKSUM),
        (conda, "phi-1.0.-h0_0.conda", rec(name="phi", version="1.0."), REASON_BAD_VERSION),
        *(
            (
                conda,
                f"chi{i}-1.0-h0_0.conda",
                rec(name=f"chi{i}", **{key: value}),
                REASON_BAD_FIELDS,
            )
            for i, (key, value) in enumerate(UNREADABLE_FIELDS.items())
        ),
    ]


def _noarch_hostile(template: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    sizes = [-1, 0, 1 << 62, "12", 1.5, True, None, "@@INF@@", "@@HUGE@@"]
    out = []
    for i, size in enumerate(sizes):
        record = {**copy.deepcopy(template), "name": f"size{i}", "size": size}
        out.append(("packages.conda", f"size{i}-1.0-pyh0_0.conda", record, REASON_BAD_SIZE))
    out.append(("packages.conda", "list-1.0-pyh0_0.conda", [1, 2], REASON_BAD_FIELDS))
    bad_depends = {**copy.deepcopy(template), "name": "deps", "depends": "python"}
    out.append(("packages.conda", "deps-1.0-pyh0_0.conda", bad_depends, REASON_BAD_FIELDS))
    return out


def _serialise(document: dict[str, Any]) -> bytes:
    data = json.dumps(document, indent=1, sort_keys=True).encode()
    for placeholder, raw in RAW.items():
        data = data.replace(placeholder.encode(), raw)
    return data


def _label(fn: str) -> str:
    """What the run reports for a rejected filename: itself, or its repr when unprintable."""
    real = fn.replace("@@FF@@", "\udcff\udcfe")
    return real if real.isprintable() else repr(real)


class Hostile:
    def __init__(self, root: Path, server: UpstreamServer) -> None:
        self.root = root
        self.server = server
        self.upstream_docs: dict[str, dict[str, Any]] = {}
        self.rejected: dict[str, list[tuple[str, str, Any, str]]] = {}

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Hostile]:
    root = tmp_path / "upstream"
    documents = write_channel(root, GOOD, zst=True)
    linux = documents[LINUX]
    for section in ("packages", "packages.conda"):
        for fn, record in linux[section].items():
            if fn.startswith("xss-"):
                record.update(XSS_FIELDS)
            if fn.startswith("odd-"):
                record.update(ODD_FIELDS)
    template = linux["packages.conda"]["alpha-1.0-h0_0.conda"]
    noarch_template = documents["noarch"]["packages.conda"]["delta-1.0-pyh0_0.conda"]
    with UpstreamServer(root) as server:
        state = Hostile(root, server)
        state.upstream_docs = copy.deepcopy(documents)
        state.rejected = {
            LINUX: _linux_hostile(template),
            "noarch": _noarch_hostile(noarch_template),
        }
        for subdir, entries in state.rejected.items():
            document = copy.deepcopy(documents[subdir])
            for section, fn, record, _reason in entries:
                assert fn not in document[section]
                document[section][fn] = record
            set_repodata(root, subdir, _serialise(document))
        yield state


def _config(site: Path, url: str) -> SiteConfig:
    return parse_config(
        f"""\
output: {site}
download: {{concurrency: 4, per_host: 4, retries: 0, timeout: 5}}
repodata: {{bz2: true}}  # every metadata file, the optional one too
channels:
  {CHANNEL}:
    url: {url}
    subdirs: [linux-64]
    filters:
      licenses: {{exclude: ["*GPL*"]}}
"""
    )


async def _mirror(config: SiteConfig) -> RunReport:
    return await run_mirror(config, MirrorOptions(progress=False))


def _site_files(site: Path) -> set[str]:
    out = set()
    for dirpath, _dirs, files in os.walk(site):
        rel = Path(dirpath).relative_to(site).as_posix()
        if rel.split("/", 1)[0] in ("history", ".sitegen"):
            continue
        out |= {f"{rel}/{name}" if rel != "." else name for name in files}
    return out


async def test_hostile_records_are_skipped_counted_and_logged(
    hostile: Hostile, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = make_sandbox(tmp_path)
    with caplog.at_level(logging.INFO, logger="sitegen"):
        report = await _mirror(_config(site, hostile.url))

    assert report.status == COMPLETED and not report.failed, (report.errors, report.channels)
    (mr,) = report.mirrors
    for subdir, entries in hostile.rejected.items():
        sub = mr.subdirs[subdir]
        assert sub.rejected == dict(Counter(reason for *_x, reason in entries)), subdir
        assert sub.records == len(filenames(GOOD, subdir))
        for _section, fn, _record, reason in entries:
            assert sub.rejected_examples[_label(fn)] == reason, fn

    # One clear, single-line, printable log line per skipped record, naming its reason.
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == sum(len(e) for e in hostile.rejected.values())
    for message in skipped:
        assert message.isprintable(), f"control characters reach the log: {message!r}"
    for subdir, entries in hostile.rejected.items():
        for _section, fn, _record, reason in entries:
            line = f"cloud-example/{subdir}: skipped {_label(fn)}: {reason}"
            assert line in skipped, line

    # The good records, and only they, are mirrored; nothing lands anywhere else.
    expected = {f"{CHANNEL}/channeldata.json"}
    for subdir in (LINUX, "noarch"):
        expected |= {f"{CHANNEL}/{subdir}/{name}" for name in METADATA}
        expected |= {f"{CHANNEL}/{subdir}/{fn}" for fn in filenames(GOOD, subdir)}
        expected |= {f"{CHANNEL}/{subdir}/{f}" for f in shard_files(site / CHANNEL / subdir)}
    assert _site_files(site) == expected
    assert_site_invariant(site)


async def test_html_and_javascript_are_mirrored_verbatim_and_escaped_on_pages(
    hostile: Hostile, tmp_path: Path
) -> None:
    site = make_sandbox(tmp_path)
    config = _config(site, hostile.url)
    report = await _mirror(config)
    assert not report.failed
    published = json.loads((site / CHANNEL / LINUX / "repodata.json").read_bytes())
    upstream = hostile.upstream_docs[LINUX]
    for fn in XSS.filenames:
        assert as_upstream(published["packages.conda"][fn]) == upstream["packages.conda"][fn]
        for key, value in XSS_FIELDS.items():
            assert published["packages.conda"][fn][key] == value
    for fn in ODD.filenames:
        section = "packages.conda" if fn.endswith(".conda") else "packages"
        assert as_upstream(published[section][fn]) == upstream[section][fn]
    assert_site_invariant(site)

    try:
        from sitegen.web.render import render_site
    except ImportError:
        return  # no pages yet
    await trio.to_thread.run_sync(render_site, config)
    pages = [p for p in site.rglob("*.html") if ".sitegen" not in p.parts]
    assert pages
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "<script>alert(" not in html, page
        assert "onerror=alert" not in html.replace("onerror=alert(2)&gt;", ""), page
        assert "<svg onload" not in html and "<b onmouseover" not in html, page
        assert 'href="javascript:' not in html.lower(), page
    assert_site_invariant(site)


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
    set_repodata(root, LINUX, _serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        report = await _mirror(_config(site, server.url))
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
    set_repodata(root, LINUX, _serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        report = await _mirror(_config(site, server.url))
    assert report.mirrors[0].subdirs[LINUX].rejected_examples == {
        "alpha-1.0-h0_0.conda": REASON_BAD_SIZE,
        "beta-2.0-h1_0.conda": REASON_BAD_FIELDS,  # an infinite timestamp
    }
    published = json.loads((site / CHANNEL / LINUX / "repodata.json").read_bytes())
    listed = set(published["packages.conda"]) | set(published["packages"])
    assert listed == filenames(GOOD, LINUX) - {"alpha-1.0-h0_0.conda", "beta-2.0-h1_0.conda"}
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
        config = _config(site, server.url)
        assert not (await _mirror(config)).failed
        fn = "beta-2.0-h1_0.conda"
        path = root / LINUX / fn
        data = bytes(b ^ 0x55 for b in path.read_bytes())  # same size, other bytes
        path.write_bytes(data)
        document = copy.deepcopy(documents[LINUX])
        record = document["packages.conda"][fn]
        record["sha256"] = hashlib.sha256(data).hexdigest()
        record["md5"] = hashlib.md5(data).hexdigest()
        set_repodata(root, LINUX, _serialise(document))
        with caplog.at_level(logging.INFO, logger="sitegen"):
            report = await _mirror(config)
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
    set_repodata(root, LINUX, _serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        report = await _mirror(_config(site, server.url))
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
    set_repodata(root, LINUX, _serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        report = await _mirror(_config(site, server.url))
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
    set_repodata(root, LINUX, _serialise(document))
    with UpstreamServer(root) as server:
        return await _mirror(_config(site, server.url))


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
    set_repodata(root, LINUX, _serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        config = channel_config(site, server.url, extra="mode: passive\n")
        report = await _mirror(config)
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
    set_repodata(root, LINUX, _serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        config = _config(site, server.url)
        report = await _mirror(config)
        assert report.status == COMPLETED, (report.errors, report.channels)
        await trio.to_thread.run_sync(render_site, config)
        assert (site / CHANNEL / "packages" / f"{long_name}.html").is_file()
        # Re-uploaded: other bytes of the same size under the same name, staged until published.
        data = bytes(b ^ 0x55 for b in data)
        (root / LINUX / fn).write_bytes(data)
        record["sha256"] = hashlib.sha256(data).hexdigest()
        record["md5"] = hashlib.md5(data).hexdigest()
        set_repodata(root, LINUX, _serialise(document))
        report = await _mirror(config)
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
    set_repodata(root, LINUX, _serialise(document))
    site = make_sandbox(tmp_path)
    with UpstreamServer(root) as server:
        report = await _mirror(_config(site, server.url))
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
