"""Identity mappings (conda name -> purls) that cannot be read: the configuration error names
the file and the JSON path, and a huge or missing file is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitegen.config import ConfigError, parse_config
from sitegen.filters import identities

pytestmark = pytest.mark.unit


def bad(tmp_path: Path, content: bytes | str) -> str:
    (tmp_path / "purls.json").write_bytes(content.encode() if isinstance(content, str) else content)
    (tmp_path / "osv.json").write_text("[]")
    text = (
        "output: site\nchannels:\n  cloud/forge:\n    url: https://conda.example.org/forge\n"
        "    subdirs: [linux-64]\n    filters:\n"
        "      advisories: {files: [osv.json], identities: [purls.json]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, filename="channels.yaml", base_dir=tmp_path)
    return str(caught.value)


PREFIX = (
    "channels.yaml:7: channels.cloud/forge.filters.advisories.identities[0]: bad identity mapping: "
)


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ('{"numpy": ["pkg:pypi/numpy"],\n"x": }', "purls.json: line 2: not valid JSON"),
        (b"\xff", "purls.json: not UTF-8 text"),
        ("7", "purls.json: (top level): expected an object"),
        (
            '{"numpy": ["pkg:pypi/numpy"], "numpy": ["pkg:pypi/numpy-stubs"]}',
            "purls.json: (top level): duplicate key 'numpy'",
        ),
        (
            '[{"name": "x", "purl": "pkg:pypi/x", "purl": "pkg:pypi/y"}]',
            "purls.json: [0]: duplicate key 'purl'",
        ),
        ('{"numpy": "pkg:pypi/numpy"}', "purls.json: numpy: expected a list"),
        ('{"numpy": ["pypi/numpy"]}', "purls.json: numpy[0]: not a package URL: 'pypi/numpy'"),
        ('{"numpy": ["pkg:pypi"]}', "purls.json: numpy[0]: invalid package URL: purl is missing"),
        ('{"": ["pkg:pypi/x"]}', "purls.json: (top level): a conda package name is"),
        ("[3]", "purls.json: [0]: expected an object"),
        ('[{"purl": "pkg:pypi/x"}]', "purls.json: [0]: missing required key 'name'"),
        ('[{"name": "x", "purl": 7}]', "purls.json: [0].purl: expected a non-empty string"),
        (
            '[{"name": "x", "alternative_purls": [{"source": "auto"}]}]',
            "purls.json: [0].alternative_purls[0]: missing required key 'purl'",
        ),
        (
            '[{"name": "x", "identities": [{"kind": "purl", "value": "nope"}]}]',
            "purls.json: [0].identities[0].value: not a package URL",
        ),
        ('[{"name": "x", "unmapped": "yes"}]', "purls.json: [0].unmapped: expected true or false"),
        (
            '{"schema_version": 4, "packages": {"x": {"alternative_purls": {}}}}',
            "purls.json: packages.x.alternative_purls: expected a list",
        ),
    ],
)
def test_bad_mapping_files_name_file_and_json_path(tmp_path, content, where):
    message = bad(tmp_path, content)
    assert message.startswith(PREFIX), message
    assert f"{tmp_path}/{where}" in message, message


def test_a_long_name_of_a_mapping_is_shown_by_its_start(tmp_path):
    """A JSON key is the path of every error under it: 100,000 characters of it are not."""
    name = "n" * 100_000
    message = bad(tmp_path, json.dumps({name: "pkg:pypi/x"}))
    assert f"{tmp_path}/purls.json: {'n' * 200}... (100,000 characters): expected a list" in message
    assert len(message.replace(str(tmp_path), "")) < 500, message[:500]


def test_huge_mapping_is_refused_and_a_missing_one_named(tmp_path, monkeypatch):
    monkeypatch.setattr(identities, "MAX_MAPPING_BYTES", 1024)
    message = bad(tmp_path, json.dumps({"x": ["pkg:pypi/x"] * 200}))
    assert message.startswith(PREFIX) and "purls.json: larger than" in message, message
    (tmp_path / "purls.json").unlink()
    text = (
        "output: site\nfilters:\n  advisories: {files: [osv.json], identities: [gone.json]}\n"
        "channels:\n  c/x:\n    url: https://conda.example.org/x\n    subdirs: [linux-64]\n"
    )
    with pytest.raises(ConfigError, match=r"advisories.identities\[0\]: no such file: .*gone"):
        parse_config(text, base_dir=tmp_path)
