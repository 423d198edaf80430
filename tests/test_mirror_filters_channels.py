"""include_dependencies across channels and mirrors: what one pulls into another is kept
and counted."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sitegen.store.frozen import FrozenChannels
from sitegen.store.site import Site
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import write_channel
from sitegen.web.run import mirror_row, same
from testkit.mirror_filters import (
    NOT_ALLOWED,
    P,
    check,
    excluded,
    mirror,
    serve_example_channel,
)
from testkit.site import assert_channel_consistent, fns, published, site_config

pytestmark = pytest.mark.integration

upstream = pytest.fixture(scope="module", name="upstream")(serve_example_channel)


def _two_channels(site: Path, url_a: str, filters_a: str, url_b: str, filters_b: str):
    return site_config(
        site,
        f"""
        channels:
          cloud/a:
            url: {url_a}
            subdirs: [linux-64]
            filters: {filters_a}
          cloud/b:
            url: {url_b}
            subdirs: [linux-64]
            filters: {filters_b}
        """,
    )


def _numpy_needs_the_second_mirror(site: Path, upstream: str, upstream_server_factory):
    """cloud/a: numpy 2.1 with its dependencies, from an upstream of numpy only (at
    ``site.parent / "a"``); cloud/b: the example channel, zlib allowlisted."""
    write_channel(site.parent / "a", [p for p in P if p.name == "numpy"], zst=True)
    only_numpy = upstream_server_factory(site.parent / "a")
    return _two_channels(
        site,
        only_numpy.url,
        '{specs: {include: ["numpy 2.1.*"]}, include_dependencies: true}',
        upstream,
        "{names: {include: [zlib]}}",  # the second mirror's own allowlist
    )


async def test_include_dependencies_across_two_mirrors(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    site = tmp_path / "site"
    config = _numpy_needs_the_second_mirror(site, upstream, upstream_server_factory)
    report = await mirror(config)
    assert_channel_consistent(site, "cloud/a")
    assert_channel_consistent(site, "cloud/b")
    # The first mirror has no libopenblas or python: they come from the second mirror, into
    # the second mirror's channel, beside its own allowlisted zlib.
    check(report, site, "linux-64", fns(P, "numpy", "2.1.0"), {NOT_ALLOWED: 12}, channel="cloud/a")
    from_b = fns(P, "libopenblas", "0.3.27") | fns(P, "python", "3.11.9")
    from_b |= fns(P, "python", "3.12.3") | fns(P, "python", "3.12.4")
    check(
        report,
        site,
        "linux-64",
        fns(P, "zlib") | from_b,
        {NOT_ALLOWED: 42 - 4 - 8},
        channel="cloud/b",
        index=1,
    )
    assert report.mirrors[0].unsatisfied == []
    assert report.mirrors[1].subdirs["linux-64"].added_as_dependency == 8


async def test_a_mirror_down_upstream_keeps_what_it_pulled_into_another_channel(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    """cloud/a's numpy pulled libopenblas and python into cloud/b. With cloud/a's upstream
    down, cloud/a keeps what it publishes, and so does cloud/b: those dependencies stay."""
    site = tmp_path / "site"
    config = _numpy_needs_the_second_mirror(site, upstream, upstream_server_factory)
    # No deletion guard to hide behind: each removal must be one the run meant.
    config = dataclasses.replace(config, max_delete_fraction=1.0)
    await mirror(config)
    in_b = published(site, "cloud/b", "linux-64")
    pulled = fns(P, "libopenblas", "0.3.27") | fns(P, "python", "3.12.4")
    assert pulled <= in_b
    for path in (site.parent / "a").glob("*/repodata.json*"):
        path.write_bytes(b"<html>maintenance</html>")  # cloud/a's upstream is broken

    report = await run_mirror(config, MirrorOptions(progress=False))

    assert report.failed and report.mirrors[0].errors
    assert published(site, "cloud/b", "linux-64") == in_b
    assert report.mirrors[1].errors == []
    assert_channel_consistent(site, "cloud/b")


@pytest.mark.parametrize("walked", [True, False], ids=["closure", "no-closure"])
async def test_a_mirror_down_upstream_counts_what_it_keeps_not_its_channel(
    walked: bool, upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    """cloud/b has two mirrors: numpy from one, six from the other. With the numpy mirror's
    upstream down, cloud/b keeps what it publishes, and that mirror's report counts as kept
    the numpy files it keeps published, not every file of its channel; whether or not a
    mirror of the site pulls in dependencies (the closure then walks cloud/b as published)."""
    write_channel(tmp_path / "a", [p for p in P if p.name == "numpy"], zst=True)
    only_numpy = upstream_server_factory(tmp_path / "a")
    dependencies = ", include_dependencies: true" if walked else ""
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        channels:
          cloud/a:
            url: {upstream}
            subdirs: [linux-64]
            filters: {{names: {{include: [zlib]}}{dependencies}}}
          cloud/b:
            mirrors:
              - name: b-numpy
                url: {only_numpy.url}
                subdirs: [linux-64]
              - name: b-six
                url: {upstream}
                subdirs: [linux-64]
                filters: {{names: {{include: [six]}}}}
        """,
    )
    await mirror(config)
    numpy = fns(P, "numpy", subdir="linux-64")
    in_b = published(site, "cloud/b", "linux-64")
    assert in_b == numpy | fns(P, "six", subdir="linux-64")
    for path in (tmp_path / "a").glob("*/repodata.json*"):
        path.write_bytes(b"<html>maintenance</html>")

    report = await run_mirror(config, MirrorOptions(progress=False))

    assert published(site, "cloud/b", "linux-64") == in_b
    down = next(mr for mr in report.mirrors if mr.name == "b-numpy")
    assert down.errors and down.subdirs["linux-64"].upstream == "error"
    assert down.subdirs["linux-64"].kept == len(numpy) == 16
    assert mirror_row(down, same)["kept"] == 16  # the run page and history.json
    six = next(mr for mr in report.mirrors if mr.name == "b-six")
    assert six.errors == [] and six.subdirs["linux-64"].kept == 1


async def test_a_frozen_channel_keeps_what_it_pulled_into_another_channel(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    """cloud/a is frozen, then its upstream drops numpy 2.1: cloud/a goes on publishing it, so
    what it needs stays in cloud/b, and nothing upstream offers now is pulled in for it."""
    site = tmp_path / "site"
    config = _numpy_needs_the_second_mirror(site, upstream, upstream_server_factory)
    config = dataclasses.replace(config, max_delete_fraction=1.0)
    await mirror(config)
    in_a = published(site, "cloud/a", "linux-64")
    in_b = published(site, "cloud/b", "linux-64")
    assert fns(P, "libopenblas", "0.3.27") <= in_b
    FrozenChannels(Site(site)).freeze("cloud/a", "alice", "under review")
    older = [p for p in P if p.name == "numpy" and p.version != "2.1.0"]
    for path in (site.parent / "a").rglob("*"):
        if path.is_file():
            path.unlink()
    write_channel(site.parent / "a", older, zst=True)

    report = await mirror(config)

    assert published(site, "cloud/a", "linux-64") == in_a
    assert published(site, "cloud/b", "linux-64") == in_b
    assert_channel_consistent(site, "cloud/b")
    # The frozen mirror's report still tells what its filters make of upstream.
    assert excluded(report, "linux-64") == {NOT_ALLOWED: 12}


async def test_a_run_of_one_channel_keeps_what_another_pulled_into_it(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    """A run of cloud/b alone (its own schedule, or --only) walks what cloud/a publishes: the
    dependencies cloud/a's numpy pulled into cloud/b stay."""
    site = tmp_path / "site"
    config = _numpy_needs_the_second_mirror(site, upstream, upstream_server_factory)
    config = dataclasses.replace(config, max_delete_fraction=1.0)
    await mirror(config)
    in_b = published(site, "cloud/b", "linux-64")
    assert fns(P, "libopenblas", "0.3.27") | fns(P, "python", "3.12.4") <= in_b

    report = await run_mirror(config, MirrorOptions(progress=False, only=("cloud-b",)))

    assert not report.failed
    assert [mr.name for mr in report.mirrors] == ["cloud-b"]
    assert published(site, "cloud/b", "linux-64") == in_b
    assert_channel_consistent(site, "cloud/b")
    assert report.mirrors[0].subdirs["linux-64"].added_as_dependency == 8
    assert {d.needed_by_channel for d in report.mirrors[0].dependencies_added} == {"cloud/a"}


async def test_a_run_of_one_channel_counts_what_another_channel_publishes(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    """A run of cloud/a alone finds numpy's python and libopenblas where a full run found them,
    in what cloud/b publishes, though cloud/b pulls in nothing of its own: nothing is reported
    unsatisfied."""
    site = tmp_path / "site"
    config = _numpy_needs_the_second_mirror(site, upstream, upstream_server_factory)
    config = dataclasses.replace(config, max_delete_fraction=1.0)
    await mirror(config)
    in_a = published(site, "cloud/a", "linux-64")

    report = await run_mirror(config, MirrorOptions(progress=False, only=("cloud-a",)))

    assert not report.failed
    assert [mr.name for mr in report.mirrors] == ["cloud-a"]
    assert report.mirrors[0].unsatisfied == []
    assert published(site, "cloud/a", "linux-64") == in_a


async def test_a_run_of_one_channel_adds_what_another_needs_since_its_last_run(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    """cloud/a gains numpy's py311 build in a run of its own, which cannot add python 3.11 to
    cloud/b. cloud/b's next run, with nothing new upstream, is not skipped as unchanged: what
    cloud/a publishes is one of its inputs, so it adds python 3.11."""
    numpy = [p for p in P if p.name == "numpy" and p.version == "2.1.0"]
    write_channel(tmp_path / "a", [p for p in numpy if "py312" in p.build], zst=True)
    only_numpy = upstream_server_factory(tmp_path / "a")
    site = tmp_path / "site"
    config = _two_channels(
        site,
        only_numpy.url,
        '{specs: {include: ["numpy 2.1.*"]}, include_dependencies: true}',
        upstream,
        "{names: {include: [zlib]}}",
    )
    await mirror(config)
    await run_mirror(config, MirrorOptions(progress=False, only=("cloud-b",)))
    assert not fns(P, "python", "3.11.9") & published(site, "cloud/b", "linux-64")
    write_channel(tmp_path / "a", numpy, zst=True)
    await run_mirror(config, MirrorOptions(progress=False, only=("cloud-a",)))
    assert fns(numpy) == published(site, "cloud/a", "linux-64")

    report = await run_mirror(config, MirrorOptions(progress=False, only=("cloud-b",)))

    assert not report.failed
    assert fns(P, "python", "3.11.9") <= published(site, "cloud/b", "linux-64")
    assert_channel_consistent(site, "cloud/b")


async def test_own_mirror_first_even_when_it_cannot_satisfy(
    upstream: str, tmp_path: Path, upstream_server_factory
) -> None:
    # The first mirror has python, but only 3.12.4: numpy's py311 build finds no python 3.11
    # there, and the second mirror is not consulted for a name the own mirror has.
    own = [p for p in P if p.name == "numpy" and p.version == "2.1.0"]
    own += [p for p in P if p.name == "python" and p.version == "3.12.4"]
    write_channel(tmp_path / "a", own, zst=True)
    first = upstream_server_factory(tmp_path / "a")
    site = tmp_path / "site"
    config = _two_channels(
        site,
        first.url,
        '{specs: {include: ["numpy 2.1.*"]}, include_dependencies: true}',
        upstream,
        "{names: {include: [zlib]}}",
    )
    report = await mirror(config)
    check(
        report,
        site,
        "linux-64",
        fns(P, "numpy", "2.1.0") | fns(P, "python", "3.12.4"),
        {},
        channel="cloud/a",
    )
    from_b = fns(P, "libopenblas", "0.3.27")
    check(
        report,
        site,
        "linux-64",
        fns(P, "zlib") | from_b,
        {NOT_ALLOWED: 42 - 4 - 2},
        channel="cloud/b",
        index=1,
    )
    unsatisfied = {(u.spec, u.needed_by) for u in report.mirrors[0].unsatisfied}
    py311 = next(p for p in own if p.build.startswith("py311"))
    assert unsatisfied == {("python >=3.11,<3.12.0a0", fn) for fn in py311.filenames}
