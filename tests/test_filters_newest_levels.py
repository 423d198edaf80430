"""newest_versions, include_dependencies by level, and the three levels of filters combined."""

from __future__ import annotations

import pytest

from sitegen.conda.version import RecordMatcher
from sitegen.config import FilterSpec
from sitegen.filters import apply as f
from sitegen.filters.apply import (
    apply_filters,
    effective_newest,
    include_dependencies,
)
from testkit.filters import DAY_MS, check_partition, kept, run
from testkit.records import JAN_2024, rec

pytestmark = pytest.mark.unit


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
