"""current_repodata selection against references: invariants and a slow reference rendering on
real pytorch repodata, and plain build patterns matched as rattler matches them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegen.conda.current_repodata import current_records, has_features
from sitegen.conda.records import Record, parse_repodata
from sitegen.conda.version import (
    RecordMatcher,
    build_matches,
    parse_matchspec,
    parse_version,
    plain_build_pattern,
    spec_name,
)

pytestmark = pytest.mark.unit

PYTORCH = Path("/work/shared/data/pytorch-linux-64-repodata.json")


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
