"""What the dependency closure reports: the specs left unsatisfied, the ones it skips, and the
same report and selections for the same input."""

from __future__ import annotations

import pytest

from sitegen.conda.version import RecordMatcher
from sitegen.sync.closure import close_dependencies
from sitegen.sync.closure_model import DependencyReport, MirrorSelection
from testkit.closure import close, kept, selection
from testkit.records import rec

pytestmark = pytest.mark.unit


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
