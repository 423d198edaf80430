"""current_repodata selection: hand-checked cases, and which specs it decides without building
records."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sitegen.conda.current_repodata import current_records, has_features
from sitegen.conda.records import Record
from sitegen.conda.version import (
    InvalidSpecError,
    RecordMatcher,
    parse_matchspec,
    parse_version_spec,
)

pytestmark = pytest.mark.unit


def rec(
    name: str,
    version: str,
    build: str = "0",
    *,
    depends: tuple[str, ...] = (),
    ext: str = ".conda",
    build_number: int = 0,
    **extra: Any,
) -> Record:
    raw: dict[str, Any] = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": build_number,
        "depends": list(depends),
        "subdir": "linux-64",
        "size": 10,
        "md5": "0" * 32,
        "timestamp": 1_700_000_000_000,
        **extra,
    }
    fn = f"{name}-{version}-{build}{ext}"
    return Record(fn=fn, subdir="linux-64", raw=raw)


def index(*records: Record) -> dict[str, Record]:
    return {r.fn: r for r in records}


def current(*records: Record) -> set[str]:
    return set(current_records(index(*records), RecordMatcher()))


def test_all_builds_of_newest_version_kept() -> None:
    kept = current(
        rec("foo", "1.0", "py310_0"),
        rec("foo", "1.0", "py311_0"),
        rec("foo", "2.0", "py310_0"),
        rec("foo", "2.0", "py311_0"),
        rec("bar", "0.1"),
    )
    assert kept == {"foo-2.0-py310_0.conda", "foo-2.0-py311_0.conda", "bar-0.1-0.conda"}


def test_older_build_numbers_of_newest_version_kept_too() -> None:
    # "All builds" means every build of the version, not only the highest build number.
    kept = current(rec("foo", "1.0", "h1_0"), rec("foo", "1.0", "h1_1", build_number=1))
    assert kept == {"foo-1.0-h1_0.conda", "foo-1.0-h1_1.conda"}


def test_dependency_pinning_older_version_adds_its_newest_match() -> None:
    kept = current(
        rec("foo", "1.0", "a"),
        rec("foo", "1.5", "py310_0"),
        rec("foo", "1.5", "py311_0"),
        rec("foo", "2.0", "a"),
        rec("bar", "1.0", depends=("foo <2",)),
        rec("bar", "0.5", depends=("foo <1.5",)),  # not newest: its deps do not count
    )
    assert kept == {
        "foo-2.0-a.conda",
        "foo-1.5-py310_0.conda",
        "foo-1.5-py311_0.conda",
        "bar-1.0-0.conda",
    }


def test_dependency_satisfied_by_newest_adds_nothing() -> None:
    kept = current(
        rec("foo", "1.0"),
        rec("foo", "2.0"),
        rec("bar", "1.0", depends=("foo >=1.5", "foo", "foo 2.*")),
    )
    assert kept == {"foo-2.0-0.conda", "bar-1.0-0.conda"}


def test_backfill_adds_all_builds_of_version_not_only_matching_ones() -> None:
    kept = current(
        rec("foo", "2.0", "py311_0"),
        rec("foo", "1.0", "py310_0"),
        rec("foo", "1.0", "py311_0"),
        rec("bar", "1.0", depends=("foo * py310*",)),
    )
    assert kept == {
        "foo-2.0-py311_0.conda",
        "foo-1.0-py310_0.conda",
        "foo-1.0-py311_0.conda",
        "bar-1.0-0.conda",
    }


def test_backfill_is_a_single_pass() -> None:
    # bar pins foo 1.x; foo 1.x needs baz <1, but added records' deps are not chased.
    kept = current(
        rec("foo", "2.0"),
        rec("foo", "1.0", depends=("baz <1",)),
        rec("baz", "1.0"),
        rec("baz", "0.9"),
        rec("bar", "1.0", depends=("foo <2",)),
    )
    assert kept == {"foo-2.0-0.conda", "foo-1.0-0.conda", "baz-1.0-0.conda", "bar-1.0-0.conda"}


def test_dependency_on_absent_or_virtual_or_unsatisfiable_names() -> None:
    kept = current(
        rec("foo", "1.0"),
        rec("foo", "0.5"),
        rec(
            "bar",
            "1.0",
            depends=(
                "not-in-this-subdir >=1",
                "__glibc >=2.17",
                "__cuda",
                "foo >=9",  # nothing satisfies it: nothing to add
                "package_has_been_revoked",
                "foo[version='>=1 <<junk",  # unparseable: ignored
            ),
        ),
    )
    assert kept == {"foo-1.0-0.conda", "bar-1.0-0.conda"}


def test_feature_names_also_keep_newest_featureless_version() -> None:
    kept = current(
        rec("blas", "2.0", "mkl_0", track_features="mkl"),
        rec("blas", "2.0", "mkl_1", build_number=1, track_features="mkl"),
        rec("blas", "1.5", "mkl_0", track_features="mkl"),
        rec("blas", "1.5", "openblas_0"),
        rec("blas", "1.5", "openblas_0", ext=".tar.bz2"),
        rec("blas", "1.0", "openblas_0"),
    )
    assert kept == {
        "blas-2.0-mkl_0.conda",
        "blas-2.0-mkl_1.conda",
        "blas-1.5-openblas_0.conda",
        "blas-1.5-openblas_0.tar.bz2",
    }


def test_old_style_features_field_counts_too() -> None:
    kept = current(
        rec("faiss", "1.2", "cuda90_0", features="cuda90"),
        rec("faiss", "1.1", "cpu_0"),
        rec("faiss", "1.0", "cpu_0"),
    )
    assert kept == {"faiss-1.2-cuda90_0.conda", "faiss-1.1-cpu_0.conda"}


def test_featureless_build_of_newest_version_is_enough() -> None:
    kept = current(
        rec("blas", "2.0", "mkl_0", track_features="mkl"),
        rec("blas", "2.0", "openblas_0"),
        rec("blas", "1.0", "openblas_0"),
    )
    assert kept == {"blas-2.0-mkl_0.conda", "blas-2.0-openblas_0.conda"}


def test_blank_track_features_is_no_feature() -> None:
    assert not has_features({"track_features": ""})
    assert not has_features({"track_features": " "})
    assert not has_features({"features": []})
    assert not has_features({"track_features": " , ,"})  # separators only: no feature named
    assert has_features({"track_features": "mkl"})
    assert has_features({"features": ["cuda90"]})
    kept = current(rec("foo", "2.0", track_features=""), rec("foo", "1.0"))
    assert kept == {"foo-2.0-0.conda"}


def test_conda_and_tar_bz2_twins_both_kept_unchanged() -> None:
    conda = rec("foo", "1.0", ext=".conda")
    bz2 = rec("foo", "1.0", ext=".tar.bz2", md5="1" * 32)
    old = rec("foo", "0.9", ext=".tar.bz2")
    before = copy.deepcopy(conda.raw)
    records = index(old, conda, bz2)
    out = current_records(records, RecordMatcher())
    assert list(out) == ["foo-1.0-0.conda", "foo-1.0-0.tar.bz2"]  # input order kept
    assert out["foo-1.0-0.conda"] is conda
    assert conda.raw == before  # no legacy_bz2_md5 or anything else added


@pytest.mark.parametrize(
    ("newer", "older"),
    [("1.10", "1.9"), ("1.0.post1", "1.0"), ("1.0", "1.0a1"), ("1.0", "1.0rc1"), ("2", "1.99")],
)
def test_conda_version_ordering(newer: str, older: str) -> None:
    kept = current(rec("foo", older), rec("foo", newer))
    assert kept == {f"foo-{newer}-0.conda"}


def test_equal_versions_spelled_differently_are_one_version() -> None:
    kept = current(rec("foo", "1.0", "a"), rec("foo", "1.0.0", "b"), rec("foo", "0.9"))
    assert kept == {"foo-1.0-a.conda", "foo-1.0.0-b.conda"}


def test_a_spec_testing_each_build_looks_at_every_build_of_a_release() -> None:
    # A build_number constraint needs each record matched in full: the release that satisfies
    # it is found by its second build, and then all of that release's builds are kept.
    kept = current(
        rec("foo", "2.0", "h_0"),
        rec("foo", "1.0", "h_0"),
        rec("foo", "1.0", "h_2", build_number=2),
        rec("bar", "1.0", depends=("foo[build_number=2]",)),
    )
    assert kept == {
        "foo-2.0-h_0.conda",
        "foo-1.0-h_0.conda",
        "foo-1.0-h_2.conda",
        "bar-1.0-0.conda",
    }


def test_names_differing_only_in_case_each_keep_their_newest_version() -> None:
    # Old channels hold both "PyYAML" and "pyyaml". conda's solver finds only the lower-case
    # one, so its newest must be here even when the other spelling has a newer version.
    kept = current(
        rec("PyYAML", "6.0"),
        rec("PyYAML", "5.4"),
        rec("pyyaml", "5.3"),
        rec("pyyaml", "5.1"),
    )
    assert kept == {"PyYAML-6.0-0.conda", "pyyaml-5.3-0.conda"}


def test_record_names_in_upper_case_satisfy_no_spec() -> None:
    # conda lower-cases a spec's name and compares it with the record's as written, so
    # "pyyaml <6" is about the records named "pyyaml" only, as conda-index back-fills it.
    kept = current(
        rec("PyYAML", "6.0"),
        rec("PyYAML", "5.4"),
        rec("pyyaml", "5.3"),
        rec("pyyaml", "5.1"),
        rec("app", "1.0", depends=("pyyaml <5.2",)),
        rec("tool", "1.0", depends=("pyyaml <6",)),
    )
    assert kept == {
        "PyYAML-6.0-0.conda",
        "pyyaml-5.3-0.conda",
        "pyyaml-5.1-0.conda",
        "app-1.0-0.conda",
        "tool-1.0-0.conda",
    }


def test_empty_subdir() -> None:
    assert current_records({}, RecordMatcher()) == {}


class _CountingMatcher(RecordMatcher):
    """Notes the specs that needed a record built to be decided."""

    def __init__(self) -> None:
        super().__init__(remember=False)
        self.specs: list[str] = []

    def matches(self, spec: Any, record: dict[str, Any]) -> bool:
        self.specs.append(str(spec))
        return super().matches(spec, record)


def test_specs_of_a_name_version_and_plain_build_are_decided_without_building_records() -> None:
    records = index(
        rec(
            "app",
            "1",
            depends=("lib >=1,<2", "Lib2 1.0.*", "abi 3.12.* *_cp312", "plain", "reg * ^0_cp3.*$"),
        ),
        rec("reg", "2", "1_cp40"),
        rec("reg", "1", "0_cp38"),
        rec("lib", "2"),
        rec("lib", "1.5"),
        rec("lib2", "2.0"),
        rec("lib2", "1.0.0"),  # 1.0.0 matches 1.0.* as conda compares versions
        rec("abi", "3.13", "0_cp313"),
        rec("abi", "3.12", "0_cp312"),
        rec("abi", "3.12", "0_cp311"),
        rec("plain", "1"),
    )
    matcher = _CountingMatcher()
    kept = set(current_records(records, matcher))
    assert kept == {
        "app-1-0.conda",
        "lib-2-0.conda",
        "lib-1.5-0.conda",
        "lib2-2.0-0.conda",
        "lib2-1.0.0-0.conda",
        "abi-3.13-0_cp313.conda",
        "abi-3.12-0_cp312.conda",
        "abi-3.12-0_cp311.conda",  # all builds of the release a spec needs
        "plain-1-0.conda",
        "reg-2-1_cp40.conda",
        "reg-1-0_cp38.conda",
    }
    # Only the spec with a regular expression for a build string had records built.
    assert {str(parse_matchspec(s)) for s in matcher.specs} == {
        str(parse_matchspec("reg * ^0_cp3.*$"))
    }


def test_a_dependency_with_a_build_number_beyond_64_bits_adds_nothing() -> None:
    """rattler panics on such a spec (an exception outside Exception): it is refused as an
    invalid spec first, and a record depending on it is judged like one with any bad spec."""
    huge = "zlib[build_number=99999999999999999999999]"
    kept = current(rec("app", "1.0", depends=(huge,)), rec("zlib", "1.3"), rec("zlib", "1.2"))
    assert kept == {"app-1.0-0.conda", "zlib-1.3-0.conda"}
    with pytest.raises(InvalidSpecError, match="beyond 64 bits"):
        parse_matchspec('zlib[version=">=1", build_number="<99999999999999999999"]')


def test_the_specs_read_for_the_back_fill_are_not_kept_in_the_parse_caches() -> None:
    """Each distinct dependency spec is read for the back-fill once: kept in the caches of
    the run's parsing, 40,000 of them would hold their native memory through publishing."""
    records = index(
        rec("app", "1", depends=("lib <2", "lib >=1,<3", "other 4.*", "reg * ^0_cp3.*$")),
        rec("lib", "2"),
        rec("lib", "1"),
        rec("other", "4.1"),
        rec("reg", "1", "0_cp38"),
    )
    parse_matchspec.cache_clear()
    parse_version_spec.cache_clear()
    kept = set(current_records(records, RecordMatcher(remember=False)))
    assert kept == {"app-1-0.conda", "lib-2-0.conda", "lib-1-0.conda", "other-4.1-0.conda"} | {
        "reg-1-0_cp38.conda"
    }
    assert parse_matchspec.cache_info().currsize == 0
    assert parse_version_spec.cache_info().currsize == 0


def test_a_back_filled_release_holds_every_spelling_of_its_version() -> None:
    """Older releases are made only for a name whose newest one does not meet a spec; made
    then, a release is every spelling of its version, with each one's builds."""
    newest_only = rec("solo", "3")
    records = index(
        rec("app", "1", depends=("solo", "lib <2")),
        newest_only,
        rec("solo", "2"),
        rec("solo", "1"),
        rec("lib", "2"),
        rec("lib", "1.1", "a"),
        rec("lib", "1.1.0", "b"),  # the same release as 1.1 to conda
        rec("lib", "1.0"),
    )
    kept = set(current_records(records, RecordMatcher()))
    assert kept == {
        "app-1-0.conda",
        "solo-3-0.conda",
        "lib-2-0.conda",
        "lib-1.1-a.conda",
        "lib-1.1.0-b.conda",
    }
