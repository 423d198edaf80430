from __future__ import annotations

import pytest

from sitegen.conda.record_check import check_record
from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config import ConfigError, FilterSpec, YamlNode, parse_config
from sitegen.filters import apply as f
from sitegen.filters import registry
from sitegen.filters.apply import (
    FilterResult,
    apply_filters,
    effective_newest,
    include_dependencies,
)
from sitegen.filters.kind import Check, FilterContext, FilterKind
from sitegen.tools.status_filters import level_filters
from testkit.records import JAN_2024, rec

pytestmark = pytest.mark.unit

DAY_MS = 86_400_000


def run(
    records: list[Record], *levels: FilterSpec, subdir: str = "linux-64", matcher=None
) -> FilterResult:
    padded = (*levels, *(FilterSpec() for _ in range(3 - len(levels))))
    return apply_filters({r.fn: r for r in records}, subdir, padded, matcher or RecordMatcher())


def kept(result: FilterResult) -> set[str]:
    return set(result.kept)


def check_partition(records: list[Record], result: FilterResult) -> None:
    """Every input is either kept or excluded, and candidates are the soft exclusions."""
    fns = {r.fn for r in records}
    assert set(result.kept) | set(result.excluded) == fns
    assert not set(result.kept) & set(result.excluded)
    soft = {fn for fn, why in result.excluded.items() if why in f.CANDIDATE_REASONS}
    assert set(result.candidates) == soft


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
        rec("gsl", "2.8", license=["MIT", "gpl-2.0-only"], license_family="Other"),
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


def test_license_list_is_judged_entry_by_entry():
    # Upstream sometimes writes a package's licences as a list: each entry counts, so an
    # exclude of any of them leaves the record out, and an include must name all of them.
    records = [
        rec("gpl", license=["GPL-3.0-only"]),
        rec("dual", license=["MIT", " GPL-2.0 "], license_family=["MIT", "GPL2"]),
        rec("mit", license=["MIT", "BSD-3-Clause"]),
        rec("blank", license=[" ", ""]),
    ]
    assert check_record(records[0].fn, dict(records[0].raw), "packages.conda", "linux-64") is None
    result = run(records, FilterSpec(exclude_licenses=("*gpl*",)))
    assert result.excluded == {
        "gpl-1.0-0.conda": f.REASON_LICENSE_EXCLUDED,
        "dual-1.0-0.conda": f.REASON_LICENSE_EXCLUDED,
    }
    result = run(records, FilterSpec(include_licenses=("mit", "bsd*")))
    assert result.excluded == {
        "gpl-1.0-0.conda": f.REASON_LICENSE_NOT_INCLUDED,
        "dual-1.0-0.conda": f.REASON_LICENSE_NOT_INCLUDED,
    }
    result = run(records, FilterSpec(exclude_license_families=("gpl*",)))
    assert result.excluded == {"dual-1.0-0.conda": f.REASON_LICENSE_FAMILY}
    result = run(records, FilterSpec(allow_missing_license=False))
    assert result.excluded == {"blank-1.0-0.conda": f.REASON_LICENSE_MISSING}


@pytest.mark.parametrize("value", [7, {"spdx": "GPL-3.0"}, ["MIT", 3], [["GPL-3.0"]], True])
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


# --------------------------------------------------------------------------- newest versions


def test_newest_versions_conda_ordering():
    versions = ["1.0a1", "1.0", "1.0.post1", "1.9", "1.10", "1.10.0rc1"]
    records = [rec("p", v) for v in versions] + [rec("p", "1.10", "1", ext=".tar.bz2")]
    result = run(records, FilterSpec(newest_versions=2))
    # 1.10 (both builds and formats) and 1.10.0rc1; then 1.9 > 1.0.post1 > 1.0 > 1.0a1
    assert kept(result) == {"p-1.10-0.conda", "p-1.10-1.tar.bz2", "p-1.10.0rc1-0.conda"}
    assert set(result.candidates) == {
        f"p-{v}-0.conda" for v in ("1.0a1", "1.0", "1.0.post1", "1.9")
    }
    assert set(result.excluded.values()) == {f.REASON_OLDER_VERSION}


def test_newest_versions_prerelease_and_post_ordering():
    records = [rec("p", v) for v in ("1.0a1", "1.0", "1.0.post1")]
    assert kept(run(records, FilterSpec(newest_versions=1))) == {"p-1.0.post1-0.conda"}
    records = [rec("p", v) for v in ("1.0a1", "1.0")]
    assert kept(run(records, FilterSpec(newest_versions=1))) == {"p-1.0-0.conda"}


def test_newest_versions_treats_equal_versions_as_one():
    # conda compares 1.0 and 1.0.0 as equal, so they count as one version.
    records = [rec("p", "1.0"), rec("p", "1.0.0"), rec("p", "0.9")]
    assert kept(run(records, FilterSpec(newest_versions=1))) == {"p-1.0-0.conda", "p-1.0.0-0.conda"}
    # ... and as one of the N: with two allowed, the next version down is kept as well.
    records.append(rec("p", "0.8"))
    assert kept(run(records, FilterSpec(newest_versions=2))) == {
        "p-1.0-0.conda",
        "p-1.0.0-0.conda",
        "p-0.9-0.conda",
    }


def test_newest_versions_is_per_name():
    records = [rec("a", "1"), rec("a", "2"), rec("b", "5"), rec("b", "6"), rec("c", "1")]
    result = run(records, FilterSpec(newest_versions=1))
    assert kept(result) == {"a-2-0.conda", "b-6-0.conda", "c-1-0.conda"}


def test_newest_versions_applies_to_the_allowlisted_set():
    versions = ["1.20.3", "1.21.0", "1.21.5", "1.21.6", "1.22.0", "1.26.4"]
    records = [rec("numpy", v) for v in versions]
    level = FilterSpec(include_specs=("numpy 1.21.*",), newest_versions=2)
    result = run(records, level)
    assert kept(result) == {"numpy-1.21.5-0.conda", "numpy-1.21.6-0.conda"}
    assert result.excluded == {
        "numpy-1.20.3-0.conda": f.REASON_NOT_ALLOWED,
        "numpy-1.21.0-0.conda": f.REASON_OLDER_VERSION,
        "numpy-1.22.0-0.conda": f.REASON_NOT_ALLOWED,
        "numpy-1.26.4-0.conda": f.REASON_NOT_ALLOWED,
    }
    assert set(result.candidates) == set(result.excluded)


def test_newest_versions_counts_only_records_passing_hard_filters():
    records = [rec("a", "3", size=10**9), rec("a", "2"), rec("a", "1")]
    result = run(records, FilterSpec(max_size=10**6), FilterSpec(), FilterSpec(newest_versions=1))
    assert kept(result) == {"a-2-0.conda"}
    assert result.excluded == {
        "a-3-0.conda": f.REASON_TOO_LARGE,
        "a-1-0.conda": f.REASON_OLDER_VERSION,
    }


def test_effective_newest_is_the_smallest():
    assert effective_newest((FilterSpec(), FilterSpec(), FilterSpec())) is None
    levels = (FilterSpec(newest_versions=5), FilterSpec(), FilterSpec(newest_versions=2))
    assert effective_newest(levels) == 2
    records = [rec("a", str(v)) for v in range(1, 8)]
    assert kept(run(records, *levels)) == {"a-7-0.conda", "a-6-0.conda"}


def test_include_dependencies_most_specific_level_wins():
    assert include_dependencies((FilterSpec(), FilterSpec(), FilterSpec())) is False
    on, off, unset = (
        FilterSpec(include_dependencies=True),
        FilterSpec(include_dependencies=False),
        FilterSpec(),
    )
    assert include_dependencies((on, unset, unset)) is True
    assert include_dependencies((on, off, unset)) is False
    assert include_dependencies((off, unset, on)) is True
    assert include_dependencies((on, on, off)) is False


# --------------------------------------------------------------------------- levels combined


def test_all_three_levels_must_pass():
    site = FilterSpec(exclude_licenses=("*agpl*",), exclude_builds=("py2*",), max_size=10_000)
    channel = FilterSpec(include_names=("numpy", "python", "ghostscript", "big"))
    mirror = FilterSpec(formats="conda", newest_versions=1, after_ms=JAN_2024)
    records = [
        rec("numpy", "1.26.4", "py311_0"),
        rec("numpy", "1.26.4", "py311_0", ext=".tar.bz2"),
        rec("numpy", "1.26.3", "py311_0"),
        rec("numpy", "1.16.6", "py27_0"),
        rec("python", "3.12.1", "h1_0", timestamp=JAN_2024 - DAY_MS),
        rec("python", "3.11.7", "h1_0"),
        rec("ghostscript", "10.0", "h0_0", license="AGPL-3.0"),
        rec("big", "1.0", "h0_0", size=20_000),
        rec("zlib", "1.3", "h0_0"),
    ]
    result = run(records, site, channel, mirror)
    check_partition(records, result)
    assert kept(result) == {"numpy-1.26.4-py311_0.conda", "python-3.11.7-h1_0.conda"}
    assert result.excluded == {
        "numpy-1.26.4-py311_0.tar.bz2": f.REASON_FORMAT,
        "numpy-1.26.3-py311_0.conda": f.REASON_OLDER_VERSION,
        "numpy-1.16.6-py27_0.conda": f.REASON_BUILD_EXCLUDED,
        "python-3.12.1-h1_0.conda": f.REASON_TOO_OLD,
        "ghostscript-10.0-h0_0.conda": f.REASON_LICENSE_EXCLUDED,
        "big-1.0-h0_0.conda": f.REASON_TOO_LARGE,
        "zlib-1.3-h0_0.conda": f.REASON_NOT_ALLOWED,
    }
    assert set(result.candidates) == {"numpy-1.26.3-py311_0.conda", "zlib-1.3-h0_0.conda"}


def test_earlier_level_gives_the_reason():
    record = rec("a", size=5000, license="GPL-3.0")
    site = FilterSpec(max_size=1000)
    mirror = FilterSpec(exclude_licenses=("gpl*",))
    assert run([record], site, FilterSpec(), mirror).excluded == {record.fn: f.REASON_TOO_LARGE}
    assert run([record], mirror, FilterSpec(), site).excluded == {
        record.fn: f.REASON_LICENSE_EXCLUDED
    }


def test_hard_exclusion_at_a_later_level_beats_an_earlier_allowlist():
    # Site allowlist misses "b", mirror excludes "b" by name: "b" must not become a candidate.
    records = [rec("a"), rec("b")]
    result = run(
        records, FilterSpec(include_names=("a",)), FilterSpec(), FilterSpec(exclude_names=("b",))
    )
    assert result.excluded == {"b-1.0-0.conda": f.REASON_NAME}
    assert result.candidates == {}


def test_allowlists_of_two_levels_intersect():
    records = [rec("numpy", "1.21.0"), rec("numpy", "1.26.0"), rec("scipy")]
    channel = FilterSpec(include_names=("numpy", "scipy"))
    mirror = FilterSpec(include_specs=("numpy <1.22",))
    result = run(records, FilterSpec(), channel, mirror)
    assert kept(result) == {"numpy-1.21.0-0.conda"}
    assert set(result.candidates) == {"numpy-1.26.0-0.conda", "scipy-1.0-0.conda"}


def test_spec_exclude_at_site_with_names_at_mirror():
    records = [
        rec("pytorch", "2.1.0", "cuda118_0"),
        rec("pytorch", "2.1.0", "cpu_0"),
        rec("torchvision"),
    ]
    site = FilterSpec(exclude_specs=("pytorch * cuda*",))
    mirror = FilterSpec(exclude_names=("torch*",))
    result = run(records, site, FilterSpec(), mirror)
    assert kept(result) == {"pytorch-2.1.0-cpu_0.conda"}
    assert result.excluded == {
        "pytorch-2.1.0-cuda118_0.conda": f.REASON_SPEC,
        "torchvision-1.0-0.conda": f.REASON_NAME,
    }


def test_reason_counts():
    records = [rec("a", size=10**9), rec("b", size=10**9), rec("c")]
    result = run(records, FilterSpec(max_size=10**6))
    assert result.reason_counts() == {f.REASON_TOO_LARGE: 2}


def test_input_is_not_mutated():
    records = {r.fn: r for r in (rec("a"), rec("b"))}
    before = dict(records)
    apply_filters(records, "linux-64", (FilterSpec(include_names=("a",)),), RecordMatcher())
    assert records == before


# --------------------------------------------------------------------------- a new filter kind

REASON_OLD_BUILD = "build number below minimum"


def _parse_build_numbers(node: YamlNode) -> dict[str, object]:
    keys = node.mapping(("min",))
    return {"min_build_number": keys["min"].integer(minimum=0)} if "min" in keys else {}


def _show_build_numbers(spec: FilterSpec) -> object:
    minimum = spec.setting("min_build_number")
    return None if minimum is None else {"min": minimum}


def _build_number_check(spec: FilterSpec, context: FilterContext) -> Check | None:
    minimum = spec.setting("min_build_number")
    if not isinstance(minimum, int):
        return None
    return lambda r, n: REASON_OLD_BUILD if r.raw["build_number"] < minimum else None


BUILD_NUMBERS = FilterKind(
    "build_numbers",
    _parse_build_numbers,
    show=_show_build_numbers,
    reasons=(REASON_OLD_BUILD,),
    predicate=_build_number_check,
)

YAML_WITH_BUILD_NUMBERS = """\
output: site
channels:
  cloud/x:
    url: https://conda.anaconda.org/x
    subdirs: [linux-64]
    filters:
      names: {exclude: [skipped]}
      build_numbers: {min: 2}
"""


@pytest.fixture
def build_numbers(monkeypatch: pytest.MonkeyPatch) -> FilterKind:
    """The kind registered for one test: the registry is restored afterwards."""
    monkeypatch.setattr(registry, "KINDS", registry.KINDS)
    return registry.register(BUILD_NUMBERS)


def test_a_registered_kind_is_parsed_from_yaml_and_applied(build_numbers: FilterKind) -> None:
    config = parse_config(YAML_WITH_BUILD_NUMBERS)
    channel = config.channels[0]
    mirror = channel.mirrors[0]
    assert mirror.filters.setting("min_build_number") == 2
    assert mirror.filters.exclude_names == ("skipped",)
    records = [
        rec("a", "1.0", "h_1", build_number=1),
        rec("a", "1.0", "h_2", build_number=2),
        rec("skipped", "1.0", "h_0", build_number=0),
        rec("b", "1.0", "h_3", build_number=3),
    ]
    levels = config.filter_levels(channel, mirror)
    result = apply_filters({r.fn: r for r in records}, "linux-64", levels, RecordMatcher())
    assert kept(result) == {"a-1.0-h_2.conda", "b-1.0-h_3.conda"}
    assert result.excluded == {
        "a-1.0-h_1.conda": REASON_OLD_BUILD,
        "skipped-1.0-h_0.conda": f.REASON_NAME,  # kinds check in registration order
    }
    # sitegen status shows it with the others, as channels.yaml writes it.
    assert level_filters(mirror.filters) == {
        "names": {"exclude": ["skipped"]},
        "build_numbers": {"min": 2},
    }


def test_a_registered_kind_reports_errors_with_line_and_key(build_numbers: FilterKind) -> None:
    text = YAML_WITH_BUILD_NUMBERS.replace("{min: 2}", "{min: two}")
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert str(info.value) == (
        "channels.yaml:8: channels.cloud/x.filters.build_numbers.min:"
        " expected a whole number, got 'two'"
    )


def test_an_unregistered_kind_is_an_unknown_key() -> None:
    with pytest.raises(ConfigError, match="unknown key 'build_numbers'"):
        parse_config(YAML_WITH_BUILD_NUMBERS)


def test_a_kind_cannot_reuse_a_key_or_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "KINDS", registry.KINDS)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(FilterKind("names", _parse_build_numbers, _show_build_numbers))
    with pytest.raises(ValueError, match="reuses reasons"):
        registry.register(
            FilterKind("other", _parse_build_numbers, _show_build_numbers, reasons=(f.REASON_NAME,))
        )
