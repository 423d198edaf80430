"""A gated channel whose own filters leave out a dependency of what is approved: the run, the
pending and approved pages and a frozen channel's report say what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.layout import approved_page_path, pending_page_path, run_page_path
from sitegen.store.site import Site
from sitegen.sync.history import History
from testkit.approvals import GATED, write_config
from testkit.site import published
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


def zlib_refused(tmp_path: Path, url: str) -> tuple[list[str], Path]:
    """The gated channel with its own filters refusing zlib (licence "Zlib", which
    libopenblas needs), its source mirrored twice: the CLI's config arguments and the site."""
    config = write_config(tmp_path, url)
    config.write_text(config.read_text() + "    filters: {licenses: {exclude: [Zlib]}}\n")
    args = ["-c", str(config)]
    assert main(["mirror", *args, "--no-progress"]) == 0
    assert main(["mirror", *args, "--no-progress"]) == 0
    return args, tmp_path / "site"


def test_a_dependency_the_gated_channels_filters_leave_out_is_reported_unsatisfied(
    example_upstream: ExampleUpstream, tmp_path: Path, caplog
) -> None:
    # zlib (licence "Zlib") is what libopenblas needs; the gated channel's own filters refuse it.
    args, site = zlib_refused(tmp_path, example_upstream.url)
    approve = ["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", "forecasting"]
    assert main([*approve, "--with-dependencies"]) == 0
    lacks = "zlib >=1.2.13,<2.0a0 (license excluded)"
    assert f"needs what internal/approved does not publish: {lacks}; see the run's" in caplog.text
    names = {fn.rsplit("-", 2)[0] for fn in published(site, GATED, "linux-64")}
    assert names == {"numpy", "python", "libopenblas"}
    latest = History(Site(site)).runs()[0]
    (gated,) = latest.mirrors
    blas = "libopenblas-0.3.27-pthreads_hefa10cb_0"
    assert [(u.subdir, u.spec, u.needed_by, u.reason) for u in gated.unsatisfied] == [
        ("linux-64", "zlib >=1.2.13,<2.0a0", f"{blas}.conda", "license excluded"),
        ("linux-64", "zlib >=1.2.13,<2.0a0", f"{blas}.tar.bz2", "license excluded"),
    ]
    assert (
        "internal-approved: 2 dependencies could not be satisfied (2 license excluded)"
        in caplog.text
    )
    page = (site / run_page_path(latest.id)).read_text()
    assert "2 dependencies could not be satisfied" in page and "zlib &gt;=1.2.13" in page


def test_approve_says_why_each_dependency_would_be_lacking(
    example_upstream: ExampleUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # libopenblas approved alone: published, but not zlib, which the channel's filters refuse.
    args, _site = zlib_refused(tmp_path, example_upstream.url)
    who = [*args, "--by", "alice", "--reason", "forecasting"]
    assert main(["approve", GATED, "libopenblas", *who]) == 0
    caplog.clear()
    assert main(["approve", GATED, "numpy 2.1.0", *who]) == 0
    (warning,) = [r.getMessage() for r in caplog.records if "does not publish" in r.getMessage()]
    # python is upstream and let through, only not approved; zlib (what libopenblas needs) the
    # filters leave out: the reasons the run's dependency report gives.
    assert "python >=3.12,<3.13.0a0 (not approved)" in warning
    assert "zlib >=1.2.13,<2.0a0 (license excluded)" in warning


def test_pending_leaves_out_what_the_gated_channels_filters_drop(
    example_upstream: ExampleUpstream, tmp_path: Path, capsys
) -> None:
    args, site = zlib_refused(tmp_path, example_upstream.url)
    capsys.readouterr()
    assert main(["pending", GATED, *args]) == 0
    listing = capsys.readouterr().out
    # zlib can never be published there: neither listed nor counted among what numpy would add
    # (only named as what it would lack).
    assert "zlib-" not in listing
    assert "linux-64/numpy-2.1.0-py312hf9d485c_0.conda" in listing
    # What waits is counted as what is listed: files, not package names.
    files = [line for line in listing.splitlines() if "/" in line.split()[0]]
    assert f"{len(files)} files wait for approval" in listing
    assert "4 more are not listed: the channel's filters leave them out" in listing
    page = (site / pending_page_path(GATED)).read_text()
    assert "zlib-" not in page and "py312hf9d485c_0" in page and "libopenblas" in page
    assert "4 more of cloud/example are not listed" in page


def test_the_approved_page_marks_a_dependency_the_filters_leave_out_as_unpublished(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    args, site = zlib_refused(tmp_path, example_upstream.url)
    approve = ["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", "forecasting"]
    assert main([*approve, "--with-dependencies"]) == 0
    page = (site / approved_page_path(GATED)).read_text()
    approved, left_out = page.split("Approved as dependencies", 1)[1].split("Left out by", 1)
    # libopenblas is published beside numpy; zlib, which it needs, is not (its licence).
    assert "libopenblas-0.3.27" in approved and "zlib" not in approved
    assert "linux-64/zlib-1.3.1" in left_out and "license excluded" in left_out


def test_pending_says_what_a_candidate_would_lack_when_the_filters_drop_a_dependency(
    example_upstream: ExampleUpstream, tmp_path: Path, capsys
) -> None:
    args, site = zlib_refused(tmp_path, example_upstream.url)
    capsys.readouterr()
    assert main(["pending", GATED, *args]) == 0
    numpy = "linux-64/numpy-2.1.0-py312hf9d485c_0.conda"
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith(numpy)]
    # numpy needs libopenblas, which needs zlib: approved, numpy would not install.
    assert line.endswith("would lack: zlib >=1.2.13,<2.0a0 (license excluded)")
    page = (site / pending_page_path(GATED)).read_text()
    row = page.split("<b>numpy</b>", 1)[1].split("</tr>", 1)[0]
    assert "Would lack" in row and "zlib &gt;=1.2.13,&lt;2.0a0" in row and "license excluded" in row


def test_the_approved_page_marks_a_directly_approved_file_the_filters_leave_out(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    args, site = zlib_refused(tmp_path, example_upstream.url)
    approve = ["approve", GATED, "zlib 1.3.1", *args, "--by", "alice", "--reason", "base"]
    assert main(approve) == 0
    assert published(site, GATED, "linux-64") == set()
    page = (site / approved_page_path(GATED)).read_text()
    row = page.split('<code class="wrap-any">zlib 1.3.1</code>', 1)[1].split("</tr>", 1)[0]
    # Matched, but never published: the licence filter of the gated channel refuses it.
    assert "linux-64/zlib-1.3.1" in row
    assert "not published" in row and "license excluded" in row


def test_a_frozen_gated_channel_reports_what_its_published_packages_lack(
    example_upstream: ExampleUpstream, tmp_path: Path
) -> None:
    args, site = zlib_refused(tmp_path, example_upstream.url)
    approve = ["approve", GATED, "numpy 2.1.0", *args, "--by", "alice", "--reason", "forecasting"]
    assert main([*approve, "--with-dependencies"]) == 0
    before = published(site, GATED, "linux-64")
    assert main(["freeze", GATED, *args, "--by", "bob", "--reason", "audit"]) == 0

    assert main(["mirror", *args, "--no-progress"]) == 0

    assert published(site, GATED, "linux-64") == before
    gated = next(m for m in History(Site(site)).runs()[0].mirrors if m.name == "internal-approved")
    # What it goes on publishing still lacks zlib, as it did when the freeze began.
    blas = "libopenblas-0.3.27-pthreads_hefa10cb_0"
    assert [(u.subdir, u.spec, u.needed_by) for u in gated.unsatisfied] == [
        ("linux-64", "zlib >=1.2.13,<2.0a0", f"{blas}.conda"),
        ("linux-64", "zlib >=1.2.13,<2.0a0", f"{blas}.tar.bz2"),
    ]
