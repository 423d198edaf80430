"""The advisories filter kind: blocks by score with a reason, allow lists, levels, pages."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from sitegen.cli import EXIT_CONFIG, main
from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config import FilterSpec, parse_config
from sitegen.filters.advisories import policy_of
from sitegen.filters.advisory_notes import package_advisories
from sitegen.filters.apply import apply_filters
from testkit.advisories import DATA, advisory, conda, ecosystem
from testkit.records import rec

pytestmark = pytest.mark.unit


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
