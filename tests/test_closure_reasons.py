"""Why the dependency closure left a dependency unsatisfied: upstream lacks it, or the filters
left its matching records out (their reason), or a gated channel has not approved them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sitegen.config import FilterSpec
from sitegen.filters.apply import REASON_BUILD_EXCLUDED, REASON_LICENSE_EXCLUDED
from sitegen.sync.closure_reasons import (
    NO_MATCH_UPSTREAM,
    NOT_APPROVED,
    NOT_UPSTREAM,
    REASONS_SHOWN,
    reason_text,
)
from testkit.closure import close, selection
from testkit.records import rec

pytestmark = pytest.mark.unit


def test_each_unsatisfied_dependency_says_why():
    cf = selection(
        "cf",
        [
            rec("app", depends=("missing", "gpl-lib", "lib >=2", "old <1")),
            rec("gpl-lib", license="GPL-3.0-only"),
            # The only lib matching `lib >=2` is a CUDA build, which the filters leave out.
            rec("lib", "1.0"),
            rec("lib", "2.0", "cuda_0"),
            rec("old", "1.0"),
        ],
        allow=("app",),
        filters=FilterSpec(exclude_licenses=("GPL*",), exclude_builds=("cuda*",)),
    )
    report = close(cf)
    assert report.reasons == {
        "cf": {
            ("linux-64", "missing"): NOT_UPSTREAM,
            ("linux-64", "gpl-lib"): REASON_LICENSE_EXCLUDED,
            ("linux-64", "lib >=2"): REASON_BUILD_EXCLUDED,
            ("linux-64", "old <1"): NO_MATCH_UPSTREAM,
        }
    }


def test_a_noarch_dependency_missing_for_a_platform_says_why_there():
    cf = selection(
        "cf",
        [
            rec("app", subdir="noarch", depends=("lib",)),
            rec("lib", subdir="osx-64", license="GPL-3.0-only"),
        ],
        allow=("app",),
        subdirs=("linux-64", "osx-64", "noarch"),
        filters=FilterSpec(exclude_licenses=("GPL*",)),
    )
    report = close(cf)
    assert report.reasons == {
        "cf": {("noarch", "lib"): f"{REASON_LICENSE_EXCLUDED}, {NOT_UPSTREAM}"}
    }


def test_a_higher_priority_mirror_names_its_filters_reason():
    # "first" has lib >=2 only as a GPL build its filters drop; "second" keeps an older lib,
    # where the name resolves. Both say why.
    first = selection(
        "first",
        [rec("app", depends=("lib >=2",)), rec("lib", "2.0", license="GPL-3.0-only")],
        allow=("app",),
        filters=FilterSpec(exclude_licenses=("GPL*",)),
    )
    second = selection("second", [rec("lib", "1.0")], include_dependencies=False)
    report = close(first, second)
    assert report.reasons == {"first": {("linux-64", "lib >=2"): REASON_LICENSE_EXCLUDED}}


def test_a_gated_channels_records_not_approved_say_so():
    # The gated channel's allowlist is its approvals; nothing is added to it.
    gated = selection(
        "gated", [rec("app", depends=("lib",)), rec("lib")], allow=("app",), newest=None
    )
    for result in gated.results.values():
        result.candidates.clear()
    gated = replace(gated, include_dependencies=False, gated=True)
    user = selection("user", [rec("tool", depends=("app",))], allow=("tool",))
    report = close(gated, user)
    assert report.reasons == {"gated": {("linux-64", "lib"): NOT_APPROVED}}


def test_many_reasons_are_cut_short():
    reasons = [f"advisory GHSA-{i}" for i in range(REASONS_SHOWN + 2)]
    assert reason_text(reasons) == f"{', '.join(reasons[:REASONS_SHOWN])} and 2 more"
