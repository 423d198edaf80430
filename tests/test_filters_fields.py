"""Filters by a record's build, licence, date, size and format, applied to records built by
hand."""

from __future__ import annotations

import pytest

from sitegen.conda.records import Record
from sitegen.config import FilterSpec
from sitegen.filters import apply as f
from testkit.filters import DAY_MS, kept, run
from testkit.records import JAN_2024, rec

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- builds


def test_exclude_py2_builds():
    records = [
        rec("six", "1.16.0", "py27_0"),
        rec("six", "1.16.0", "py2_1"),
        rec("six", "1.16.0", "py311_0"),
        rec("six", "1.16.0", "pyhd8ed1ab_0"),
    ]
    result = run(records, FilterSpec(exclude_builds=("py2*",)))
    assert kept(result) == {"six-1.16.0-py311_0.conda", "six-1.16.0-pyhd8ed1ab_0.conda"}
    assert result.excluded == {
        "six-1.16.0-py27_0.conda": f.REASON_BUILD_EXCLUDED,
        "six-1.16.0-py2_1.conda": f.REASON_BUILD_EXCLUDED,
    }


def test_include_builds():
    records = [rec("a", build="cuda_0"), rec("a", build="cpu_0"), rec("b", build="h123_0")]
    result = run(records, FilterSpec(include_builds=("cuda*", "h*")))
    assert kept(result) == {"a-1.0-cuda_0.conda", "b-1.0-h123_0.conda"}
    assert result.excluded == {"a-1.0-cpu_0.conda": f.REASON_BUILD_NOT_INCLUDED}
    assert result.candidates == {}


def test_build_globs_compare_in_any_case_as_a_spec_and_conda_mirror_do():
    # conda-mirror's `build: 'PY2*'` translates to builds.exclude (or a spec `six * PY2*`);
    # each must leave out what conda-mirror did, and what the other leaves out.
    records = [
        rec("six", "1.16.0", "py27_0"),
        rec("six", "1.16.0", "Py2_1"),
        rec("six", "2", "h1_0"),
    ]
    py2 = {"six-1.16.0-py27_0.conda", "six-1.16.0-Py2_1.conda"}
    by_spec = run(records, FilterSpec(exclude_specs=("six * PY2*",)))
    assert set(by_spec.excluded) == py2
    result = run(records, FilterSpec(exclude_builds=("PY2*",)))
    assert result.excluded == dict.fromkeys(py2, f.REASON_BUILD_EXCLUDED)
    assert kept(run(records, FilterSpec(include_builds=("PY2*",)))) == py2


def test_build_exclude_is_checked_before_include():
    records = [rec("a", build="py27_cuda")]
    result = run(records, FilterSpec(include_builds=("*cuda",), exclude_builds=("py2*",)))
    assert result.excluded == {"a-1.0-py27_cuda.conda": f.REASON_BUILD_EXCLUDED}


# --------------------------------------------------------------------------- licenses


def license_records() -> list[Record]:
    absent = rec("none")
    del absent.raw["license"]
    return [
        rec("mit", license="MIT"),
        rec("gpl", license="GPL-3.0-or-later", license_family="GPL3"),
        rec("agpl", license="AGPL-3.0-only", license_family="AGPL"),
        rec("lgpl", license="LGPL-2.1", license_family="LGPL"),
        absent,
        rec("empty", license="  "),
        rec("null", license=None),
    ]


def test_license_missing_allowed_by_default():
    result = run(license_records(), FilterSpec(exclude_licenses=("*agpl*",)))
    assert result.excluded == {"agpl-1.0-0.conda": f.REASON_LICENSE_EXCLUDED}


def test_license_missing_rejected():
    result = run(license_records(), FilterSpec(allow_missing_license=False))
    assert result.excluded == {
        "none-1.0-0.conda": f.REASON_LICENSE_MISSING,
        "empty-1.0-0.conda": f.REASON_LICENSE_MISSING,
        "null-1.0-0.conda": f.REASON_LICENSE_MISSING,
    }


def test_license_exclude_gpl_keeps_lgpl():
    result = run(license_records(), FilterSpec(exclude_licenses=("gpl*", "agpl*")))
    assert kept(result) == {
        "mit-1.0-0.conda",
        "lgpl-1.0-0.conda",
        "none-1.0-0.conda",
        "empty-1.0-0.conda",
        "null-1.0-0.conda",
    }
    assert result.excluded == {
        "gpl-1.0-0.conda": f.REASON_LICENSE_EXCLUDED,
        "agpl-1.0-0.conda": f.REASON_LICENSE_EXCLUDED,
    }


def test_license_include_applies_to_present_licenses_only():
    result = run(license_records(), FilterSpec(include_licenses=("mit", "*lgpl*")))
    assert result.excluded == {
        "gpl-1.0-0.conda": f.REASON_LICENSE_NOT_INCLUDED,
        "agpl-1.0-0.conda": f.REASON_LICENSE_NOT_INCLUDED,
    }
    strict = FilterSpec(include_licenses=("mit",), allow_missing_license=False)
    assert run(license_records(), strict).excluded["none-1.0-0.conda"] == f.REASON_LICENSE_MISSING


def test_license_family():
    result = run(license_records(), FilterSpec(exclude_license_families=("agpl", "gpl*")))
    assert result.excluded == {
        "gpl-1.0-0.conda": f.REASON_LICENSE_FAMILY,
        "agpl-1.0-0.conda": f.REASON_LICENSE_FAMILY,
    }


def test_license_checks_in_order():
    record = rec("x", license="AGPL-3.0", license_family="AGPL")
    level = FilterSpec(
        exclude_licenses=("agpl*",),
        include_licenses=("mit",),
        exclude_license_families=("agpl",),
    )
    assert run([record], level).excluded == {record.fn: f.REASON_LICENSE_EXCLUDED}
    level = FilterSpec(include_licenses=("mit",), exclude_license_families=("agpl",))
    assert run([record], level).excluded == {record.fn: f.REASON_LICENSE_NOT_INCLUDED}


# Not text: check_record refuses such a record, but one kept past its upstream listing may hold
# any value an earlier sitegen let through.
@pytest.mark.parametrize(
    "value", [7, {"spdx": "GPL-3.0"}, ["MIT"], ["MIT", "GPL-3.0"], ["MIT", 3], True]
)
def test_license_of_another_type_is_malformed_not_missing(value: object):
    record = rec("x", license=value)
    for level in (
        FilterSpec(exclude_licenses=("*gpl*",)),
        FilterSpec(include_licenses=("*",)),
        FilterSpec(allow_missing_license=False),
    ):
        assert run([record], level).excluded == {record.fn: f.REASON_LICENSE_MALFORMED}
    family = rec("y", license="MIT", license_family=value)
    level = FilterSpec(exclude_license_families=("gpl*",))
    assert run([family], level).excluded == {family.fn: f.REASON_LICENSE_MALFORMED}
    # A filter that does not read the field leaves the record alone.
    assert run([family], FilterSpec(exclude_licenses=("*gpl*",))).excluded == {}


def test_license_expression_with_an_exception_is_its_licence_and_more():
    record = rec("x", license="GPL-2.0-or-later WITH Classpath-exception-2.0")
    assert run([record], FilterSpec(include_licenses=("gpl-2.0-or-later",))).excluded == {}
    level = FilterSpec(include_licenses=("mit",))
    assert run([record], level).excluded == {record.fn: f.REASON_LICENSE_NOT_INCLUDED}


@pytest.mark.parametrize(
    "text",
    [
        "(" * 5000 + "MIT OR AGPL-3.0-only" + ")" * 5000,
        # Each level one deeper in the expression: walking it would exhaust the stack.
        "(GPL-3.0-only OR (MIT AND " * 2000 + "AGPL-3.0-only" + "))" * 2000,
    ],
    ids=["parentheses", "operators"],
)
def test_license_nested_past_reason_is_read_word_by_word(text: str):
    # Upstream writes the text: deep nesting must not exhaust the stack, nor hide a licence.
    record = rec("x", license=text)
    level = FilterSpec(exclude_licenses=("agpl*",))
    assert run([record], level).excluded == {record.fn: f.REASON_LICENSE_EXCLUDED}
    level = FilterSpec(include_licenses=("mit", "agpl*"))
    assert run([record], level).excluded == {record.fn: f.REASON_LICENSE_NOT_INCLUDED}


@pytest.mark.parametrize(
    "text",
    ["(MIT OR AGPL-3.0", "MIT/X11 OR AGPL-3.0", "AGPL-3.0 AND", "(OR AGPL-3.0", "( )) AGPL-3.0"],
)
def test_license_text_that_is_no_expression_names_its_licences_and_grants_none(text: str):
    record = rec("x", license=text)
    level = FilterSpec(exclude_licenses=("agpl*",))
    assert run([record], level).excluded == {record.fn: f.REASON_LICENSE_EXCLUDED}
    level = FilterSpec(include_licenses=("mit", "mit/x11", "agpl-3.0"))
    assert run([record], level).excluded == {record.fn: f.REASON_LICENSE_NOT_INCLUDED}


# --------------------------------------------------------------------------- dates


def test_date_range_half_open():
    after, before = JAN_2024, JAN_2024 + 10 * DAY_MS
    records = [
        rec("old", timestamp=after - 1),
        rec("first", timestamp=after),
        rec("seconds", timestamp=(after + DAY_MS) // 1000),  # old records store seconds
        rec("last", timestamp=before - 1),
        rec("new", timestamp=before),
        rec("none", timestamp=None),
    ]
    result = run(records, FilterSpec(after_ms=after, before_ms=before))
    assert kept(result) == {"first-1.0-0.conda", "seconds-1.0-0.conda", "last-1.0-0.conda"}
    assert result.excluded == {
        "old-1.0-0.conda": f.REASON_TOO_OLD,
        "new-1.0-0.conda": f.REASON_TOO_NEW,
        "none-1.0-0.conda": f.REASON_TOO_OLD,
    }


def test_missing_timestamp_passes_before_only():
    record = rec("none", timestamp=None)
    assert kept(run([record], FilterSpec(before_ms=JAN_2024))) == {record.fn}


# --------------------------------------------------------------------------- size


def test_max_size():
    records = [rec("small", size=10), rec("exact", size=500), rec("big", size=501)]
    result = run(records, FilterSpec(max_size=500))
    assert kept(result) == {"small-1.0-0.conda", "exact-1.0-0.conda"}
    assert result.excluded == {"big-1.0-0.conda": f.REASON_TOO_LARGE}


# --------------------------------------------------------------------------- formats


def format_records() -> list[Record]:
    return [
        rec("a"),
        rec("a", ext=".tar.bz2"),
        rec("b", ext=".tar.bz2"),  # no .conda twin
        rec("c"),  # no .tar.bz2 twin
    ]


@pytest.mark.parametrize(
    ("formats", "expected_kept", "expected_excluded"),
    [
        ("both", {"a-1.0-0.conda", "a-1.0-0.tar.bz2", "b-1.0-0.tar.bz2", "c-1.0-0.conda"}, {}),
        (
            "conda",
            {"a-1.0-0.conda", "c-1.0-0.conda"},
            {"a-1.0-0.tar.bz2": f.REASON_FORMAT, "b-1.0-0.tar.bz2": f.REASON_FORMAT},
        ),
        (
            "tar.bz2",
            {"a-1.0-0.tar.bz2", "b-1.0-0.tar.bz2"},
            {"a-1.0-0.conda": f.REASON_FORMAT, "c-1.0-0.conda": f.REASON_FORMAT},
        ),
        (
            "prefer-conda",
            {"a-1.0-0.conda", "b-1.0-0.tar.bz2", "c-1.0-0.conda"},
            {"a-1.0-0.tar.bz2": f.REASON_TWIN},
        ),
    ],
)
def test_formats(formats, expected_kept, expected_excluded):
    result = run(format_records(), FilterSpec(formats=formats))
    assert kept(result) == expected_kept
    assert result.excluded == expected_excluded


def test_prefer_conda_keeps_tar_when_conda_twin_is_dropped():
    records = [rec("a", size=5000), rec("a", ext=".tar.bz2", size=400)]
    result = run(records, FilterSpec(formats="prefer-conda", max_size=1000))
    assert kept(result) == {"a-1.0-0.tar.bz2"}
    assert result.excluded == {"a-1.0-0.conda": f.REASON_TOO_LARGE}


def test_prefer_conda_twin_not_in_input():
    records = [rec("a", "1.0", ext=".tar.bz2"), rec("a", "2.0")]
    result = run(records, FilterSpec(formats="prefer-conda"))
    assert kept(result) == {"a-1.0-0.tar.bz2", "a-2.0-0.conda"}


def test_prefer_conda_leaves_only_the_conda_candidate():
    records = [rec("a"), rec("a", ext=".tar.bz2"), rec("keep")]
    result = run(records, FilterSpec(formats="prefer-conda", include_names=("keep",)))
    assert kept(result) == {"keep-1.0-0.conda"}
    assert result.excluded == {
        "a-1.0-0.conda": f.REASON_NOT_ALLOWED,
        "a-1.0-0.tar.bz2": f.REASON_TWIN,
    }
    assert set(result.candidates) == {"a-1.0-0.conda"}


def test_prefer_conda_at_site_level_and_both_at_mirror():
    result = run(format_records(), FilterSpec(formats="prefer-conda"), FilterSpec(), FilterSpec())
    assert "a-1.0-0.tar.bz2" not in result.kept
