"""What package pages show of the advisories affecting a version: each advisory as itself when
two files or feeds hold one of the same id, and no more of an advisory's text per row than a
page can carry, however much of it a feed holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitegen.conda.version import RecordMatcher
from sitegen.config import FilterSpec, parse_config
from sitegen.filters.advisory_notes import package_advisories
from sitegen.filters.apply import apply_filters
from sitegen.web.environment import make_environment
from sitegen.web.gates import ADVISORY_SUMMARY_MAX, ALIASES_MAX, advisory_notes
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
        (note,) = package_advisories([spec], name, ["1.0"])["1.0"]
        assert (note.id, note.summary, note.blocked) == ("TEST-ZLIB-1", summary, True)


def test_a_version_a_run_blocked_lists_each_advisory_of_the_id_it_names(tmp_path):
    """The run names only the id (a record's own purl reached the entry, which the page cannot
    tell): each advisory of that id is listed, not the last one read."""
    spec = level(
        tmp_path,
        {"a.json": renamed("foo", "foo overflows"), "b.json": renamed("bar", "bar leaks")},
    )
    notes = package_advisories([spec], "baz", ["1.0"], {"1.0": ["TEST-ZLIB-1"]})["1.0"]
    assert sorted(n.summary for n in notes) == ["bar leaks", "foo overflows"]


def test_an_advisory_read_twice_is_listed_once(tmp_path):
    spec = level(tmp_path, {"a.json": zlib_advisory(), "b.json": zlib_advisory()})
    (note,) = package_advisories([spec, spec], "zlib", ["1.2.13"])["1.2.13"]
    assert note.blocked


def test_a_long_summary_and_many_aliases_are_shown_bounded_on_each_row(tmp_path):
    """A feed's member may hold megabytes of summary and thousands of aliases; each affected
    version's row repeats what is shown of them, so a page would be gigabytes."""
    aliases = [f"CVE-2024-{i:05}" for i in range(5_000)]
    hostile = {**zlib_advisory(), "summary": "overflow " * 100_000, "aliases": aliases}
    spec = level(tmp_path, {"a.json": hostile})
    versions = [f"1.2.{i}" for i in range(20)]
    rows = advisory_notes([spec], "zlib", versions)
    assert [row["version"] for row in rows] == versions
    macros = make_environment().get_template("_gates.html").make_module({"page": "package.html"})
    html = str(macros.package_advisories(rows))
    assert html.count("CVE-2024-00000") == len(versions)
    assert html.count(f"and {len(aliases) - ALIASES_MAX} more") == len(versions)
    assert f"CVE-2024-{ALIASES_MAX:05}" not in html
    assert len(html) < len(versions) * (ADVISORY_SUMMARY_MAX + 40 * ALIASES_MAX + 1_000)
