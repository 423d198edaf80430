"""Filters of the three levels combined, and allowlist entries that match no record upstream."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegen.sync.report import RunReport
from sitegen.sync.run import MirrorOptions, run_mirror
from sitegen.tools.example_channel import write_channel
from testkit.mirror_filters import (
    CHANNEL,
    CONDA,
    NOT_ALLOWED,
    P,
    check,
    config_at,
    mirror,
    serve_example_channel,
)
from testkit.site import assert_channel_consistent, fns, site_config

pytestmark = pytest.mark.integration

upstream = pytest.fixture(scope="module", name="upstream")(serve_example_channel)


async def test_filters_of_three_levels_combined(upstream: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        filters:
          builds: {{exclude: ["py2*"]}}
          licenses: {{allow_missing: false}}
        channels:
          {CHANNEL}:
            filters:
              licenses: {{exclude: ["*GPL*"]}}
            mirrors:
              - name: example
                url: {upstream}
                subdirs: [linux-64]
                filters:
                  specs: {{include: ["numpy >=2", pip]}}
                  include_dependencies: true
                  newest_versions: 1
                  formats: prefer-conda
        """,
    )
    report = await mirror(config)
    assert_channel_consistent(site, CHANNEL)

    # numpy 2.1.0 (newest of >=2) as .conda; its dependencies' newest matching versions as
    # .conda: libopenblas 0.3.27, python 3.11.9 (py311 build), python 3.12.4, zlib 1.3.1.
    linux = (
        fns(P, "numpy", "2.1.0", fmt=CONDA)
        | fns(P, "libopenblas", "0.3.27", fmt=CONDA)
        | fns(P, "python", "3.11.9", fmt=CONDA)
        | fns(P, "python", "3.12.4", fmt=CONDA)
        | fns(P, "zlib", "1.3.1", fmt=CONDA)
    )
    assert len(linux) == 6
    check(
        report,
        site,
        "linux-64",
        linux,
        {
            "build excluded": 2,  # site: futures, six py27
            "license missing": 1,  # site: mystery-tool
            "license excluded": 4,  # channel: readline, ghostscript
            # numpy 2.0.1's .conda files (its .tar.bz2 twins count as twins below)
            "older version": 3,
            # .tar.bz2 twins of numpy 2.1.0 (2), 2.0.1 (3), 1.26.4 (3), python (4), zlib (2),
            # libopenblas 0.3.27 (1), blas (2)
            "has .conda twin": 2 + 3 + 3 + 4 + 2 + 1 + 2,
            # the rest, as .conda: python 3.10.14 and 3.12.3 (2), zlib 1.2.13 (1), numpy 1.26.4
            # (3), blas (2); and libopenblas 0.3.21 (.tar.bz2 only)
            NOT_ALLOWED: 2 + 1 + 3 + 2 + 1,
        },
    )
    check(
        report,
        site,
        "noarch",
        fns(P, "pip", "24.0", fmt=CONDA),
        {
            "older version": 1,  # pip 23.3.1 .conda
            "has .conda twin": 4,  # pip (2), setuptools 69.5.1, six
            NOT_ALLOWED: 3,  # setuptools .conda (2), six .conda
        },
    )
    assert report.mirrors[0].unsatisfied == []


async def test_entries_matching_no_record_upstream_are_warned_about(
    upstream: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An allowlist name or an exception that matches no record of any subdir of the mirrors
    its level applies to (a typo) is named in the log and in the run record, the log naming
    the first few; one matching in noarch only, or any record at all, is not."""
    typos = [f"nunpy{i}" for i in range(12)]
    site = tmp_path / "site"
    config = site_config(
        site,
        f"""
        filters:
          names: {{include: [numpy, six, futures, pip, {", ".join(typos)}]}}
        channels:
          {CHANNEL}:
            filters:
              builds: {{exclude: ['py2*']}}
              except: [six, {{name: sixx}}, {{build: 'py99*'}}, futures 3.*]
            mirrors:
              - name: example
                url: {upstream}
                subdirs: [linux-64]
        """,
    )
    caplog.set_level("WARNING", logger="sitegen")

    report = await mirror(config)

    unmatched = [(u.filters, u.key, u.entry) for u in report.mirrors[0].unmatched]
    assert unmatched == [
        *(("site", "names.include", typo) for typo in typos),
        (f"channel {CHANNEL}", "except", "{name: sixx}"),
        (f"channel {CHANNEL}", "except", "{build: py99*}"),
    ]
    warned = [r.getMessage() for r in caplog.records if "matches no record" in r.getMessage()]
    assert len(warned) == 10
    assert warned[0] == (
        "example: names.include entry 'nunpy0' of the site's filters matches no record"
        " in any subdir"
    )
    assert any("and 4 more entries matching no record" in r.getMessage() for r in caplog.records)
    assert RunReport.from_json(report.to_json()).mirrors[0].unmatched == report.mirrors[0].unmatched
    again = await mirror(config)  # nothing changed: the report is that of the run before
    assert again.mirrors[0].unmatched == report.mirrors[0].unmatched


async def test_entries_are_not_judged_while_upstream_is_down(
    tmp_path: Path, upstream_server_factory
) -> None:
    """A mirror that could not be read says nothing of what its entries match."""
    write_channel(tmp_path / "upstream", P, zst=True)
    server = upstream_server_factory(tmp_path / "upstream")
    site = tmp_path / "site"
    config = config_at(site, server.url, "mirror", "{names: {include: [numpy, nunpy]}}")
    first = await mirror(config)
    assert [u.entry for u in first.mirrors[0].unmatched] == ["nunpy"]
    for path in (tmp_path / "upstream").glob("*/repodata.json*"):
        path.write_bytes(b"<html>maintenance</html>")

    report = await run_mirror(config, MirrorOptions(progress=False))

    assert report.mirrors[0].errors and report.mirrors[0].unmatched == []
