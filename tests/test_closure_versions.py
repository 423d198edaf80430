"""The versions of a needed name the dependency closure adds: within ``newest_versions``, what
the needing build can install beside, what a constraint between kept names allows."""

from __future__ import annotations

import pytest

from sitegen.sync.closure_model import DependencyReport
from testkit.closure import close, kept, selection
from testkit.records import rec

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- newest versions


def test_newest_versions_limits_added_dependencies():
    cf = selection(
        "cf",
        [
            rec("app", depends=("b",)),
            rec("b", "1.0"),
            rec("b", "1.1"),
            rec("b", "1.2", "0"),
            rec("b", "1.2", "1"),
            rec("b", "1.2", "1", ext=".tar.bz2"),
        ],
        allow=("app",),
        newest=2,
    )
    report = close(cf)
    assert kept(cf) == {
        "app-1.0-0.conda",
        "b-1.1-0.conda",
        "b-1.2-0.conda",
        "b-1.2-1.conda",
        "b-1.2-1.tar.bz2",
    }
    assert [a.fn for a in report.added["cf"]] == [
        "b-1.1-0.conda",
        "b-1.2-0.conda",
        "b-1.2-1.conda",
        "b-1.2-1.tar.bz2",
    ]
    assert set(cf.results["linux-64"].candidates) == {"b-1.0-0.conda"}


def test_newest_versions_add_an_older_dependency_the_needing_build_can_install_beside():
    # ignite's py35 build needs a torch for python 3.5: the newest torch is for 3.8 only.
    cf = selection(
        "cf",
        [
            rec("ignite", "0.4", "py35", depends=("python 3.5.*", "torch")),
            rec("ignite", "0.4", "py38", depends=("python 3.8.*", "torch")),
            rec("torch", "1.0", "py35", depends=("python 3.5.*",)),
            rec("torch", "1.1", "py35", depends=("python 3.5.*",)),
            rec("torch", "2.0", "py38", depends=("python 3.8.*",)),
            rec("python", "3.5.4"),
            rec("python", "3.8.1"),
        ],
        allow=("ignite",),
        newest=1,
    )
    report = close(cf)
    assert kept(cf) >= {"torch-2.0-py38.conda", "torch-1.1-py35.conda", "python-3.5.4-0.conda"}
    assert "torch-1.0-py35.conda" not in kept(cf)
    assert report.unsatisfied == {}


def test_newest_versions_with_conda_ordering_and_narrow_specs():
    cf = selection(
        "cf",
        [
            rec("app", depends=("b",)),
            rec("tool", depends=("b >=1.0", "b <1.10")),
            rec("b", "1.9"),
            rec("b", "1.10"),
            rec("b", "1.0.post1"),
            rec("b", "1.0"),
        ],
        allow=("app", "tool"),
        newest=1,
    )
    close(cf)
    # "b" and "b >=1.0" both want 1.10 (1.10 > 1.9); "b <1.10" wants the newest below it.
    assert kept(cf) == {"app-1.0-0.conda", "tool-1.0-0.conda", "b-1.10-0.conda", "b-1.9-0.conda"}


def test_satisfied_by_kept_record_still_adds_matching_candidates():
    cf = selection(
        "cf",
        [
            rec("app", depends=("lib",)),
            rec("lib", "1.0"),
            rec("lib", "2.0", "0"),
            rec("lib", "2.0", "1"),
        ],
        allow=("app",),
        specs=("lib 1.0",),
    )
    assert kept(cf) == {"app-1.0-0.conda", "lib-1.0-0.conda"}
    report = close(cf)
    assert kept(cf) == {"app-1.0-0.conda", "lib-1.0-0.conda", "lib-2.0-0.conda", "lib-2.0-1.conda"}
    why = "needed by app-1.0-0.conda (lib)"
    assert report.added == {
        "cf": [
            ("linux-64", "lib-2.0-0.conda", why, "cf"),
            ("linux-64", "lib-2.0-1.conda", why, "cf"),
        ]
    }
    assert report.unsatisfied == {}


def test_newest_versions_counts_kept_records_too():
    # With N=1 the mirror already serves lib's newest version, so nothing older is added.
    cf = selection(
        "cf",
        [rec("app", depends=("lib >=1",)), rec("lib", "1.0"), rec("lib", "2.0"), rec("lib", "0.5")],
        allow=("app", "lib"),
        newest=1,
    )
    assert set(cf.results["linux-64"].candidates) == {"lib-1.0-0.conda", "lib-0.5-0.conda"}
    report = close(cf)
    assert kept(cf) == {"app-1.0-0.conda", "lib-2.0-0.conda"}
    assert report == DependencyReport()


# --------------------------------------------------------------------------- builds and constraints


@pytest.mark.parametrize("spec", ["lib", "lib >=1", "lib >=1 h*"])
def test_a_build_rattler_refuses_neither_satisfies_nor_hides_its_version(spec: str):
    # "a-b" is no build string to rattler (CEP-26), and its file sorts before the sound build.
    cf = selection(
        "cf",
        [rec("app", depends=(spec,)), rec("lib", "1.0", "a-b"), rec("lib", "1.0", "h0")],
        allow=("app",),
    )
    report = close(cf)
    assert kept(cf) == {"app-1.0-0.conda", "lib-1.0-h0.conda"}
    assert report.unsatisfied == {}


def test_a_constraint_between_kept_names_adds_what_it_allows():
    # Nothing depends on zlib, but a client may ask for lib and zlib together: lib 2.0 rules
    # out the one zlib newest_versions keeps, so the zlib it allows comes in for it.
    cf = selection(
        "cf",
        [
            rec("lib", "2.0", constrains=["zlib <1.3"]),
            rec("lib", "1.0"),
            rec("zlib", "1.3"),
            rec("zlib", "1.2"),
            rec("zlib", "1.1"),
        ],
        allow=("lib", "zlib"),
        newest=1,
    )
    report = close(cf)
    assert kept(cf) == {"lib-2.0-0.conda", "zlib-1.3-0.conda", "zlib-1.2-0.conda"}
    why = "for a constraint of lib-2.0-0.conda (zlib <1.3)"
    assert report.added == {"cf": [("linux-64", "zlib-1.2-0.conda", why, "cf")]}
    assert report.unsatisfied == {}


def test_a_constraint_adds_what_it_allows_of_a_needed_name_only():
    cf = selection(
        "cf",
        [
            rec("app", depends=("lib", "zlib")),
            rec("app2", depends=("lib", "zlib >=1.3")),
            rec("tool", constrains=["other >=2"]),
            rec("lib", "2.0", constrains=["zlib <1.3"]),
            rec("lib", "1.0"),
            rec("zlib", "1.3"),
            rec("zlib", "1.2"),
            rec("other", "2.0"),
        ],
        allow=("app", "app2", "tool"),
        newest=1,
    )
    close(cf)
    # zlib 1.2 installs beside lib 2.0, lib 1.0 beside app2's zlib; nothing needs `other`.
    assert kept(cf) == {
        "app-1.0-0.conda",
        "app2-1.0-0.conda",
        "tool-1.0-0.conda",
        "lib-2.0-0.conda",
        "lib-1.0-0.conda",
        "zlib-1.3-0.conda",
        "zlib-1.2-0.conda",
    }
