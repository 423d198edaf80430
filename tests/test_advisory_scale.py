"""A huge advisory (hundreds of thousands of listed versions or ranges fit in the file size
cap) costs the advisory filter and the package pages about one look-up per version checked,
not one per version or range it lists; and a package page meets only the advisories naming
its package. The answers stay those of the OSV schema's evaluation, in conda order."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher, parse_version
from sitegen.config import FilterSpec, parse_config
from sitegen.filters.advisory_notes import package_advisories
from sitegen.filters.apply import apply_filters
from sitegen.filters.osv import Advisory, Affected
from sitegen.filters.osv_versions import FirstNaming, VersionIndex
from sitegen.web.gates import advisory_notes
from testkit.advisories import affected_entry
from testkit.records import rec

pytestmark = pytest.mark.unit

LISTED = 20_000
RANGES = 2_000


def level(tmp_path: Path, advisories: list[dict]) -> FilterSpec:
    (tmp_path / "osv.json").write_text(json.dumps(advisories))
    text = (
        "output: site\nfilters:\n  advisories: {files: [osv.json]}\nchannels:\n  cloud/forge:\n"
        "    url: https://conda.example.org/forge\n    subdirs: [linux-64]\n"
    )
    return parse_config(text, base_dir=tmp_path).filters


def excluded(spec: FilterSpec, records: list[Record]) -> dict[str, str]:
    levels = (spec, FilterSpec(), FilterSpec())
    return apply_filters({r.fn: r for r in records}, "linux-64", levels, RecordMatcher()).excluded


def parses() -> int:
    """How many versions were parsed (or taken from the cache) so far: each comparison of a
    version with one an advisory lists starts with one."""
    info = parse_version.cache_info()
    return info.hits + info.misses


def test_a_huge_advisory_costs_a_look_up_per_version_checked(tmp_path):
    listed = [f"1.{i}" for i in range(0, 2 * LISTED, 2)]  # 1.0, 1.2, 1.4...
    ranges = [
        {"type": "ECOSYSTEM", "events": [{"introduced": f"2.{i}"}, {"fixed": f"2.{i}.1"}]}
        for i in range(RANGES)
    ]
    entry = {"package": {"purl": "pkg:conda/pkg"}, "versions": listed, "ranges": ranges}
    spec = level(tmp_path, [{"id": "HUGE-1", "affected": [entry]}])
    versions = [f"1.{j}" for j in range(100)] + [f"2.{j}" for j in range(50)]
    versions += [f"2.{j}.1" for j in range(50)] + ["3.0"]
    records = [rec("pkg", v) for v in versions]
    affected = [f"1.{j}" for j in range(0, 100, 2)] + [f"2.{j}" for j in range(50)]

    before = parses()
    assert excluded(spec, records) == {f"pkg-{v}-0.conda": "advisory HUGE-1" for v in affected}
    notes = advisory_notes([spec], "pkg", versions)
    assert [note["version"] for note in notes["rows"]] == affected
    # The advisory's versions once, to index them, and each version checked about once by
    # the filter and once by the page. Comparing each with every listed version and range
    # instead took a parse per listed version and several per range, for every version: some
    # 10 million here.
    assert parses() - before < 2 * (LISTED + 2 * RANGES) + 10 * len(versions)


def test_a_package_page_meets_only_the_advisories_naming_it(tmp_path, monkeypatch):
    others = [
        {"id": f"OTHER-{i:05}", "affected": [{"package": {"purl": f"pkg:conda/other-{i}"}}]}
        for i in range(5_000)
    ]
    pkg = {"package": {"purl": "pkg:conda/pkg"}, "versions": ["1.0"]}
    spec = level(tmp_path, [*others, {"id": "PKG-1", "affected": [pkg]}])
    met: list[str] = []
    entries_for = Advisory.entries_for

    def counted(self: Advisory, name: object) -> object:
        met.append(self.id)
        return entries_for(self, name)  # type: ignore[arg-type]

    monkeypatch.setattr(Advisory, "entries_for", counted)
    versions = [f"1.{i}" for i in range(100)]
    notes = package_advisories([spec], "pkg", versions)
    assert [(v, [n.id for n in found.notes]) for v, found in notes.items()] == [("1.0", ["PKG-1"])]
    # Asked once for all the versions.
    assert met == ["PKG-1"]


# The schema's evaluation of one range, as it words it, against which the index is checked.
def schema_walk(events: tuple[tuple[str, str], ...], version: str) -> bool:
    v = parse_version(version)
    limits = [parse_version(t) for k, t in events if k == "limit" and t != "*"]
    if limits and all(v >= limit for limit in limits):
        return False
    affected = False
    walked = [e for e in events if e[0] != "limit"]
    for kind, text in sorted(
        walked, key=lambda e: (0, 0) if e[1] == "0" else (1, parse_version(e[1]))
    ):
        if kind == "introduced" and (text == "0" or v >= parse_version(text)):
            affected = True
        elif (kind == "fixed" and v >= parse_version(text)) or (
            kind == "last_affected" and v > parse_version(text)
        ):
            affected = False
    return affected


# Conda-equal spellings (1.0, 1.0.0, 1), pre- and post-releases, local versions, epochs, and
# "0" with what sorts below it.
VERSIONS = (  # noqa: SIM905 (a list of 29 short strings reads better as one)
    "0 00 0.0 0a1 0.dev 0.1 0.5 1.0a1 1.0A1 1.0rc1 1.0 1.0.0 1 1.0.post1 1.0+1 1.0+1.0 1.0.1 "
    "1.1 1.1.1 2.0 2.0.0 2 2.1 3.0a 3.0a0 3.0 5 1!0.5 1!1.0"
).split()


def test_the_index_answers_as_the_schema_walk_and_conda_equality_do():
    rng = random.Random(20240607)
    for _trial in range(1_500):
        ranges = []
        for _range in range(rng.randint(0, 3)):
            events = []
            for _event in range(rng.randint(0, 7)):
                kind = rng.choice(["introduced", "introduced", "fixed", "last_affected", "limit"])
                events.append((kind, rng.choice([*VERSIONS, *(["*"] if kind == "limit" else [])])))
            ranges.append(tuple(events))
        listed = rng.sample(VERSIONS, rng.randint(0, 3))
        index = VersionIndex(listed, ranges)
        for version in VERSIONS:
            expected = any(parse_version(v) == parse_version(version) for v in listed) or any(
                schema_walk(events, version) for events in ranges
            )
            assert index.contains(version) == expected, (listed, ranges, version)
        # Asked for many versions at once (by runs of its cells, or for a few, one by one).
        ordered = sorted(VERSIONS, key=parse_version)
        for some in (ordered, ordered[:: rng.randint(2, 20)]):
            runs = index.among([parse_version(v) for v in some])
            named = [v for start, end in runs for v in some[start:end]]
            assert named == [v for v in some if index.contains(v)], (listed, ranges, some)


class _CountedEntries(tuple):
    """An advisory's entries, counting how often they are walked through."""

    walks = 0

    def __iter__(self):
        _CountedEntries.walks += 1
        return super().__iter__()


def test_an_advisory_naming_many_packages_is_searched_by_name():
    """One advisory may name hundreds of thousands of packages: checking a version meets only
    the entries of its package (they are walked through once, to index them, not per check)."""
    others = [Affected(f"other-{i}", (), ("1.0",), None) for i in range(200_000)]
    entries = _CountedEntries([*others, Affected("pkg", (), ("1.5",), None)])
    wide = Advisory("WIDE-1", (), "", None, (), entries)
    _CountedEntries.walks = 0
    found = [
        v for v in (f"1.{i}" for i in range(4_000)) if affected_entry(wide, {"pkg", "pypi/pkg"}, v)
    ]
    assert _CountedEntries.walks <= 1
    assert found == ["1.5"]


ENTRIES = 2_000


@pytest.mark.parametrize("shape", ["one advisory", "one advisory each"])
def test_many_entries_naming_a_package_cost_a_look_up_per_version_checked(tmp_path, shape):
    """A file's entries for one package, within its size cap, may be tens of thousands (in
    one advisory, or one each): a version checked costs about one look-up, not one per entry,
    and is kept out for the first advisory by id naming it."""
    entries = [
        {
            "package": {"purl": "pkg:conda/pkg"},
            "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": f"1.{i}"}, {"fixed": f"1.{i}.1"}]}
            ],
        }
        for i in range(ENTRIES)
    ]
    if shape == "one advisory":
        advisories = [{"id": "MANY-1", "affected": entries}]
    else:  # the highest ids name the lowest versions: the first named is not the first read
        advisories = [
            {"id": f"MANY-{ENTRIES - i:05}", "affected": [entry]} for i, entry in enumerate(entries)
        ]
    spec = level(tmp_path, advisories)
    versions = [f"1.{j}" for j in range(0, ENTRIES, 20)] + [f"1.{j}.1" for j in range(100)]
    versions += ["0.5", "3.0"]
    records = [rec("pkg", v) for v in versions]

    before = parses()
    kept_out = excluded(spec, records)
    # Each entry's two versions, to index them, and each version checked about once. Checking
    # a version against each entry in turn took one parse per entry and version: 400,000.
    assert parses() - before < 3 * 2 * ENTRIES + 10 * len(versions)
    reason = {v: f"advisory MANY-{ENTRIES - int(v[2:]):05}" for v in versions[: ENTRIES // 20]}
    if shape == "one advisory":
        reason = dict.fromkeys(reason, "advisory MANY-1")
    assert kept_out == {f"pkg-{v}-0.conda": why for v, why in reason.items()}


def test_the_first_group_naming_a_version_is_the_first_whose_index_names_it():
    rng = random.Random(20250101)
    for _trial in range(300):
        groups = []
        for _group in range(rng.randint(0, 5)):
            ranges = [
                tuple(
                    (rng.choice(["introduced", "fixed", "last_affected"]), rng.choice(VERSIONS))
                    for _event in range(rng.randint(1, 4))
                )
                for _range in range(rng.randint(0, 2))
            ]
            groups.append((rng.sample(VERSIONS, rng.randint(0, 2)), ranges))
        first = FirstNaming(groups)
        for version in VERSIONS:
            naming = [i for i, group in enumerate(groups) if VersionIndex(*group).contains(version)]
            assert first.first(version) == (naming[0] if naming else None), (groups, version)
