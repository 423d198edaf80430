from __future__ import annotations

import pytest

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config import FilterSpec
from sitegen.filters.apply import REASON_NOT_ALLOWED, REASON_OLDER_VERSION, apply_filters
from sitegen.sync.closure import close_dependencies
from sitegen.sync.closure_model import DependencyReport, MirrorSelection
from testkit.records import rec

pytestmark = pytest.mark.unit


def selection(
    mirror: str,
    records: list[Record],
    *,
    allow: tuple[str, ...] = (),
    specs: tuple[str, ...] = (),
    include_dependencies: bool = True,
    newest: int | None = None,
    subdirs: tuple[str, ...] = ("linux-64", "noarch"),
    platforms: tuple[str, ...] = (),
) -> MirrorSelection:
    """Filter `records` like the pipeline would: allowlist `allow`/`specs` and newest N.
    `platforms`: those of the mirror's channel (empty: every platform of the run)."""
    level = FilterSpec(include_names=allow, include_specs=specs, newest_versions=newest)
    matcher = RecordMatcher()
    results = {}
    for subdir in subdirs:
        mine = {r.fn: r for r in records if r.subdir == subdir}
        results[subdir] = apply_filters(mine, subdir, (level,), matcher)
    return MirrorSelection(mirror, include_dependencies, newest, results, platforms)


LINUX = ("linux-64",)


def close(*selections: MirrorSelection) -> DependencyReport:
    return close_dependencies(list(selections), RecordMatcher())


def kept(sel: MirrorSelection, subdir: str = "linux-64") -> set[str]:
    return set(sel.results[subdir].kept)


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


# --------------------------------------------------------------------------- subdir scope


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


# --------------------------------------------------------------------------- reports


def test_unsatisfied_report():
    cf = selection(
        "cf",
        [
            rec("app", depends=("missing >=1", "numpy >>>1", "lib 9.*", "lib")),
            rec("other", depends=("missing >=1",)),
            rec("lib", "1.0"),
        ],
        allow=("app", "other"),
    )
    report = close(cf)
    assert report.unsatisfied == {
        "cf": [
            ("linux-64", "lib 9.*", "app-1.0-0.conda"),
            ("linux-64", "missing >=1", "app-1.0-0.conda"),
            ("linux-64", "missing >=1", "other-1.0-0.conda"),
            ("linux-64", "numpy >>>1", "app-1.0-0.conda"),
        ]
    }
    assert kept(cf) == {"app-1.0-0.conda", "other-1.0-0.conda", "lib-1.0-0.conda"}


def test_a_kept_record_of_the_name_that_does_not_match_leaves_the_spec_unsatisfied():
    # lib is kept (allowlisted) but in no version the spec accepts, and no candidate matches.
    cf = selection(
        "cf", [rec("app", depends=("lib >=2",)), rec("lib", "1.0")], allow=("app", "lib")
    )
    report = close(cf)
    assert report.unsatisfied == {"cf": [("linux-64", "lib >=2", "app-1.0-0.conda")]}
    assert report.added == {}


def test_a_kept_record_of_a_mirror_without_include_dependencies_satisfies():
    # "base" serves lib already (kept, nothing to add): the dependency is met, not unsatisfied.
    app = selection("app", [rec("app", depends=("lib >=1",))], allow=("app",))
    base = selection("base", [rec("lib", "1.0")], include_dependencies=False)
    report = close(app, base)
    assert report == DependencyReport()
    assert kept(base) == {"lib-1.0-0.conda"}


def test_record_names_in_upper_case_are_found_by_lower_case_specs():
    # MatchSpec names are normalised to lower case; old channels hold names such as PyYAML.
    cf = selection("cf", [rec("app", depends=("pyyaml",)), rec("PyYAML", "6.0")], allow=("app",))
    report = close(cf)
    assert kept(cf) == {"app-1.0-0.conda", "PyYAML-6.0-0.conda"}
    assert report.unsatisfied == {}


def test_virtual_packages_are_skipped():
    cf = selection(
        "cf",
        [rec("app", depends=("__glibc >=2.17,<3.0.a0", "__cuda", "__osx >=10.13"))],
        allow=("app",),
    )
    report = close(cf)
    assert report == DependencyReport()


def test_output_is_deterministic():
    def build() -> tuple[list[MirrorSelection], DependencyReport]:
        sels = [
            selection(
                "a",
                [
                    rec("app", depends=("z", "y", "x")),
                    rec("tool", subdir="noarch", depends=("x", "w")),
                    rec("x", "1", depends=("w",)),
                    rec("x", "2", depends=("w",)),
                    rec("w", subdir="noarch"),
                ],
                allow=("app", "tool"),
            ),
            selection(
                "b", [rec("y"), rec("z"), rec("q")], allow=("q",), include_dependencies=False
            ),
        ]
        return sels, close_dependencies(sels, RecordMatcher())

    (sels1, report1), (sels2, report2) = build(), build()
    assert report1 == report2
    for one, two in zip(sels1, sels2, strict=True):
        for subdir in one.results:
            assert list(one.results[subdir].kept) == list(two.results[subdir].kept)
    assert report1.added["b"] == [
        ("linux-64", "y-1.0-0.conda", "needed by app-1.0-0.conda (y)", "a"),
        ("linux-64", "z-1.0-0.conda", "needed by app-1.0-0.conda (z)", "a"),
    ]
    assert [(a.subdir, a.fn) for a in report1.added["a"]] == [
        ("linux-64", "x-1-0.conda"),
        ("linux-64", "x-2-0.conda"),
        ("noarch", "w-1.0-0.conda"),
    ]


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
