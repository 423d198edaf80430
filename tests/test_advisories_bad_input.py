"""Every way an advisory file can be bad is a configuration error naming file, path and key."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from sitegen.config import ConfigError, parse_config
from sitegen.filters import osv
from sitegen.filters.osv import OsvError, parse_bytes
from testkit.advisories import DATA, V3_REQUESTS, advisory, conda, ecosystem

pytestmark = pytest.mark.unit


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
