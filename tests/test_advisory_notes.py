"""What package pages show of the advisories affecting a version: each advisory as itself when
two files or feeds hold one of the same id, and no more of an advisory's text per row, nor
more rows, than a page can carry, however much a feed holds."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from sitegen.conda.version import RecordMatcher
from sitegen.config import FilterSpec, parse_config
from sitegen.filters.advisory_notes import package_advisories
from sitegen.filters.apply import apply_filters
from sitegen.filters.osv import Affected
from sitegen.web.environment import make_environment
from sitegen.web.gates import (
    ADVISORIES_MAX,
    ADVISORY_ROWS_MAX,
    ADVISORY_SUMMARY_MAX,
    ALIASES_MAX,
    advisory_notes,
)
from testkit.advisories import zlib_advisory
from testkit.records import rec

pytestmark = pytest.mark.unit


def level(tmp_path: Path, files: dict[str, object]) -> FilterSpec:
    """The site's filters, with an advisories filter reading these files (name -> JSON)."""
    for name, document in files.items():
        (tmp_path / name).write_text(json.dumps(document))
    text = (
        f"output: site\nfilters:\n  advisories: {{files: {sorted(files)}, min_score: 7}}\n"
        "channels:\n  cloud/forge:\n    url: https://conda.example.org/forge\n"
        "    subdirs: [linux-64]\n"
    )
    return parse_config(text, base_dir=tmp_path).filters


def renamed(name: str, summary: str) -> dict[str, object]:
    """The critical zlib advisory (its id kept) naming another package, with its own summary."""
    advisory = zlib_advisory()
    advisory["affected"][0]["package"] = {"purl": f"pkg:conda/{name}"}
    return {**advisory, "summary": summary}


def rendered(notes: object) -> str:
    macros = make_environment().get_template("_gates.html").make_module({"page": "package.html"})
    return str(macros.package_advisories(notes))


def test_advisories_sharing_an_id_are_each_shown_as_themselves(tmp_path):
    spec = level(
        tmp_path,
        {"a.json": renamed("foo", "foo overflows"), "b.json": renamed("bar", "bar leaks")},
    )
    levels = (spec, FilterSpec(), FilterSpec())
    records = {r.fn: r for r in (rec("foo", "1.0"), rec("bar", "1.0"))}
    excluded = apply_filters(records, "linux-64", levels, RecordMatcher()).excluded
    # Both block, and the run names the id they share.
    assert excluded == {
        "foo-1.0-0.conda": "advisory TEST-ZLIB-1",
        "bar-1.0-0.conda": "advisory TEST-ZLIB-1",
    }
    for name, summary in (("foo", "foo overflows"), ("bar", "bar leaks")):
        (note,) = package_advisories([spec], name, ["1.0"])["1.0"].notes
        assert (note.id, note.summary, note.blocked) == ("TEST-ZLIB-1", summary, True)


def test_a_version_a_run_blocked_lists_each_advisory_of_the_id_it_names(tmp_path):
    """The run names only the id (a record's own purl reached the entry, which the page cannot
    tell): each advisory of that id is listed, not the last one read."""
    spec = level(
        tmp_path,
        {"a.json": renamed("foo", "foo overflows"), "b.json": renamed("bar", "bar leaks")},
    )
    notes = package_advisories([spec], "baz", ["1.0"], {"1.0": ["TEST-ZLIB-1"]})["1.0"].notes
    assert sorted(n.summary for n in notes) == ["bar leaks", "foo overflows"]


def test_an_advisory_read_twice_is_listed_once(tmp_path):
    spec = level(tmp_path, {"a.json": zlib_advisory(), "b.json": zlib_advisory()})
    (note,) = package_advisories([spec, spec], "zlib", ["1.2.13"])["1.2.13"].notes
    assert note.blocked


def test_a_long_summary_and_many_aliases_are_shown_bounded_on_each_row(tmp_path):
    """A feed's member may hold megabytes of summary and thousands of aliases; each affected
    version's row repeats what is shown of them, so a page would be gigabytes."""
    aliases = [f"CVE-2024-{i:05}" for i in range(5_000)]
    hostile = {**zlib_advisory(), "summary": "overflow " * 100_000, "aliases": aliases}
    spec = level(tmp_path, {"a.json": hostile})
    versions = [f"1.2.{i}" for i in range(20)]
    notes = advisory_notes([spec], "zlib", versions)
    assert [row["version"] for row in notes["rows"]] == versions
    html = rendered(notes)
    assert html.count("CVE-2024-00000") == len(versions)
    assert html.count(f"and {len(aliases) - ALIASES_MAX} more") == len(versions)
    assert f"CVE-2024-{ALIASES_MAX:05}" not in html
    assert len(html) < len(versions) * (ADVISORY_SUMMARY_MAX + 40 * ALIASES_MAX + 1_000)


def naming_pkg(count: int, critical_every: int = 0) -> list[dict[str, object]]:
    """``count`` small advisories, each affecting every version of ``pkg``; every
    ``critical_every``-th one critical, the others unscored."""
    critical = zlib_advisory()["severity"]
    affected = [
        {
            "package": {"purl": "pkg:conda/pkg"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
        }
    ]
    return [
        {
            "id": f"FLOOD-{i:05}",
            "summary": "flood",
            "affected": affected,
            **({"severity": critical} if critical_every and i % critical_every == 0 else {}),
        }
        for i in range(count)
    ]


def test_a_flood_of_advisories_naming_a_package_lists_the_most_severe_per_version(tmp_path):
    """A feed may hold tens of thousands of small advisories naming one package: listed in
    full, each of its versions would repeat them all (here 2,000 of them: 100,000 rows; the
    check of every advisory against every version makes more cost seconds, not more proof)."""
    spec = level(tmp_path, {"a.json": naming_pkg(2_000, critical_every=100)})
    versions = [f"1.{i}" for i in range(50)]
    html = rendered(advisory_notes([spec], "pkg", versions))
    # At most ADVISORIES_MAX rows per version, plus the line saying how many more.
    assert html.count("<tr>") <= len(versions) * (ADVISORIES_MAX + 1) + 1
    assert len(html) < len(versions) * (ADVISORIES_MAX + 1) * 1_000
    assert html.count(f"and {2_000 - ADVISORIES_MAX} more") == len(versions)
    # The critical ones (blocked: unscored ones block too, but score lower) first, then by id.
    first = html.split("</tbody>", 1)[0].split("<tr>")[2 : 2 + 22]
    ids = [row.split("<code>", 1)[1].split("</code>", 1)[0] for row in first]
    assert ids == [f"FLOOD-{i:05}" for i in range(0, 2_000, 100)] + [
        "FLOOD-00001",
        "FLOOD-00002",
    ]


def test_a_flood_of_advisories_costs_a_look_up_per_advisory_not_per_version(tmp_path, monkeypatch):
    """Each advisory naming the package is asked once which of the page's versions it affects:
    checked against each version instead, 20,000 of them over 50 versions made a million
    checks for one page, most of them for advisories the page only counts."""
    spec = level(tmp_path, {"a.json": naming_pkg(20_000, critical_every=100)})
    versions = [f"1.{i}" for i in range(50)]
    asked: Counter[str] = Counter()
    for method in ("contains", "among"):  # one version, or many at once
        real = getattr(Affected, method)

        def counted(
            self: Affected, arg: object, method: str = method, real: Callable[..., object] = real
        ) -> object:
            asked[method] += 1
            return real(self, arg)

        monkeypatch.setattr(Affected, method, counted)
    notes = advisory_notes([spec], "pkg", versions)
    assert asked == {"among": 20_000}
    assert [row["version"] for row in notes["rows"]] == versions
    assert {len(row["advisories"]) for row in notes["rows"]} == {ADVISORIES_MAX}
    assert {row["more"] for row in notes["rows"]} == {20_000 - ADVISORIES_MAX}
    # The first hundred of the 200 critical ones, by id.
    critical = [f"FLOOD-{i:05}" for i in range(0, 100 * ADVISORIES_MAX, 100)]
    assert all([n["id"] for n in row["advisories"]] == critical for row in notes["rows"])


def test_a_page_lists_the_advisories_of_at_most_advisory_rows_max_rows(tmp_path):
    spec = level(tmp_path, {"a.json": naming_pkg(ADVISORIES_MAX)})
    listed = ADVISORY_ROWS_MAX // ADVISORIES_MAX
    versions = [f"1.{i}" for i in range(listed + 30)]
    notes = advisory_notes([spec], "pkg", versions)
    assert [row["version"] for row in notes["rows"]] == versions[:listed]
    assert (notes["count"], notes["more"]) == (len(versions), 30)
    html = rendered(notes)
    assert f"{len(versions)} versions" in html and "and 30 more versions" in html


def test_one_version_left_out_is_counted_in_the_singular(tmp_path):
    spec = level(tmp_path, {"a.json": naming_pkg(ADVISORIES_MAX)})
    listed = ADVISORY_ROWS_MAX // ADVISORIES_MAX
    notes = advisory_notes([spec], "pkg", [f"1.{i}" for i in range(listed + 1)])
    assert notes["more"] == 1
    html = rendered(notes)
    assert "and 1 more version with advisories" in html and "1 more versions" not in html
