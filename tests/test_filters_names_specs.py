"""Filters by subdir, name and MatchSpec (and no filters at all), applied to records built
by hand."""

from __future__ import annotations

import pytest

from sitegen.conda.record_check import check_record
from sitegen.conda.version import RecordMatcher
from sitegen.config import FilterSpec
from sitegen.filters import apply as f
from sitegen.filters.apply import (
    FilterResult,
)
from testkit.filters import check_partition, kept, run
from testkit.records import rec

pytestmark = pytest.mark.unit


class CountingMatcher(RecordMatcher):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def matches(self, spec, record):  # type: ignore[override]
        self.names.append(record["name"])
        return super().matches(spec, record)


# --------------------------------------------------------------------------- no filters


def test_no_filters_keeps_everything_without_matchspec_work():
    records = [rec("a"), rec("a", ext=".tar.bz2"), rec("b", "2.0")]
    matcher = CountingMatcher()
    result = run(records, matcher=matcher)
    assert kept(result) == {r.fn for r in records}
    assert result.excluded == {} and result.candidates == {}
    assert matcher.names == []


def test_empty_input():
    result = run([], FilterSpec(include_names=("a",), newest_versions=1))
    assert result == FilterResult()


# --------------------------------------------------------------------------- subdirs


def test_subdir_not_selected_excludes_all_and_leaves_no_candidates():
    records = [rec("a", subdir="osx-64"), rec("b", subdir="osx-64")]
    result = run(records, FilterSpec(subdirs=("linux-64", "noarch")), subdir="osx-64")
    assert result.kept == {}
    assert set(result.excluded.values()) == {f.REASON_SUBDIR}
    assert result.candidates == {}


def test_subdir_selected_at_every_level():
    records = [rec("a")]
    levels = (FilterSpec(subdirs=("linux-64",)), FilterSpec(), FilterSpec(subdirs=("linux-64",)))
    assert kept(run(records, *levels)) == {records[0].fn}


# --------------------------------------------------------------------------- names


def test_exclude_names_glob_is_case_insensitive():
    records = [rec("python"), rec("pytest"), rec("numpy"), rec("cudatoolkit")]
    result = run(records, FilterSpec(exclude_names=("py*", "CUDA*")))
    assert kept(result) == {"numpy-1.0-0.conda"}
    assert result.excluded == {
        "python-1.0-0.conda": f.REASON_NAME,
        "pytest-1.0-0.conda": f.REASON_NAME,
        "cudatoolkit-1.0-0.conda": f.REASON_NAME,
    }
    assert result.candidates == {}


def test_include_names_allowlist_makes_candidates():
    records = [rec("numpy"), rec("scipy"), rec("pandas")]
    result = run(records, FilterSpec(include_names=("numpy", "sci?y")))
    assert kept(result) == {"numpy-1.0-0.conda", "scipy-1.0-0.conda"}
    assert result.excluded == {"pandas-1.0-0.conda": f.REASON_NOT_ALLOWED}
    assert set(result.candidates) == {"pandas-1.0-0.conda"}


# --------------------------------------------------------------------------- MatchSpecs


def test_exclude_spec_version_range():
    records = [rec("numpy", "1.23.5"), rec("numpy", "1.24.0"), rec("numpy", "1.26.4"), rec("scipy")]
    result = run(records, FilterSpec(exclude_specs=("numpy >=1.24",)))
    assert kept(result) == {"numpy-1.23.5-0.conda", "scipy-1.0-0.conda"}
    assert result.excluded == {
        "numpy-1.24.0-0.conda": f.REASON_SPEC,
        "numpy-1.26.4-0.conda": f.REASON_SPEC,
    }


def test_spec_version_star_compares_version_parts_not_text():
    # The README's conda-mirror translation relies on this: `1.2*` is `1.2.*`, not a text glob.
    records = [rec("numpy", v) for v in ("1.2", "1.2.5", "1.20.1", "1.3")]
    result = run(records, FilterSpec(exclude_specs=("numpy 1.2*",)))
    assert kept(result) == {"numpy-1.20.1-0.conda", "numpy-1.3-0.conda"}


def test_spec_names_are_matched_ignoring_case():
    # conda names are case-insensitive: "NumPy >=2" is about the records named numpy.
    records = [rec("numpy", "1.26.4"), rec("numpy", "2.0.0")]
    result = run(records, FilterSpec(exclude_specs=("NumPy >=2",)))
    assert result.excluded == {"numpy-2.0.0-0.conda": f.REASON_SPEC}
    result = run(records, FilterSpec(include_specs=("NumPy >=2",)))
    assert kept(result) == {"numpy-2.0.0-0.conda"}


def test_spec_filters_only_touch_records_of_the_named_package():
    records = [rec("numpy", "1.24.0"), rec("scipy"), rec("pandas"), rec("python", "3.11.4")]
    matcher = CountingMatcher()
    run(records, FilterSpec(exclude_specs=("numpy >=1.24",)), matcher=matcher)
    assert matcher.names == ["numpy"]


def test_include_spec_python_minor_series():
    records = [
        rec("python", "3.10.12"),
        rec("python", "3.11.0"),
        rec("python", "3.11.9"),
        rec("python", "3.12.1"),
        rec("pip", "24.0"),
    ]
    result = run(records, FilterSpec(include_specs=("python 3.11.*",)))
    assert kept(result) == {"python-3.11.0-0.conda", "python-3.11.9-0.conda"}
    assert result.excluded == {
        "python-3.10.12-0.conda": f.REASON_NOT_ALLOWED,
        "python-3.12.1-0.conda": f.REASON_NOT_ALLOWED,
        "pip-24.0-0.conda": f.REASON_NOT_ALLOWED,
    }


def test_include_spec_build_glob():
    records = [
        rec("pytorch", "2.1.0", "cuda118_py311_0"),
        rec("pytorch", "2.1.0", "cpu_py311_0"),
        rec("pytorch", "2.2.0", "cuda121_py311_0"),
    ]
    result = run(records, FilterSpec(include_specs=("pytorch * cuda*",)))
    assert kept(result) == {
        "pytorch-2.1.0-cuda118_py311_0.conda",
        "pytorch-2.2.0-cuda121_py311_0.conda",
    }
    assert result.excluded == {"pytorch-2.1.0-cpu_py311_0.conda": f.REASON_NOT_ALLOWED}


def test_spec_exclude_by_checksum_license_family_and_track_features():
    # Fields a MatchSpec may constrain besides version and build: an exclude naming one must
    # match the records that carry it, not silently none of them.
    bad = "1" * 64
    records = [
        rec("openssl", "3.0.0", sha256=bad),
        rec("openssl", "3.0.1"),
        rec("mkl-dep", "1.0", track_features="blas_mkl"),
        rec("mkl-dep", "2.0"),
        rec("gsl", "2.7", license="GPL-3.0-only", license_family="GPL"),
        rec("gsl", "2.8", license="GPL-3.0-only", license_family="LGPL"),
    ]
    level = FilterSpec(
        exclude_specs=(
            f"openssl[sha256={bad}]",
            "mkl-dep[track_features=blas_mkl]",
            "gsl[license_family=GPL]",
        )
    )
    result = run(records, level)
    assert result.excluded == dict.fromkeys(
        ["openssl-3.0.0-0.conda", "mkl-dep-1.0-0.conda", "gsl-2.7-0.conda"], f.REASON_SPEC
    )
    check_partition(records, result)


def test_spec_license_keys_compare_as_conda_compares_them():
    # conda compares license and license_family ignoring case, `*` for any run of characters.
    records = [
        rec("gsl", "2.7", license="GPL-3.0-or-later", license_family="GPL3"),
        rec("gsl", "2.8", license="gpl-2.0-only", license_family="Other"),
        rec("gsl", "2.9", license="MIT", license_family="other"),
        rec("gsl", "3.0", license=None),  # no licence: no pattern names it
    ]
    for specs, excluded in [
        (("gsl[license_family=gpl3]",), {"gsl-2.7-0.conda"}),
        (("gsl[license_family=OTHER]",), {"gsl-2.8-0.conda", "gsl-2.9-0.conda"}),
        (('gsl >=2.8[license="GPL*"]',), {"gsl-2.8-0.conda"}),
        (('gsl[license="*gpl*", license_family="gpl*"]',), {"gsl-2.7-0.conda"}),
        (('gsl[license="*"]',), {"gsl-2.7-0.conda", "gsl-2.8-0.conda", "gsl-2.9-0.conda"}),
    ]:
        result = run(records, FilterSpec(exclude_specs=specs))
        assert set(result.excluded) == excluded, specs
        allowed = run(records, FilterSpec(include_specs=specs))
        assert kept(allowed) == excluded, specs


def test_a_spec_reading_a_licence_that_is_not_text_excludes_it_and_includes_nothing():
    """A licence list (in a record kept by keep_removed) is no text: it matches no pattern,
    not entry by entry. No include reading it takes the record; an exclude reading it
    leaves the record out when the rest of the spec matches, as the licenses filter does."""
    listed = rec("gsl", "2.8", license=["MIT", "BSD-3-Clause"], license_family="Other")
    records = [listed, rec("gsl", "2.9", license="MIT", license_family="other")]
    for specs, excluded in [
        (('gsl[license="gpl*"]',), {listed.fn}),
        (('gsl >=2.9[license="gpl*"]',), set()),  # the rest of the spec does not match
        (('gsl[license="*", license_family="gpl"]',), set()),  # nor a key it can read
        (("gsl[license_family=OTHER]",), {listed.fn, "gsl-2.9-0.conda"}),  # reads no list
    ]:
        assert set(run(records, FilterSpec(exclude_specs=specs)).excluded) == excluded, specs
    for spec in ('gsl[license="*"]', 'gsl[license="mit"]'):
        included = run(records, FilterSpec(include_specs=(spec,)))
        assert kept(included) == {"gsl-2.9-0.conda"}, spec


@pytest.mark.parametrize("build", ["py27-0", "h0!", "h=1", "h,1", "a" * 65])
def test_spec_exclude_leaves_out_a_record_rattler_cannot_build(build: str):
    # Upstream's checks take these build strings; rattler (CEP-26) refuses them, so nothing
    # can be matched against the record. An exclude naming its package leaves it out, an
    # allowlist does not take it, and other packages' records are untouched.
    odd = rec("evil", "1.0", build)
    assert check_record(odd.fn, dict(odd.raw), "packages.conda", "linux-64") is None
    records = [odd, rec("evil", "1.0", "h0_0"), rec("other", "1.0", build)]
    result = run(records, FilterSpec(exclude_specs=("evil >=2",)))
    assert result.excluded == {odd.fn: f.REASON_SPEC}
    result = run(records, FilterSpec(exclude_specs=("Evil",)))
    assert result.excluded == {odd.fn: f.REASON_SPEC, "evil-1.0-h0_0.conda": f.REASON_SPEC}
    result = run(records, FilterSpec(include_specs=("evil", "other")))
    assert kept(result) == {"evil-1.0-h0_0.conda"}
    check_partition(records, result)


def test_allowlist_by_name_or_spec_in_one_level():
    records = [
        rec("numpy", "1.26.0"),
        rec("python", "3.11.2"),
        rec("python", "3.12.0"),
        rec("zlib"),
    ]
    level = FilterSpec(include_names=("numpy",), include_specs=("python >=3.11,<3.12",))
    result = run(records, level)
    assert kept(result) == {"numpy-1.26.0-0.conda", "python-3.11.2-0.conda"}
