"""The dependency closure's walk: what an allowlisted mirror's kept records bring in,
transitively, and from which mirror (strict priority, the own mirror first)."""

from __future__ import annotations

import pytest

from sitegen.conda.version import RecordMatcher
from sitegen.config import FilterSpec
from sitegen.filters.apply import REASON_NOT_ALLOWED, REASON_OLDER_VERSION, apply_filters
from sitegen.sync.closure_model import DependencyReport, MirrorSelection
from testkit.closure import close, kept, selection
from testkit.records import rec

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- basics


def test_transitive_chain():
    cf = selection(
        "cf",
        [
            rec("app", depends=("lib >=1", "python >=3.11")),
            rec("lib", "1.2", depends=("zlib 1.*",)),
            rec("lib", "0.9"),
            rec("zlib", "1.3"),
            rec("zlib", "2.0"),
            rec("python", "3.11.7"),
            rec("python", "3.10.4"),
            rec("unrelated"),
        ],
        allow=("app",),
    )
    report = close(cf)
    assert kept(cf) == {
        "app-1.0-0.conda",
        "lib-1.2-0.conda",
        "zlib-1.3-0.conda",
        "python-3.11.7-0.conda",
    }
    assert report.added == {
        "cf": [
            ("linux-64", "lib-1.2-0.conda", "needed by app-1.0-0.conda (lib >=1)", "cf"),
            (
                "linux-64",
                "python-3.11.7-0.conda",
                "needed by app-1.0-0.conda (python >=3.11)",
                "cf",
            ),
            ("linux-64", "zlib-1.3-0.conda", "needed by lib-1.2-0.conda (zlib 1.*)", "cf"),
        ]
    }
    assert report.unsatisfied == {}
    result = cf.results["linux-64"]
    assert set(result.candidates) == {
        "lib-0.9-0.conda",
        "zlib-2.0-0.conda",
        "python-3.10.4-0.conda",
        "unrelated-1.0-0.conda",
    }
    assert set(result.excluded) == set(result.candidates)
    assert set(result.excluded.values()) == {REASON_NOT_ALLOWED}


def test_without_include_dependencies_nothing_changes():
    cf = selection(
        "cf", [rec("app", depends=("lib",)), rec("lib")], allow=("app",), include_dependencies=False
    )
    report = close(cf)
    assert report == DependencyReport()
    assert kept(cf) == {"app-1.0-0.conda"}
    assert set(cf.results["linux-64"].candidates) == {"lib-1.0-0.conda"}


def test_dependency_cycle_terminates():
    cf = selection(
        "cf",
        [rec("app", depends=("a",)), rec("a", depends=("b",)), rec("b", depends=("a", "app"))],
        allow=("app",),
    )
    report = close(cf)
    assert kept(cf) == {"app-1.0-0.conda", "a-1.0-0.conda", "b-1.0-0.conda"}
    assert [a.fn for a in report.added["cf"]] == ["a-1.0-0.conda", "b-1.0-0.conda"]


def test_hard_excluded_records_are_never_added():
    records = [rec("app", depends=("lib",)), rec("lib", size=10**9)]
    level = FilterSpec(include_names=("app",), max_size=10**6)
    results = {
        "linux-64": apply_filters({r.fn: r for r in records}, "linux-64", (level,), RecordMatcher())
    }
    cf = MirrorSelection("cf", True, None, results)
    report = close(cf)
    assert kept(cf) == {"app-1.0-0.conda"}
    assert report.unsatisfied == {"cf": [("linux-64", "lib", "app-1.0-0.conda")]}


# --------------------------------------------------------------------------- mirrors


def test_cross_mirror_resolution_follows_priority():
    first = selection(
        "first",
        [rec("app", depends=("b", "c >=2", "d")), rec("c", "1.0")],
        allow=("app",),
    )
    second = selection(
        "second", [rec("b", "1.0"), rec("x")], allow=("x",), include_dependencies=False
    )
    third = selection(
        "third",
        [rec("b", "2.0"), rec("c", "2.0"), rec("d", depends=("e",)), rec("e"), rec("y")],
        allow=("y",),
        include_dependencies=False,
    )
    report = close(first, second, third)
    # b: not in "first", so the first other mirror in config order that has the name.
    assert kept(second) == {"x-1.0-0.conda", "b-1.0-0.conda"}
    # c: "first" has the name, so strict priority never looks further, even though only
    # "third" has a matching version.
    assert kept(first) == {"app-1.0-0.conda"}
    # d comes from "third", and its own dependency e is walked although "third" does not
    # ask for dependencies.
    assert kept(third) == {"y-1.0-0.conda", "d-1.0-0.conda", "e-1.0-0.conda"}
    assert report.added == {
        "second": [("linux-64", "b-1.0-0.conda", "needed by app-1.0-0.conda (b)", "first")],
        "third": [
            ("linux-64", "d-1.0-0.conda", "needed by app-1.0-0.conda (d)", "first"),
            ("linux-64", "e-1.0-0.conda", "needed by d-1.0-0.conda (e)", "third"),
        ],
    }
    assert report.unsatisfied == {"first": [("linux-64", "c >=2", "app-1.0-0.conda")]}


def test_own_mirror_wins_over_earlier_mirror():
    first = selection(
        "first", [rec("lib", "9.0"), rec("z")], allow=("z",), include_dependencies=False
    )
    second = selection("second", [rec("app", depends=("lib",)), rec("lib", "1.0")], allow=("app",))
    report = close(first, second)
    assert kept(first) == {"z-1.0-0.conda"}
    assert kept(second) == {"app-1.0-0.conda", "lib-1.0-0.conda"}
    assert list(report.added) == ["second"]


def test_kept_record_of_other_mirror_is_walked():
    # "base" has no allowlist but keeps only the newest openssl; python needs the older one.
    app = selection("app", [rec("app", depends=("python",))], allow=("app",))
    base = selection(
        "base",
        [
            rec("python", "3.11", depends=("openssl <3",)),
            rec("openssl", "3.2"),
            rec("openssl", "1.1.1"),
        ],
        include_dependencies=False,
        newest=1,
    )
    assert base.results["linux-64"].excluded == {"openssl-1.1.1-0.conda": REASON_OLDER_VERSION}
    report = close(app, base)
    assert kept(base) == {"python-3.11-0.conda", "openssl-3.2-0.conda", "openssl-1.1.1-0.conda"}
    assert report.added == {
        "base": [
            (
                "linux-64",
                "openssl-1.1.1-0.conda",
                "needed by python-3.11-0.conda (openssl <3)",
                "base",
            )
        ]
    }
    assert base.results["linux-64"].excluded == {}
