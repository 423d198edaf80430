"""current_repodata selection: hand-checked cases plus invariants on real pytorch repodata."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from sitegen.conda.current_repodata import current_records, has_features
from sitegen.conda.records import Record, parse_repodata
from sitegen.conda.version import (
    InvalidSpecError,
    RecordMatcher,
    build_matches,
    parse_matchspec,
    parse_version,
    plain_build_pattern,
    spec_name,
)

pytestmark = pytest.mark.unit

PYTORCH = Path("/work/shared/data/pytorch-linux-64-repodata.json")


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


def test_record_names_in_upper_case_are_found_by_lower_case_specs() -> None:
    # MatchSpec names are normalised to lower case: a dependency on "pyyaml" is about records
    # named "PyYAML" too (old channels hold such names).
    kept = current(
        rec("PyYAML", "6.0"),
        rec("PyYAML", "5.4"),
        rec("app", "1.0", depends=("pyyaml <6",)),
    )
    assert kept == {"PyYAML-6.0-0.conda", "PyYAML-5.4-0.conda", "app-1.0-0.conda"}


def test_empty_subdir() -> None:
    assert current_records({}, RecordMatcher()) == {}


# --- real data ------------------------------------------------------------------------------


def _reference(records: dict[str, Record], matcher: RecordMatcher) -> set[str]:
    """A slow, obviously-correct rendering of the same three steps, for comparison."""
    by_name: dict[str, list[Record]] = {}
    for r in records.values():
        by_name.setdefault(r.name, []).append(r)

    def newest_version_records(candidates: list[Record]) -> list[Record]:
        top = max(parse_version(r.version) for r in candidates)
        return [r for r in candidates if parse_version(r.version) == top]

    step1 = {name: newest_version_records(rs) for name, rs in by_name.items()}
    kept = {r.fn for rs in step1.values() for r in rs}
    for rs in step1.values():
        for r in rs:
            for spec in r.raw.get("depends", []):
                name = spec_name(spec)
                if name.startswith("__") or name not in by_name:
                    continue
                if any(matcher.matches(spec, s.raw) for s in step1[name]):
                    continue
                matching = [s for s in by_name[name] if matcher.matches(spec, s.raw)]
                if matching:
                    top = max(parse_version(s.version) for s in matching)
                    kept |= {s.fn for s in by_name[name] if parse_version(s.version) == top}
    for rs in by_name.values():
        if any(has_features(r.raw) for r in rs if r.fn in kept):
            plain = [r for r in rs if not has_features(r.raw)]
            if plain:
                kept |= {r.fn for r in newest_version_records(plain)}
    return kept


@pytest.fixture(scope="module")
def pytorch() -> dict[str, Record]:
    if not PYTORCH.is_file():
        pytest.skip(f"reference data {PYTORCH} not available")
    repodata = parse_repodata(PYTORCH.read_bytes(), "linux-64")
    assert repodata.records
    return repodata.records


def test_pytorch_invariants(pytorch: dict[str, Record]) -> None:
    matcher = RecordMatcher()
    out = current_records(pytorch, matcher)
    assert out and len(out) < len(pytorch)
    assert all(pytorch[fn] is r for fn, r in out.items())  # a subset, same objects

    by_name: dict[str, list[Record]] = {}
    for r in pytorch.values():
        by_name.setdefault(r.name, []).append(r)
    kept_by_name: dict[str, list[Record]] = {}
    for r in out.values():
        kept_by_name.setdefault(r.name, []).append(r)
    assert set(kept_by_name) == set(by_name)
    newest_records: list[Record] = []
    for name, rs in by_name.items():
        top = max(parse_version(r.version) for r in rs)
        newest = {r.fn for r in rs if parse_version(r.version) == top}
        assert newest <= set(out), name
        newest_records.extend(pytorch[fn] for fn in newest)

    # Every dependency of a newest record that the full subdir can satisfy is satisfied by the
    # current set (back-filled records' own deps are not chased: one pass, as conda-index).
    for r in newest_records:
        for spec in r.raw.get("depends", []):
            name = spec_name(spec)
            if name.startswith("__"):
                continue
            ms = parse_matchspec(spec)
            if any(matcher.matches(ms, s.raw) for s in by_name.get(name, [])):
                assert any(matcher.matches(ms, s.raw) for s in kept_by_name[name]), (r.fn, spec)

    # The feature rule fires on this data (cuda9x track_features, faiss-gpu features).
    assert any(has_features(r.raw) for r in out.values())

    assert set(out) == _reference(pytorch, matcher)


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


_BUILDS = ["py312h1a2b3c4_0", "py311_0", "0_cp312", "h0_0", "pyhd8ed1ab_1", "cpu_py312hab", "a", ""]
# rattler compares build strings ignoring case, and builds no record of a build string CEP-26
# refuses (so it matches nothing).
_BUILDS += ["Py312_0", "PY311_0", "H0_0", "py312-a_0", "a=b_0", "h0_0" + "x" * 61]
_PATTERNS = ["*_cp312", "py312*", "h0_0", "*", "py3*_0", "*py*h*", "*1*1*", "a*", "*a", "*_0*"]
_PATTERNS += ["py312h1a2b3c4_0", "*h*h*", "**", "_0*", "*_0", "PY3*", "*_CP312", "H0_0"]
# A prefix and a suffix that overlap in a short build, and a middle part found only inside the
# suffix: neither matches (each part takes its own characters).
_PATTERNS += ["h0*0_0", "*_0*_0", "py3*312h1a2b3c4_0"]


@pytest.mark.parametrize("pattern", _PATTERNS)
def test_plain_build_patterns_match_as_rattler_matches(pattern: str) -> None:
    spec = parse_matchspec(f"pkg * {pattern}")
    assert plain_build_pattern(spec, "pkg") == pattern
    matcher = RecordMatcher(remember=False)
    for build in [b for b in _BUILDS if b]:
        raw = {"name": "pkg", "version": "1", "build": build, "build_number": 0}
        assert build_matches(pattern, build) == matcher.matches(spec, raw), (pattern, build)


@pytest.mark.parametrize(
    "text",
    [
        "pkg * ^py.*$",
        'pkg[build="py3[12]*"]',
        "pkg 1.0 py3?_0",
        "pkg >=1 *_0[build_number=2]",
        'pkg[build="*_0",build_number=2]',
        "conda-forge::pkg 1.0 *_0",
        "pkg",
        "pkg 1.0",
    ],
)
def test_other_specs_have_no_plain_build_pattern(text: str) -> None:
    assert plain_build_pattern(parse_matchspec(text), "pkg") is None


def test_a_dependency_with_a_build_number_beyond_64_bits_adds_nothing() -> None:
    """rattler panics on such a spec (an exception outside Exception): it is refused as an
    invalid spec first, and a record depending on it is judged like one with any bad spec."""
    huge = "zlib[build_number=99999999999999999999999]"
    kept = current(rec("app", "1.0", depends=(huge,)), rec("zlib", "1.3"), rec("zlib", "1.2"))
    assert kept == {"app-1.0-0.conda", "zlib-1.3-0.conda"}
    with pytest.raises(InvalidSpecError, match="beyond 64 bits"):
        parse_matchspec('zlib[version=">=1", build_number="<99999999999999999999"]')
