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
    REASON_BAD_SPEC,
    REASON_BAD_TEXT,
    REASON_BAD_VERSION,
    REASON_NAME_MISMATCH,
    REASON_NO_CHECKSUM,
    REASON_SUBDIR_MISMATCH,
)
from sitegen.sync.report import COMPLETED
from sitegen.tools.example_channel import write_channel
from testkit.hostile import GOOD, LINUX, ODD, XSS, run_config, serialise
from testkit.invariant import METADATA, assert_site_invariant, make_sandbox, shard_files
from testkit.records import as_upstream
from testkit.site import mirror_unchecked
from testkit.small_channel import CHANNEL, filenames, set_repodata
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
# Odd, but mirrored as upstream wrote them: descriptive fields whose type no client checks.
ODD_FIELDS = {
    "summary": 7,
    "home": ["https://a.example", "https://b.example"],
}
# Fields of types no client reads: rattler fails every solve asking for the package's name over
# one such record. Each makes a record of its own that is refused (test_records and
# test_record_fields have them all; a run logs the first 20 refused of a subdir, which this
# test reads whole).
UNREADABLE_FIELDS = {"constrains": "not a list", "noarch": 5}


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
    # Specs no client parses: mamba would fail to load the whole subdir over one.
    for name, key, specs in (
        ("psi", "depends", ["numpy >>>1 <<", "python"]),
        ("omega", "constrains", [""]),
    ):
        unreadable = {**copy.deepcopy(template), "name": name, key: specs}
        out.append(("packages.conda", f"{name}-1.0-pyh0_0.conda", unreadable, REASON_BAD_SPEC))
    return out


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
            set_repodata(root, subdir, serialise(document))
        yield state


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
        report = await mirror_unchecked(run_config(site, hostile.url))

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
    config = run_config(site, hostile.url)
    report = await mirror_unchecked(config)
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
