"""Advisories in the OSV format: reading, range semantics in conda order, the filter kind and
every way an advisory file can be bad."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
from pathlib import Path

import pytest

from sitegen.cli import EXIT_CONFIG, main
from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config import ConfigError, FilterSpec, parse_config
from sitegen.config.operator_files import OperatorFileError, tree_files
from sitegen.filters import osv
from sitegen.filters.advisories import policy_of
from sitegen.filters.advisory_notes import package_advisories
from sitegen.filters.apply import apply_filters
from sitegen.filters.osv import OsvError, load_files, parse_bytes
from sitegen.filters.osv_severity import cvss_score
from testkit.advisories import affected_entry
from testkit.records import rec

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data" / "osv"
V3_REQUESTS = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"
V4_OPENSSL = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"


def advisory(affected: list[dict], **fields: object) -> dict:
    return {"id": "TEST-1", "affected": affected, **fields}


def conda(name: str, *ranges: dict, versions: tuple[str, ...] = ()) -> dict:
    entry: dict = {"package": {"purl": f"pkg:conda/{name}"}, "ranges": list(ranges)}
    if versions:
        entry["versions"] = list(versions)
    return entry


def ecosystem(*events: dict, kind: str = "ECOSYSTEM") -> dict:
    return {"type": kind, "events": list(events)}


def parse_one(document: object) -> osv.Advisory:
    (parsed,) = parse_bytes(json.dumps(document).encode(), Path("a.json"))
    return parsed


# --------------------------------------------------------------------------- reading


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


@pytest.mark.parametrize("named", ["the tree", "the fifo"])
def test_a_fifo_named_like_an_advisory_file_is_refused_not_waited_on(tmp_path, named):
    """Nothing ever writes into it: reading it would hold the configuration's loading."""
    tree = tmp_path / "advisories"
    tree.mkdir()
    shutil.copy(DATA / "GHSA-j8r2-6x86-q33q.json", tree)
    os.mkfifo(tree / "pipe.json")
    files = "advisories" if named == "the tree" else "advisories/pipe.json"

    def hung(signum: int, frame: object) -> None:
        raise AssertionError("the configuration's loading waits on the fifo")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, 5)
    try:
        message = bad(tmp_path, "{}", f"{{files: [{files}]}}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert message.startswith(PREFIX), message
    assert f"{tree}/pipe.json: not a regular file" in message, message


def test_plain_numeric_scores():
    assert cvss_score("CVSS_V3", "7.5") == 7.5
    assert cvss_score("Ubuntu", "high") is None
    assert "between 0 and 10" in str(cvss_score("CVSS_V3", "11"))


def test_withdrawn_advisories_name_the_time_they_were_withdrawn():
    affected = [conda("zlib", ecosystem({"introduced": "0"}))]
    assert parse_one(advisory(affected, withdrawn="2024-06-16T18:49:54Z")).withdrawn
    assert not parse_one(advisory(affected)).withdrawn
    assert not parse_one(advisory(affected, withdrawn=None)).withdrawn


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


# --------------------------------------------------------------------------- the filter


def config(tmp_path: Path, advisories: str, *, channel_filters: str = "") -> FilterSpec:
    shutil.copytree(DATA, tmp_path / "osv")
    text = f"""\
output: site
filters:
  advisories: {advisories}
channels:
  cloud/forge:
    url: https://conda.example.org/forge
    subdirs: [linux-64]
{channel_filters}"""
    return parse_config(text, base_dir=tmp_path).filters


def run(spec: FilterSpec, records: list[Record]) -> dict[str, str]:
    result = apply_filters(
        {r.fn: r for r in records}, "linux-64", (spec, FilterSpec(), FilterSpec()), RecordMatcher()
    )
    return result.excluded


RECORDS = [
    rec("requests", "2.30.0"),
    rec("requests", "2.31.0"),
    rec("urllib3", "2.0.5"),
    rec("openssl", "3.0.14"),
    rec("openssl", "3.0.15"),
    rec("zlib", "1.2.13"),
    rec("numpy", "1.26.4"),
]


def test_filter_blocks_by_score_threshold_with_reason(tmp_path):
    spec = config(tmp_path, "{files: [osv], min_score: 7.0}")
    assert run(spec, RECORDS) == {
        # requests' 6.1 is below the threshold; zlib's advisory has no score: it blocks.
        "urllib3-2.0.5-0.conda": "advisory GHSA-v845-jxx5-vc9f",
        "openssl-3.0.14-0.conda": "advisory OSV-2024-openssl-1",
        "zlib-1.2.13-0.conda": "advisory OSV-2024-zlib-limit",
    }
    everything = config(tmp_path / "b", "{files: [osv/GHSA-j8r2-6x86-q33q.json]}")
    assert run(everything, RECORDS) == {"requests-2.30.0-0.conda": "advisory GHSA-j8r2-6x86-q33q"}
    v4_only = config(tmp_path / "c", "{files: [osv], min_score: 9.0}")
    assert set(run(v4_only, RECORDS).values()) == {
        "advisory OSV-2024-openssl-1",
        "advisory OSV-2024-zlib-limit",
    }


def test_allow_list_accepts_ids_and_aliases(tmp_path):
    spec = config(
        tmp_path, "{files: [osv], min_score: 7.0, allow: [CVE-2023-43804, OSV-2024-zlib-limit]}"
    )
    assert run(spec, RECORDS) == {"openssl-3.0.14-0.conda": "advisory OSV-2024-openssl-1"}


def test_allow_list_ids_match_in_any_case(tmp_path):
    # OSV ids are "<DB>-<ENTRYID>" (CVE-2023-43804, GHSA-v845-jxx5-vc9f); the databases treat
    # them in any case, and so does an operator copying one from a page or a ticket.
    spec = config(
        tmp_path, "{files: [osv], min_score: 7.0, allow: [cve-2023-43804, osv-2024-ZLIB-LIMIT]}"
    )
    assert run(spec, RECORDS) == {"openssl-3.0.14-0.conda": "advisory OSV-2024-openssl-1"}


def test_an_allow_id_no_advisory_bears_is_warned_of_with_its_line(tmp_path, caplog):
    # Likely a typo, or the id of another level's advisories: this level's allow-list is its own.
    with caplog.at_level(logging.WARNING, logger="sitegen"):
        config(tmp_path, "{files: [osv], allow: [CVE-2023-43804, CVE-2099-0001]}")
    (warning,) = [r.getMessage() for r in caplog.records if "allows nothing" in r.getMessage()]
    assert "filters.advisories.allow[1]: 'CVE-2099-0001' is neither the id nor an alias" in warning


def test_an_allow_id_that_is_not_printable_is_a_configuration_error(tmp_path, capsys):
    """As an advisory's own id: a tab, newline, DEL, C1 control or format character in an
    allow-list id is refused with its file, line and key (exit 2), not just warned of as
    allowing nothing."""
    shutil.copytree(DATA, tmp_path / "osv")
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        "output: site\n"
        "filters:\n"
        "  advisories:\n"
        "    files: [osv]\n"
        "    allow:\n"
        "      - CVE-2023-43804\n"
        '      - "CVE-2023-43804\\n"\n'
        '      - "a\\tb"\n'
        '      - "\\x7f"\n'
        '      - "\\x9b31m"\n'
        '      - "\\u200b"\n'
        "channels:\n"
        "  cloud/forge: {url: https://conda.example.org/forge, subdirs: [linux-64]}\n"
    )
    assert main(["status", "-c", str(config_path)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    shown = ["'CVE-2023-43804\\n'", "'a\\tb'", "'\\x7f'", "'\\x9b31m'", "'\\u200b'"]
    for index, value in enumerate(shown, start=1):
        where = f"channels.yaml:{index + 6}: filters.advisories.allow[{index}]"
        assert f"{where}: expected an id of printable characters, got {value}" in err, err
    assert "allow[0]" not in err and "allows nothing" not in err


def test_an_allow_id_of_only_whitespace_is_a_configuration_error(tmp_path, capsys):
    """As an empty one: blanks where an id should be are a paste gone wrong, refused with the
    file, line and key (exit 2) rather than warned of as allowing nothing."""
    shutil.copytree(DATA, tmp_path / "osv")
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        "output: site\n"
        "filters:\n"
        "  advisories:\n"
        "    files: [osv]\n"
        "    allow:\n"
        "      - CVE-2023-43804\n"
        '      - "  "\n'
        "channels:\n"
        "  cloud/forge: {url: https://conda.example.org/forge, subdirs: [linux-64]}\n"
    )
    assert main(["status", "-c", str(config_path)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "channels.yaml:7: filters.advisories.allow[1]: expected an id, got '  '" in err, err
    assert "allows nothing" not in err


def test_filter_at_channel_level_and_for_absent_packages(tmp_path):
    (tmp_path / "other.json").write_text(
        json.dumps(advisory([conda("not-on-this-site", ecosystem({"introduced": "0"}))]))
    )
    parsed = parse_config(
        "output: site\nchannels:\n  cloud/forge:\n    filters:\n      advisories: {files: [other.json]}\n"
        "    mirrors:\n      - url: https://conda.example.org/forge\n        subdirs: [linux-64]\n",
        base_dir=tmp_path,
    )
    assert run(parsed.channels[0].filters, RECORDS) == {}
    policy = policy_of(parsed.channels[0].filters)
    assert policy is not None and [a.id for a in policy.advisories] == ["TEST-1"]


def test_edited_advisory_changes_the_configuration(tmp_path):
    first = config(tmp_path, "{files: [osv]}")
    path = tmp_path / "osv" / "GHSA-j8r2-6x86-q33q.json"
    path.write_text(path.read_text().replace('"fixed": "2.31.0"', '"fixed": "2.32.0"'))
    second = parse_config(
        "output: site\nfilters:\n  advisories: {files: [osv]}\nchannels:\n  cloud/forge:\n"
        "    url: https://conda.example.org/forge\n    subdirs: [linux-64]\n",
        base_dir=tmp_path,
    ).filters
    assert first != second  # so the inputs digest of a run differs too


# --------------------------------------------------------------------------- bad input


def bad(tmp_path: Path, content: bytes | str, advisories: str = "{files: [bad.json]}") -> str:
    path = tmp_path / "bad.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    text = (
        "output: site\nchannels:\n  cloud/forge:\n    url: https://conda.example.org/forge\n"
        f"    subdirs: [linux-64]\n    filters:\n      advisories: {advisories}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, filename="channels.yaml", base_dir=tmp_path)
    return str(caught.value)


PREFIX = "channels.yaml:7: channels.cloud/forge.filters.advisories.files[0]: bad advisory file: "


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("{not json", "bad.json: line 1: not valid JSON"),
        ('{"id": "X", "affected": [NaN]}', "bad.json: not valid JSON"),
        (b"\xff\xfe", "bad.json: not UTF-8 text"),
        ('{"id": "X", "summary": "\\ud800"}', "bad.json: not UTF-8 text"),
        ('{"id": "X", "aliases": ["CVE-\\udfff"]}', "bad.json: not UTF-8 text"),
        ("[" * 100_000 + "]" * 100_000, "bad.json: not valid JSON: nested too deeply"),
        ("[1]", "bad.json: [0]: expected an object"),
        ('{"summary": "no id"}', "bad.json: (top level): missing required key 'id'"),
        ('{"id": 7}', "bad.json: id: expected a non-empty string"),
        (
            '{"id": "X\\nERROR forged line\\u001b[2J"}',
            "bad.json: id: expected an id of printable characters, got 'X\\nERROR",
        ),
        (
            '{"id": "X", "aliases": ["CVE-1", "CVE-2\\nERROR forged line"]}',
            "bad.json: aliases[1]: expected an id of printable characters, got 'CVE-2\\nERROR",
        ),
        ('{"id": "   "}', "bad.json: id: expected an id, got '   '"),
        (
            '{"id": "X", "aliases": ["CVE-1\\u001b[2J"]}',
            "bad.json: aliases[0]: expected an id of printable characters, got 'CVE-1\\x1b[2J'",
        ),
        ('{"id": "X", "affected": {}}', "bad.json: affected: expected a list"),
        (
            json.dumps(advisory([conda("p", ecosystem({"introduced": "0"}))]))[:-1]
            + ', "affected": []}',
            "bad.json: (top level): duplicate key 'affected'",
        ),
        ('{"id": "X", "withdrawn": false}', "bad.json: withdrawn: expected a non-empty string"),
        ('{"id": "X", "withdrawn": "no"}', "bad.json: withdrawn: expected the time of withdrawal"),
        (
            json.dumps(advisory([conda("p", ecosystem({"introduced": "0"}, kind="RANGE"))])),
            "bad.json: affected[0].ranges[0].type: unknown range type 'RANGE'",
        ),
        (
            json.dumps(advisory([conda("p", ecosystem({"fixed": "1.0"}))])),
            "bad.json: affected[0].ranges[0]: a range needs an 'introduced' event",
        ),
        (
            json.dumps(advisory([conda("p", ecosystem({"introduced": "0"}, {"fixed": "1 .0 x"}))])),
            "bad.json: affected[0].ranges[0].events[1].fixed: invalid conda version '1 .0 x'",
        ),
        (
            json.dumps(advisory([conda("p", ecosystem({"introduced": "0", "fixed": "1"}))])),
            "bad.json: affected[0].ranges[0].events[0]: an event is one of",
        ),
        (
            json.dumps(advisory([conda("p", versions=("not a version",))])),
            "bad.json: affected[0].versions[0]: invalid conda version",
        ),
        (
            json.dumps(advisory([], severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:X"}])),
            "bad.json: severity[0].score: invalid CVSS_V3 vector",
        ),
        (
            json.dumps(advisory([], severity=[{"type": "CVSS_V4", "score": V3_REQUESTS}])),
            "bad.json: severity[0].score: invalid CVSS_V4 vector",
        ),
        (
            json.dumps(advisory([{"package": {"purl": "conda/x"}}])),
            "bad.json: affected[0].package.purl: not a package URL",
        ),
    ],
)
def test_bad_advisory_files_name_file_path_and_key(tmp_path, content, where):
    message = bad(tmp_path, content)
    assert message.startswith(PREFIX), message
    assert f"{tmp_path}/{where}" in message, message


LONG = "9" * 100_000


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ({"id": "X\n" + LONG}, "id: expected an id of printable characters"),
        ({"id": LONG}, "id: expected an id of at most 200 characters"),
        ({"id": "X", "aliases": [LONG]}, "aliases[0]: expected an id of at most 200 characters"),
        ({"id": "X", "withdrawn": LONG}, "withdrawn: expected the time of withdrawal"),
        (advisory([], severity=[{"type": "CVSS_V3", "score": LONG}]), "severity[0].score: score"),
        (
            advisory([], severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/" + LONG}]),
            "severity[0].score: invalid CVSS_V3 vector",
        ),
        (
            advisory([conda("p", ecosystem({"introduced": "0"}, kind=LONG))]),
            "affected[0].ranges[0].type: unknown range type",
        ),
        (
            advisory([conda("p", ecosystem({"introduced": "0"}, {LONG: "1"}))]),
            "affected[0].ranges[0].events[1]: an event is one of",
        ),
        (
            advisory([conda("p", ecosystem({"introduced": "0"}, {"fixed": "1 " + LONG}))]),
            "affected[0].ranges[0].events[1].fixed: invalid conda version",
        ),
        (advisory([conda("p", versions=("1.0-" + LONG + "-a-b",))]), "affected[0].versions[0]"),
        (advisory([{"package": {"purl": LONG}}]), "affected[0].package.purl: not a package URL"),
    ],
)
def test_a_long_value_of_an_advisory_is_quoted_clipped(tmp_path, content, where):
    """100,000 characters of an advisory file are quoted by their start and their length."""
    message = bad(tmp_path, json.dumps(content))
    assert f"{tmp_path}/bad.json: {where}" in message, message[:500]
    assert len(message.replace(str(tmp_path), "")) < 500, message[:500]
    assert "... (100,0" in message, message[:500]


def test_a_long_duplicate_key_of_an_advisory_file_is_quoted_clipped(tmp_path):
    message = bad(tmp_path, f'{{"id": "X", "{LONG}": 1, "{LONG}": 2}}')
    assert f"{tmp_path}/bad.json: (top level): duplicate key '999" in message, message[:500]
    assert len(message.replace(str(tmp_path), "")) < 500, message[:500]


def test_huge_file_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    monkeypatch.setattr(osv, "MAX_FILE_BYTES", 1024)
    message = bad(tmp_path, json.dumps(advisory([], summary="x" * 2000)))
    assert message.startswith(PREFIX) and "bad.json: larger than" in message


def test_missing_file_and_bad_settings(tmp_path):
    message = bad(tmp_path, "{}", "{files: [nowhere.json], min_score: 11, allow: {a: 1}}")
    assert "advisories.files[0]: no such file or directory" in message
    assert "advisories.min_score: must be between 0.0 and 10.0" in message
    assert "advisories.allow: expected a list" in message
    assert "advisories: missing required key 'files'" in bad(tmp_path, "{}", "{min_score: 1}")


def test_osv_error_names_the_path():
    with pytest.raises(OsvError, match=r"x.json: affected\[0\]: expected an object"):
        parse_bytes(b'{"id": "A", "affected": [3]}', Path("x.json"))


def test_package_page_model_lists_advisories_per_version_blocked_or_not(tmp_path):
    spec = config(tmp_path, "{files: [osv], min_score: 7.0, allow: [CVE-2023-43804]}")
    by_version = package_advisories([spec, FilterSpec()], "urllib3", ["1.26.16", "2.0.5", "2.2.0"])
    assert list(by_version) == ["1.26.16", "2.0.5"]
    (note,) = by_version["2.0.5"].notes
    assert (note.id, note.score, note.blocked) == ("GHSA-v845-jxx5-vc9f", 8.2, False)
    assert note.aliases == ("CVE-2023-43804",)
    (requests,) = package_advisories([spec], "requests", ["2.30.0"])["2.30.0"].notes
    assert (requests.score, requests.blocked) == (6.1, False)  # below the threshold
    (openssl,) = package_advisories([spec], "openssl", ["3.0.1"])["3.0.1"].notes
    assert openssl.blocked
    assert package_advisories([FilterSpec()], "openssl", ["3.0.1"]) == {}
