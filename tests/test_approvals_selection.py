"""Approvals: what entries approve (with the dependency closure), expiry, what waits, and the
page models."""

from __future__ import annotations

import pytest

from sitegen.approvals.commands import grant
from sitegen.approvals.pages import approved_page, pending_page
from sitegen.conda.version import RecordMatcher
from sitegen.config import ConfigError, FilterSpec, load_config
from sitegen.config.approval_model import parse_expiry
from sitegen.filters.apply import REASON_LICENSE_EXCLUDED
from sitegen.sync.approvals import admissible, approve, pending
from sitegen.sync.closure_reasons import NO_MATCH_UPSTREAM, NOT_UPSTREAM
from testkit.approvals import CANDIDATES, CONFIG, GATED, NOW, entry
from testkit.records import JAN_2024, rec

pytestmark = pytest.mark.unit


def files(approved) -> set[str]:
    return {fn for _subdir, fn in approved.records}


# --------------------------------------------------------------------------- selection


def test_entries_approve_matches_and_with_dependencies_their_closure():
    matcher = RecordMatcher()
    plain = approve(CANDIDATES, [entry("numpy 2.1.0")], NOW, matcher)
    assert files(plain) == {"numpy-2.1.0-py312_0.conda"}
    assert plain.dependencies == {}
    deep = approve(CANDIDATES, [entry("numpy 2.1.0", with_dependencies=True)], NOW, matcher)
    assert files(deep) == {
        "numpy-2.1.0-py312_0.conda",
        "python-3.12.4-0.conda",
        "libopenblas-0.3.27-0.conda",
        "zlib-1.3.1-0.conda",
    }
    assert set(deep.dependencies) == {
        ("linux-64", "python-3.12.4-0.conda"),
        ("linux-64", "libopenblas-0.3.27-0.conda"),
        ("linux-64", "zlib-1.3.1-0.conda"),
    }
    # noarch ↔ platform: pip needs python from linux-64.
    both = approve(CANDIDATES, [entry("pip", with_dependencies=True)], NOW, matcher)
    assert ("linux-64", "python-3.12.4-0.conda") in both.records


def test_an_entry_by_checksum_approves_that_file():
    pinned = rec("zlib", "1.3.1", "h1_0", sha256="2" * 64)
    candidates = {"linux-64": {**CANDIDATES["linux-64"], pinned.fn: pinned}}
    approved = approve(candidates, [entry(f"zlib[sha256={'2' * 64}]")], NOW, RecordMatcher())
    assert files(approved) == {pinned.fn}


def test_a_spec_that_would_match_every_build_is_refused_by_approve(tmp_path):
    path = tmp_path / "channels.yaml"
    path.write_text(CONFIG)
    with pytest.raises(ConfigError, match=r"\[fn=\.\.\.\]"):
        grant(lambda: load_config(path), GATED, "zlib[fn=zlib-1.3.1-0.conda]", by="a", why="b")
    assert not (tmp_path / "approvals.yaml").exists()


def test_expired_entries_approve_nothing():
    lapsed = entry("numpy", expires="2026-12-04")
    today = entry("readline", expires="2026-12-05")  # valid through that day
    approved = approve(CANDIDATES, [lapsed, today], NOW, RecordMatcher())
    assert files(approved) == {"readline-8.2-0.conda"}
    assert parse_expiry("2026-12-05") == NOW + 86400
    assert parse_expiry("2026-12-05T12:00:00Z") == NOW + 43200


def test_pending_lists_newest_first_with_what_approving_adds():
    matcher = RecordMatcher()
    approved = approve(CANDIDATES, [entry("python 3.12.4")], NOW, matcher)
    items = pending(CANDIDATES, approved, matcher, limit=2)
    assert [i.record.fn for i in items[:3]] == [
        "readline-8.2-0.conda",
        "numpy-2.1.0-py312_0.conda",
        "libopenblas-0.3.27-0.conda",
    ]
    assert items[0].would_add == ()
    # python 3.12.4 is approved already: only what is not yet approved is listed.
    assert items[1].would_add == (
        ("linux-64", "libopenblas-0.3.27-0.conda"),
        ("linux-64", "zlib-1.3.1-0.conda"),
    )
    assert items[2].would_add == ()  # past the limit: not worked out
    assert "python-3.12.4-0.conda" not in {i.record.fn for i in items}


def test_pending_says_why_a_candidate_would_lack_a_dependency_as_the_run_does():
    matcher = RecordMatcher()
    app = rec("app", depends=["missing", "zlib >=9"])
    tool = rec("tool", subdir="noarch", depends=["lib"])
    # lib is there for linux-64 only, where the gated channel's filters refuse its licence:
    # what a noarch record needs is looked for on each platform, as a run looks for it.
    lib = rec("lib", license="GPL-3.0-only")
    zlib = rec("zlib", "1.3.1")
    candidates = {
        "linux-64": {r.fn: r for r in (app, lib, zlib)},
        "noarch": {tool.fn: tool},
    }
    admitted = admissible(candidates, (FilterSpec(exclude_licenses=("GPL*",)),), matcher)
    approved = approve(candidates, [], NOW, matcher)
    items = pending(admitted.publishable, approved, matcher, left_out=admitted.left_out)
    lacks = {item.record.name: item.would_lack for item in items}
    assert lacks["app"] == (f"missing ({NOT_UPSTREAM})", f"zlib >=9 ({NO_MATCH_UPSTREAM})")
    assert lacks["tool"] == (f"lib ({REASON_LICENSE_EXCLUDED})",)


def test_page_models():
    matcher = RecordMatcher()
    entries = [entry("numpy 2.1.0", with_dependencies=True), entry("zlib", expires="2026-01-01")]
    approved = approve(CANDIDATES, entries, NOW, matcher)
    page = approved_page(GATED, entries, approved, NOW)
    assert [(r.spec, r.expired, r.files) for r in page.rows] == [
        ("numpy 2.1.0", False, (("linux-64/numpy-2.1.0-py312_0.conda", ""),)),
        ("zlib", True, ()),
    ]
    assert page.rows[0].by == "alice" and page.rows[0].why == "needed"
    assert [f for f, _why in page.dependencies] == [
        "linux-64/libopenblas-0.3.27-0.conda",
        "linux-64/python-3.12.4-0.conda",
        "linux-64/zlib-1.3.1-0.conda",
    ]
    assert all(why.startswith("needed by") for _f, why in page.dependencies)
    waiting_page = pending_page(GATED, "cloud/forge", pending(CANDIDATES, approved, matcher))
    first = waiting_page.rows[0]
    assert (first.name, first.version, first.license, first.size) == (
        "readline",
        "8.2",
        "MIT",
        1000,
    )
    assert first.timestamp_ms == JAN_2024 + 5
