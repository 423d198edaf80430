"""``sitegen status`` shows per mirror the filters in force at each level."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sitegen.cli import EXIT_OK, main
from sitegen.config import parse_config
from sitegen.filters import registry
from sitegen.tools.status import build_status
from sitegen.tools.status_filters import level_filters
from sitegen.tools.status_format import format_status, status_json

OSV = Path(__file__).parent / "data" / "osv"


def write_config(tmp_path: Path) -> Path:
    (tmp_path / "env.txt").write_text(
        "@EXPLICIT\nhttps://conda.example.org/c/linux-64/a-1-0.conda#"
        "0123456789abcdef0123456789abcdef\n"
    )
    (tmp_path / "purls.json").write_text('{"requests": ["pkg:pypi/requests"]}')
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\n"
        "filters:\n  licenses: {exclude: ['*GPL*']}\n"
        "channels:\n"
        "  c/x:\n"
        "    filters: {builds: {exclude: ['py2*']}}\n"
        "    mirrors:\n"
        "      - name: x\n        url: http://127.0.0.1:1/x\n        subdirs: [linux-64]\n"
        "        filters:\n"
        "          specs: {include: ['numpy >=1.24']}\n"
        "          include_dependencies: true\n"
        "      - name: y\n        url: http://127.0.0.1:1/t/${Y_TOKEN}/y\n"
        "        subdirs: [linux-64]\n"
        "        filters:\n"
        f"          advisories: {{files: [{OSV}], identities: [purls.json], min_score: 7.0,"
        " allow: [GHSA-j8r2-6x86-q33q]}\n"
        "          dates: {after: 2024-01-01}\n"
        "          formats: conda\n"
        f"          lockfiles: [{tmp_path / 'env.txt'}]\n"
        "          include_dependencies: false\n"
        "  d/y:\n    url: http://127.0.0.1:1/d\n    subdirs: [linux-64]\n",
    )
    return config


@pytest.mark.unit
def test_each_mirror_shows_the_filters_of_each_level(tmp_path: Path) -> None:
    config = parse_config(
        write_config(tmp_path).read_text(), base_dir=tmp_path, environ={"Y_TOKEN": "s3cret"}
    )
    status = build_status(config, [], None, {}, 0.0)
    text = format_status(status)
    assert (
        "  filters: site licenses.exclude; channel builds.exclude;"
        " mirror specs.include (+dependencies)\n" in text
    ), text
    assert (
        "  filters: site licenses.exclude; channel builds.exclude;"
        " mirror dates.after, formats, advisories.files/identities/min_score/allow, lockfiles"
        " (no dependencies)\n" in text
    ), text
    data = json.loads(json.dumps(status_json(status)))
    x, y, d = (m["filters"] for m in data["mirrors"])
    assert x == {
        "site": {"licenses": {"exclude": ["*gpl*"]}},
        "channel": {"builds": {"exclude": ["py2*"]}},
        "mirror": {"specs": {"include": ["numpy >=1.24"]}, "include_dependencies": True},
    }
    assert y["mirror"] == {
        "dates": {"after": "2024-01-01T00:00:00Z"},
        "formats": "conda",
        "advisories": {
            "files": [str(OSV)],
            "identities": [str(tmp_path / "purls.json")],
            "min_score": 7.0,
            "allow": ["GHSA-j8r2-6x86-q33q"],
        },
        "lockfiles": [str(tmp_path / "env.txt")],
        "include_dependencies": False,
    }
    # A mirror of a channel without filters of its own still has the site's.
    assert d == {"site": {"licenses": {"exclude": ["*gpl*"]}}, "channel": {}, "mirror": {}}
    assert "s3cret" not in text and "s3cret" not in json.dumps(data)


@pytest.mark.unit
def test_no_filters_at_any_level_is_said_so() -> None:
    config = parse_config(
        "output: /srv/site\nchannels:\n  c/x:\n    url: http://127.0.0.1:1/c\n"
        "    subdirs: [linux-64]\n    filters: {formats: both, licenses: {allow_missing: true}}\n"
    )
    status = build_status(config, [], None, {}, 0.0)
    assert "  filters: none\n" in format_status(status)
    assert status_json(status)["mirrors"][0]["filters"] == {"site": {}, "channel": {}, "mirror": {}}


@pytest.mark.unit
def test_what_status_shows_is_channels_yaml_that_reads_back_the_same(tmp_path: Path) -> None:
    """Every filter kind shows its settings as channels.yaml writes them: written back under
    ``filters:``, they parse into the same level."""
    (tmp_path / "env.txt").write_text(
        "@EXPLICIT\nhttps://conda.example.org/c/linux-64/a-1-0.conda#"
        "0123456789abcdef0123456789abcdef\n"
    )
    site_filters = {
        "names": {"include": ["numpy", "sci*"], "exclude": ["scipy"]},
        "specs": {"include": ["numpy >=1.24"], "exclude": ["numpy 1.25.0"]},
        "builds": {"include": ["py3*"], "exclude": ["py36*"]},
        "licenses": {
            "include": ["bsd*"],
            "exclude": ["*gpl*"],
            "exclude_families": ["agpl"],
            "allow_missing": False,
        },
        "subdirs": ["linux-64", "noarch"],
        "dates": {"after": "2024-01-01T00:00:00Z", "before": "2026-06-30T12:00:00Z"},
        "newest_versions": 3,
        "max_size": 1000000,
        "formats": "prefer-conda",
        "advisories": {"files": [str(OSV)], "min_score": 7.0, "allow": ["GHSA-j8r2-6x86-q33q"]},
        "lockfiles": [str(tmp_path / "env.txt")],
        "include_dependencies": True,
        "except": ["numpy 1.25.0", {"build": "py36*", "name": "scipy"}],
    }
    assert set(site_filters) == {kind.key for kind in registry.KINDS}  # every kind is here

    def site_level(filters: object) -> object:
        text = yaml.safe_dump(
            {
                "output": str(tmp_path / "site"),
                "filters": filters,
                "channels": {"c/x": {"url": "http://127.0.0.1:1/x", "subdirs": ["linux-64"]}},
            }
        )
        return parse_config(text, base_dir=tmp_path).filters

    first = site_level(site_filters)
    assert level_filters(first) == site_filters
    assert site_level(level_filters(first)) == first


@pytest.mark.unit
def test_status_command_prints_the_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("Y_TOKEN", "s3cret")
    config = write_config(tmp_path)
    assert main(["status", "-c", str(config)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "mirror specs.include (+dependencies)" in out
    assert main(["status", "-c", str(config), "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["mirrors"][1]["filters"]["mirror"]["formats"] == "conda"
