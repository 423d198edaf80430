"""Advisories in real runs: blocked records stay unpublished with their reason, and from run to
run the history can tell what an advisory newly blocked and what it cleared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitegen.store.site import Site
from sitegen.sync.advisory_changes import advisory_changes, standing_before
from sitegen.sync.history import History
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.web.gates import gate_changes
from sitegen.web.render import render_site
from testkit.advisories import NEW_ZLIB, OLD_ZLIB, write_zlib_advisory
from testkit.site import channel_config, published, rewrite_repodata
from testkit.upstream import ExampleUpstream, respond

pytestmark = pytest.mark.integration

CHANNEL = "cloud/example"


async def test_advisories_block_and_the_history_tells_newly_blocked_and_cleared(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    advisory = tmp_path / "zlib.json"

    async def run(allow: str = "[]"):
        config = channel_config(
            site,
            example_upstream.url,
            extra=f"filters: {{advisories: {{files: [{advisory}], min_score: 7, allow: {allow}}}}}",
        )
        report = await run_mirror(config, MirrorOptions(progress=False))
        assert not report.failed
        (mirror,) = report.mirrors
        standing = standing_before(History(Site(site)).runs(), mirror.name, report)
        return mirror, advisory_changes(mirror, standing)

    write_zlib_advisory(advisory, fixed="1.3.1")
    mirror, changes = await run()
    assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB
    assert published(site, CHANNEL, "linux-64") >= NEW_ZLIB
    assert mirror.subdirs["linux-64"].excluded == {"advisory TEST-ZLIB-1": 2}
    assert {b.file for b in changes.blocked} == OLD_ZLIB and changes.cleared == ()

    write_zlib_advisory(advisory, fixed="1.3.2")  # 1.3.1 turns out affected as well
    mirror, changes = await run()
    assert not published(site, CHANNEL, "linux-64") & (OLD_ZLIB | NEW_ZLIB)
    assert {b.file for b in changes.blocked} == NEW_ZLIB and changes.cleared == ()
    assert {b.advisory for b in mirror.advisories_blocked} == {"TEST-ZLIB-1"}

    mirror, changes = await run(allow="[CVE-2022-37434]")  # accepted as mitigated, by alias
    assert published(site, CHANNEL, "linux-64") >= (OLD_ZLIB | NEW_ZLIB)
    assert changes.blocked == () and {b.file for b in changes.cleared} == OLD_ZLIB | NEW_ZLIB


async def test_a_run_that_could_not_read_upstream_clears_nothing_and_the_next_blocks_nothing_anew(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    advisory = tmp_path / "zlib.json"
    write_zlib_advisory(advisory, fixed="1.3.1")
    config = channel_config(
        site,
        example_upstream.url,
        extra=f"filters: {{advisories: {{files: [{advisory}], min_score: 7}}}}",
    )
    first = await run_mirror(config, MirrorOptions(progress=False))
    assert not first.failed
    for name in ("repodata.json", "repodata.json.zst", "repodata.json.bz2"):
        example_upstream.server.add_fault(f"/linux-64/{name}", respond(503))
    down = await run_mirror(config, MirrorOptions(progress=False))
    assert down.failed and down.mirrors[0].subdirs["linux-64"].upstream == "error"
    # The channel keeps publishing what it did: zlib 1.2.13 is still kept out, and its
    # package page still says for which advisory.
    assert not published(site, CHANNEL, "linux-64") & OLD_ZLIB
    render_site(config)
    page = (site / CHANNEL / "packages" / "zlib.html").read_text()
    notes = page.split('id="advisories"', 1)[1].split("</section>", 1)[0]
    assert "1.2.13" in notes and "TEST-ZLIB-1" in notes and "blocked" in notes
    example_upstream.server.clear_faults()
    up = await run_mirror(config, MirrorOptions(progress=False))
    assert not up.failed

    changes = gate_changes(History(Site(site)).runs())
    assert changes[first.id]["gate_counts"]["blocked"] == 2
    for run in (down, up):
        assert changes[run.id]["advisory_changes"] == [], run.id
    render_site(config)
    history = (site / "history" / "index.html").read_text()
    assert "newly cleared" not in history and history.count("2 newly blocked") == 1


async def test_a_pypi_advisory_blocks_conda_records_through_identities_in_a_real_run(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    advisory = {
        "id": "GHSA-test-numpy",
        "aliases": ["CVE-2099-0001"],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "NumPy"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0.1"}]}
                ],
            },
            {
                "package": {"ecosystem": "PyPI", "name": "six"},
                "versions": ["1.16.0"],
            },
        ],
    }
    (tmp_path / "pypi.json").write_text(json.dumps(advisory))
    # purl-associator's records: numpy is the PyPI package of that name.
    mapping = [{"name": "numpy", "purl": "pkg:pypi/numpy", "alternative_purls": [], "cpes": []}]
    (tmp_path / "conda-forge-purls.json").write_text(json.dumps(mapping))

    def own_purls(document: dict) -> None:  # six's records say themselves which package they are
        for fn, record in document["packages"].items():
            if fn.startswith("six-"):
                record["purls"] = ["pkg:pypi/six"]

    rewrite_repodata(example_upstream.root, "linux-64", own_purls)
    config = channel_config(
        site,
        example_upstream.url,
        extra=f"filters: {{advisories: {{files: [{tmp_path / 'pypi.json'}],"
        f" identities: [{tmp_path / 'conda-forge-purls.json'}]}}}}",
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed
    (mirror,) = report.mirrors
    upstream = set(example_upstream.repodata["linux-64"]["packages"]) | set(
        example_upstream.repodata["linux-64"]["packages.conda"]
    )
    old_numpy = {fn for fn in upstream if fn.startswith("numpy-1.26.4-")}
    six = {fn for fn in upstream if fn.startswith("six-1.16.0-")}
    kept = published(site, CHANNEL, "linux-64")
    assert old_numpy and six and not kept & (old_numpy | six)
    assert {fn for fn in upstream if fn.startswith("numpy-2.")} <= kept
    assert mirror.subdirs["linux-64"].excluded == {"advisory GHSA-test-numpy": len(old_numpy | six)}
    assert {b.file for b in mirror.advisories_blocked} == old_numpy | six

    # The package pages list the advisory under each version it blocked, found through the
    # identities (numpy) or through the records' own purls (six: its blocked build has no
    # record on the page, and nothing but the run tells which purl matched).
    render_site(config)
    for name, version in [("numpy", "1.26.4"), ("six", "1.16.0")]:
        page = (site / CHANNEL / "packages" / f"{name}.html").read_text()
        notes = page.split('id="advisories"', 1)[1].split("</section>", 1)[0]
        assert "GHSA-test-numpy" in notes and version in notes and "blocked" in notes, name


async def test_a_local_upstream_version_falls_in_the_ranges_of_its_public_one(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    # PEP 440 places 1.16.0+cpu just above 1.16.0 (SemVer ignores build metadata), inside a
    # range introduced at 1.16.0; conda's order would place it below, outside.
    advisory = {
        "id": "GHSA-test-six",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "six"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "1.16.0"}, {"fixed": "1.17"}]}
                ],
            },
        ],
    }
    (tmp_path / "pypi.json").write_text(json.dumps(advisory))

    def own_purls(document: dict) -> None:
        for key in ("packages", "packages.conda"):
            for fn, record in document[key].items():
                if fn.startswith("six-"):
                    record["purls"] = ["pkg:pypi/six@1.16.0+cpu"]

    rewrite_repodata(example_upstream.root, "linux-64", own_purls)
    site = tmp_path / "site"
    config = channel_config(
        site,
        example_upstream.url,
        extra=f"filters: {{advisories: {{files: [{tmp_path / 'pypi.json'}]}}}}",
    )
    report = await run_mirror(config, MirrorOptions(progress=False))
    assert not report.failed
    upstream = set(example_upstream.repodata["linux-64"]["packages"]) | set(
        example_upstream.repodata["linux-64"]["packages.conda"]
    )
    six = {fn for fn in upstream if fn.startswith("six-")}
    assert six and not published(site, CHANNEL, "linux-64") & six
    assert report.mirrors[0].subdirs["linux-64"].excluded == {"advisory GHSA-test-six": len(six)}
