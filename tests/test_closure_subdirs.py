"""The dependency closure across subdirs: a noarch record's dependencies for each platform of
its channel, a platform record's in its own subdir and noarch only."""

from __future__ import annotations

import pytest

from testkit.closure import close, kept, selection
from testkit.records import rec

pytestmark = pytest.mark.unit

LINUX = ("linux-64",)


def test_noarch_record_needs_platform_dependency():
    cf = selection(
        "cf",
        [
            rec("tool", subdir="noarch", depends=("libx >=2",)),
            rec("libx", "2.0", subdir="linux-64"),
            rec("libx", "1.0", subdir="linux-64"),
            rec("libx", "2.0", subdir="osx-64"),
        ],
        allow=("tool",),
        subdirs=("linux-64", "osx-64", "noarch"),
    )
    report = close(cf)
    assert kept(cf, "noarch") == {"tool-1.0-0.conda"}
    assert kept(cf, "linux-64") == {"libx-2.0-0.conda"}
    assert kept(cf, "osx-64") == {"libx-2.0-0.conda"}
    why = "needed by tool-1.0-0.conda (libx >=2)"
    assert report.added == {
        "cf": [
            ("linux-64", "libx-2.0-0.conda", why, "cf"),
            ("osx-64", "libx-2.0-0.conda", why, "cf"),
        ]
    }


def test_platform_record_looks_in_own_subdir_and_noarch_only():
    cf = selection(
        "cf",
        [
            rec("app", depends=("pure", "osxonly")),
            rec("pure", subdir="noarch"),
            rec("osxonly", subdir="osx-64"),
        ],
        allow=("app",),
        subdirs=("linux-64", "osx-64", "noarch"),
    )
    report = close(cf)
    assert kept(cf, "noarch") == {"pure-1.0-0.conda"}
    assert kept(cf, "osx-64") == set()
    assert report.unsatisfied == {"cf": [("linux-64", "osxonly", "app-1.0-0.conda")]}


def test_noarch_record_resolves_each_platform_in_its_own_mirror_order():
    # One channel of two mirrors: the own builds have libx for osx-64 only, the second mirror
    # has it for linux-64 (and osx-64). A linux-64 client finds no libx in the own mirror's
    # linux-64 or noarch, so strict priority takes the second mirror's; an osx-64 client
    # takes the own build and never sees the second mirror's.
    both = ("linux-64", "osx-64")
    own = selection(
        "builds",
        [rec("tool", subdir="noarch", depends=("libx",)), rec("libx", subdir="osx-64")],
        allow=("tool",),
        subdirs=("osx-64", "noarch"),
        platforms=both,
    )
    forge = selection(
        "forge",
        [rec("libx", "2.0", subdir="linux-64"), rec("libx", "2.0", subdir="osx-64")],
        include_dependencies=False,
        allow=("other",),
        subdirs=("linux-64", "osx-64", "noarch"),
        platforms=both,
    )
    report = close(own, forge)
    assert kept(own, "osx-64") == {"libx-1.0-0.conda"}
    assert kept(forge, "linux-64") == {"libx-2.0-0.conda"}
    assert kept(forge, "osx-64") == set()
    why = "needed by tool-1.0-0.conda (libx)"
    assert report.added == {
        "builds": [("osx-64", "libx-1.0-0.conda", why, "builds")],
        "forge": [("linux-64", "libx-2.0-0.conda", why, "builds")],
    }
    assert report.unsatisfied == {}


def test_noarch_dependency_missing_for_some_platforms_is_reported_for_each():
    cf = selection(
        "cf",
        [
            rec("tool", subdir="noarch", depends=("libx >=2", "gone")),
            rec("libx", "2.0", subdir="linux-64"),
            rec("libx", "1.0", subdir="osx-64"),
        ],
        allow=("tool",),
        subdirs=("linux-64", "osx-64", "win-64", "noarch"),
    )
    report = close(cf)
    assert kept(cf, "linux-64") == {"libx-2.0-0.conda"}
    # Missing everywhere: once, under noarch; missing for some platforms: for each of them.
    assert report.unsatisfied == {
        "cf": [
            ("noarch", "gone", "tool-1.0-0.conda"),
            ("noarch (osx-64)", "libx >=2", "tool-1.0-0.conda"),
            ("noarch (win-64)", "libx >=2", "tool-1.0-0.conda"),
        ]
    }


def test_noarch_dependencies_resolve_for_the_platforms_of_their_channel():
    # cloud/a serves linux-64, cloud/b osx-64 and cloud/c linux-64, in this order. A noarch
    # record of cloud/a needs libx for linux-64 only: b has none there, so c's is taken; b's
    # osx-64 build is not pulled in for it (b's channel serves what a's clients never ask).
    a = selection(
        "a", [rec("tool", subdir="noarch", depends=("libx",))], allow=("tool",), platforms=LINUX
    )
    b = selection(
        "b",
        [rec("libx", "2.0", subdir="osx-64"), rec("z", subdir="osx-64")],
        allow=("z",),
        subdirs=("osx-64", "noarch"),
        platforms=("osx-64",),
    )
    c = selection("c", [rec("libx"), rec("y")], allow=("y",), platforms=LINUX)
    report = close(a, b, c)
    assert kept(c) == {"y-1.0-0.conda", "libx-1.0-0.conda"}
    assert kept(b, "osx-64") == {"z-1.0-0.conda"}
    assert report.unsatisfied == {}


def test_noarch_dependency_takes_the_newest_versions_of_each_platform():
    cf = selection(
        "cf",
        [
            rec("tool", subdir="noarch", depends=("libx",)),
            rec("libx", "3.0", subdir="linux-64"),
            rec("libx", "2.0", subdir="linux-64"),
            rec("libx", "2.0", subdir="osx-64"),
        ],
        allow=("tool",),
        newest=1,
        subdirs=("linux-64", "osx-64", "noarch"),
    )
    report = close(cf)
    assert kept(cf, "linux-64") == {"libx-3.0-0.conda"}
    assert kept(cf, "osx-64") == {"libx-2.0-0.conda"}
    assert report.unsatisfied == {}
