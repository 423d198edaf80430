"""Advisories in the OSV format read from files and trees, scored, in conda version order."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sitegen.config import parse_config
from sitegen.config.operator_files import OperatorFileError, tree_files
from sitegen.filters import osv
from sitegen.filters.advisories import policy_of
from sitegen.filters.osv import load_files, parse_bytes
from sitegen.filters.osv_severity import cvss_score
from testkit.advisories import DATA, V3_REQUESTS, advisory, affected_entry, conda, ecosystem

pytestmark = pytest.mark.unit

V4_OPENSSL = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"


def parse_one(document: object) -> osv.Advisory:
    (parsed,) = parse_bytes(json.dumps(document).encode(), Path("a.json"))
    return parsed


def test_realistic_advisories_are_read_with_scores_from_v3_and_v4_vectors():
    by_id = {a.id: a for a in load_files([DATA])}
    assert sorted(by_id) == [
        "GHSA-j8r2-6x86-q33q",
        "GHSA-v845-jxx5-vc9f",
        "OSV-2024-openssl-1",
        "OSV-2024-zlib-limit",
    ]
    requests = by_id["GHSA-j8r2-6x86-q33q"]
    assert requests.aliases == ("CVE-2023-32681", "PYSEC-2023-74")
    assert requests.score == 6.1 and requests.vectors == (V3_REQUESTS,)
    # The conda entry by its name, the PyPI one by its package key (for identity mappings).
    assert [e.name for e in requests.affected] == ["requests", "pypi/requests"]
    # The highest of a v3 (6.6) and a v4 (8.2) vector.
    assert cvss_score("CVSS_V3", "CVSS:3.1/AV:N/AC:H/PR:H/UI:N/S:U/C:H/I:H/A:H") == 6.6
    assert by_id["GHSA-v845-jxx5-vc9f"].score == 8.2
    assert by_id["OSV-2024-openssl-1"].score == 9.3
    # "conda:conda-forge" is the conda ecosystem; Debian's entry (with Debian versions that are
    # no conda versions) is read and ignored.
    assert [e.name for e in by_id["OSV-2024-openssl-1"].affected] == ["openssl"]
    assert by_id["OSV-2024-zlib-limit"].score is None


def site_advisories(tmp_path: Path, files: str) -> tuple[str, ...]:
    """The ids of the advisories the site-level filter reads from ``files``."""
    text = (
        f"output: site\nfilters:\n  advisories: {{files: [{files}]}}\nchannels:\n"
        "  cloud/forge:\n    url: https://conda.example.org/forge\n    subdirs: [linux-64]\n"
    )
    policy = policy_of(parse_config(text, base_dir=tmp_path).filters)
    assert policy is not None
    return tuple(a.id for a in policy.advisories)


def test_a_directory_is_read_at_every_depth_like_the_github_advisory_database(tmp_path):
    """A directory stands for the *.json files below it at any depth (GitHub's database keeps
    one per github-reviewed/<year>/<month>/<id>/), in path order; hidden files and directories
    (.git) are passed over, and a link back up the tree ends nothing and reads nothing twice."""
    tree = tmp_path / "advisory-database" / "advisories"
    for year, month, name in [
        ("2023", "05", "GHSA-j8r2-6x86-q33q"),
        ("2024", "07", "OSV-openssl-v4"),
    ]:
        folder = tree / "github-reviewed" / year / month / name
        folder.mkdir(parents=True)
        shutil.copy(DATA / f"{name}.json", folder / f"{name}.json")
    (tree / "github-reviewed" / "2023" / "05" / "README.md").write_text("not an advisory")
    (tree / ".git" / "objects").mkdir(parents=True)
    (tree / ".git" / "objects" / "broken.json").write_text("{not json")
    (tree / "github-reviewed" / ".draft.json").write_text("{not json")
    (tree / "github-reviewed" / "2024" / "loop").symlink_to(tree)
    read = site_advisories(tmp_path, "advisory-database/advisories")
    assert read == (
        "GHSA-j8r2-6x86-q33q",
        "OSV-2024-openssl-1",
        "OSV-2024-zlib-limit",  # the second advisory of that file
    )
    assert site_advisories(tmp_path, "advisory-database") == read


def test_a_tree_of_too_many_files_is_refused(tmp_path):
    for i in range(4):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"d{i}" / "a.json").write_text("{}")
    assert len(tree_files(tmp_path, ".json", limit=4)) == 4
    with pytest.raises(OperatorFileError, match=r"more than 3 \.json files below it"):
        tree_files(tmp_path, ".json", limit=3)


def test_a_directory_without_advisories_is_reported(tmp_path, caplog):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert site_advisories(tmp_path, "empty") == ()
    assert "advisories.files[0]: no advisories in the *.json files below" in caplog.text


def test_plain_numeric_scores():
    assert cvss_score("CVSS_V3", "7.5") == 7.5
    assert cvss_score("Ubuntu", "high") is None
    assert "between 0 and 10" in str(cvss_score("CVSS_V3", "11"))


def test_withdrawn_advisories_name_the_time_they_were_withdrawn():
    affected = [conda("zlib", ecosystem({"introduced": "0"}))]
    assert parse_one(advisory(affected, withdrawn="2024-06-16T18:49:54Z")).withdrawn
    assert not parse_one(advisory(affected)).withdrawn
    assert not parse_one(advisory(affected, withdrawn=None)).withdrawn
    # RFC 3339 allows a leap second: read as the last second of its minute, not refused.
    for leap in ("2016-12-31T23:59:60Z", "2016-12-31t23:59:60.5z", "2017-01-01T05:29:60+05:30"):
        assert parse_one(advisory(affected, withdrawn=leap)).withdrawn, leap


def test_every_range_type_in_conda_version_order():
    by_id = {a.id: a for a in load_files([DATA])}
    requests = by_id["GHSA-j8r2-6x86-q33q"]
    assert [
        v
        for v in ("2.2.1", "2.3.0", "2.30.0", "2.31.0", "2.32.3")
        if affected_entry(requests, "requests", v)
    ] == ["2.3.0", "2.30.0"]
    urllib3 = by_id["GHSA-v845-jxx5-vc9f"]  # two ranges; introduced "0"
    assert [
        v
        for v in ("1.0", "1.26.16", "1.26.17", "2.0.0a1", "2.0.5", "2.0.6", "2.2.0")
        if affected_entry(urllib3, "urllib3", v)
    ] == ["1.0", "1.26.16", "2.0.5"]
    openssl = by_id["OSV-2024-openssl-1"]  # SEMVER with last_affected, GIT, listed versions
    assert [
        v
        for v in ("1.1.1w", "1.1.1v", "3.0.0", "3.0.14", "3.0.15", "3.1.0")
        if affected_entry(openssl, "openssl", v)
    ] == ["1.1.1w", "3.0.0", "3.0.14"]
    zlib = by_id["OSV-2024-zlib-limit"]  # a purl version, and a limit
    assert [
        v for v in ("1.2.11", "1.2.12", "1.2.13", "1.3", "1.3.1") if affected_entry(zlib, "zlib", v)
    ] == ["1.2.11", "1.2.12", "1.2.13"]


def test_range_boundaries_follow_conda_pre_and_post_release_order():
    fixed = parse_one(
        advisory([conda("pkg", ecosystem({"introduced": "1.0"}, {"fixed": "1.0.post1"}))])
    )
    assert not affected_entry(fixed, "pkg", "1.0a1")
    assert affected_entry(fixed, "pkg", "1.0") and affected_entry(fixed, "pkg", "1.0.0")
    assert not affected_entry(fixed, "pkg", "1.0.post1")
    last = parse_one(
        advisory([conda("pkg", ecosystem({"introduced": "1.0a1"}, {"last_affected": "1.0"}))])
    )
    assert [
        v for v in ("0.9", "1.0a1", "1.0rc1", "1.0", "1.0.post1") if affected_entry(last, "pkg", v)
    ] == [
        "1.0a1",
        "1.0rc1",
        "1.0",
    ]
    # Both kinds of upper bound in one range (the schema wants one; published feeds hold
    # both): walked as any range is, in version order, the last event applying decides.
    both = parse_one(
        advisory(
            [
                conda(
                    "pkg", ecosystem({"introduced": "0"}, {"fixed": "1"}, {"last_affected": "2"})
                ),
                conda(
                    "cap", ecosystem({"introduced": "0"}, {"last_affected": "1"}, {"fixed": "2"})
                ),
            ]
        )
    )
    versions = ("0.5", "1", "1.5", "2", "2.5")
    assert [v for v in versions if affected_entry(both, "pkg", v)] == ["0.5"]
    assert [v for v in versions if affected_entry(both, "cap", v)] == ["0.5", "1"]
    # A PyPI entry orders a development release as PEP 440 does, below the pre-releases of
    # its version (conda puts the dotted "1.0.dev1" above "1.0a1"); a conda entry as conda.
    pypi = {"package": {"ecosystem": "PyPI", "name": "Pkg"}}
    dev = parse_one(
        advisory(
            [
                {**pypi, "ranges": [ecosystem({"introduced": "0"}, {"fixed": "1.0a1"})]},
                conda("pkg", ecosystem({"introduced": "0"}, {"fixed": "1.0a1"})),
            ]
        )
    )
    early = ("1.0.dev1", "1.0-dev2", "1.0_DEV", "1.0.dev1+cpu", "1.0rc1.dev1")
    assert [v for v in early if affected_entry(dev, "pypi/pkg", v)] == list(early[:4])
    assert not affected_entry(dev, "pypi/pkg", "1.0a1") and not affected_entry(
        dev, "pypi/pkg", "1.0.post1.dev1"
    )
    assert not affected_entry(dev, "pkg", "1.0.dev1") and affected_entry(dev, "pkg", "0.9")
    # Events in any order, reintroduced after a fix.
    again = parse_one(
        advisory(
            [
                conda(
                    "pkg",
                    ecosystem(
                        {"fixed": "1.1"},
                        {"introduced": "2.0"},
                        {"introduced": "0"},
                        {"fixed": "2.1"},
                    ),
                )
            ]
        )
    )
    assert [v for v in ("1.0", "1.1", "2.0", "2.1") if affected_entry(again, "pkg", v)] == [
        "1.0",
        "2.0",
    ]
    git = parse_one(advisory([conda("pkg", ecosystem({"introduced": "0"}, kind="GIT"))]))
    assert not affected_entry(git, "pkg", "1.0")
