"""channels.yaml: the valid forms parse into the documented settings."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sitegen.config import (
    ConfigError,
    FilterSpec,
    SourceKind,
    YamlNode,
    load_config,
    parse_config,
    sources,
)
from sitegen.web.render import render_site
from testkit.config import SHORT, dedent
from testkit.zone import local_zone

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent


def ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def test_short_form_is_one_mirror_named_after_the_channel(tmp_path: Path) -> None:
    config = parse_config(dedent(SHORT), base_dir=tmp_path)
    assert config.output == tmp_path / "site"
    (channel,) = config.channels
    assert channel.path == "cloud/conda-forge"
    assert channel.filters == FilterSpec()
    (mirror,) = channel.mirrors
    assert mirror.name == "cloud-conda-forge"
    assert mirror.url == "https://conda.anaconda.org/conda-forge"
    assert mirror.subdirs == ("linux-64", "noarch")  # noarch is always added
    assert mirror.mode == "active"
    assert mirror.verify_tls is True
    assert mirror.filters == FilterSpec()
    assert channel.subdirs == ("linux-64", "noarch")
    # Defaults of the optional top-level keys.
    assert config.max_delete_fraction == 0.5
    assert config.download.concurrency == 32
    assert config.filters == FilterSpec()


LONG = """
output: /srv/mirror
base_url: https://conda.example.org/
title: Our mirror
download: {concurrency: 4, per_host: 2, retries: 1, timeout: 5}
prune: {max_fraction: 0.25}
filters:
  builds: {exclude: ["py2*"]}
  licenses: {allow_missing: false}
channels:
  internal/approved:
    filters:
      licenses: {exclude: ["*GPL*"], exclude_families: [AGPL]}
      dates: {after: 2022-01-01, before: "2026-01-01T00:00:00+00:00"}
    mirrors:
      - name: approved-forge
        url: https://conda.anaconda.org/conda-forge/label/dev
        subdirs: [linux-64, osx-arm64, noarch]
        mode: active
        verify_tls: false
        filters:
          specs: {include: ["numpy >=2", "python 3.11.*"], exclude: ["numpy * *_pypy*"]}
          names: {include: ["py*"], exclude: ["*-nightly"]}
          newest_versions: 2
          max_size: 1.5 MiB
          formats: prefer-conda
          include_dependencies: true
          subdirs: [linux-64, noarch]
      - name: private
        url: https://conda.anaconda.org/t/${ANACONDA_TOKEN}/my-org
        subdirs: linux-64
"""


def test_prefer_conda_goes_with_either_single_format_at_another_level() -> None:
    for single in ("conda", "tar.bz2"):
        text = SHORT.replace(
            "    subdirs: [linux-64]\n",
            f"    subdirs: [linux-64]\n    filters: {{formats: {single}}}\n",
        )
        config = parse_config("filters: {formats: prefer-conda}\n" + dedent(text))
        assert config.filters.formats == "prefer-conda"
        assert config.channels[0].mirrors[0].filters.formats == single


def test_dates_without_a_zone_are_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with local_zone(monkeypatch, "JST-9"):  # 9 hours east of UTC
        text = SHORT.replace(
            "    subdirs: [linux-64]\n",
            "    subdirs: [linux-64]\n"
            "    filters: {dates: {after: 2024-01-01, before: '2024-02-01T12:00:00'}}\n",
        )
        filters = parse_config(dedent(text)).channels[0].mirrors[0].filters
    assert filters.after_ms == ms("2024-01-01")
    assert filters.before_ms == ms("2024-02-01T12:00:00")


def test_long_form_with_three_filter_levels() -> None:
    config = parse_config(dedent(LONG))
    assert config.output == Path("/srv/mirror")
    assert config.base_url == "https://conda.example.org"
    assert config.title == "Our mirror"
    assert (config.download.concurrency, config.download.per_host) == (4, 2)
    assert (config.download.retries, config.download.timeout) == (1, 5.0)
    assert config.max_delete_fraction == 0.25

    # Site level.
    assert config.filters.exclude_builds == ("py2*",)
    assert config.filters.allow_missing_license is False

    (channel,) = config.channels
    assert channel.path == "internal/approved"
    # Channel level: licence globs are lower-cased, dates become ms since the epoch.
    assert channel.filters.exclude_licenses == ("*gpl*",)
    assert channel.filters.exclude_license_families == ("agpl",)
    assert channel.filters.after_ms == ms("2022-01-01")
    assert channel.filters.before_ms == ms("2026-01-01")

    forge, private = channel.mirrors
    assert forge.name == "approved-forge"
    assert forge.subdirs == ("linux-64", "osx-arm64", "noarch")
    assert forge.verify_tls is False
    # Mirror level.
    assert forge.filters.include_specs == ("numpy >=2", "python 3.11.*")
    assert forge.filters.exclude_specs == ("numpy * *_pypy*",)
    assert forge.filters.include_names == ("py*",)
    assert forge.filters.exclude_names == ("*-nightly",)
    assert forge.filters.newest_versions == 2
    assert forge.filters.max_size == int(1.5 * 1024 * 1024)
    assert forge.filters.formats == "prefer-conda"
    assert forge.filters.include_dependencies is True
    assert forge.filters.subdirs == ("linux-64", "noarch")
    assert forge.filters.has_allowlist

    assert config.filter_levels(channel, forge) == (config.filters, channel.filters, forge.filters)
    assert channel.subdirs == ("linux-64", "osx-arm64", "noarch")

    # A single string reads as a one-item list; noarch is added.
    assert private.subdirs == ("linux-64", "noarch")
    assert private.filters == FilterSpec()


def test_env_token_is_accepted_and_never_displayed() -> None:
    config = parse_config(dedent(LONG))
    private = config.channels[0].mirrors[1]
    assert private.url == "https://conda.anaconda.org/t/${ANACONDA_TOKEN}/my-org"
    assert private.secret_env == ("ANACONDA_TOKEN",)
    assert private.display_url() == "https://conda.anaconda.org/t/***/my-org"
    source = private.source_url({"ANACONDA_TOKEN": "tk-42"})
    assert source == "https://conda.anaconda.org/t/tk-42/my-org"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500MB", 500_000_000),
        ("2GiB", 2 * 1024**3),
        ("1024", 1024),
        ("10 kB", 10_000),
        # A decimal fraction is exact: a file of exactly that size is not larger than it.
        ("2.01MB", 2_010_000),
        ("1.005kB", 1_005),
        ("4.1GB", 4_100_000_000),
    ],
)
def test_max_size_units(text: str, expected: int) -> None:
    config = parse_config(dedent(SHORT) + f"    filters: {{max_size: {text}}}\n")
    assert config.channels[0].mirrors[0].filters.max_size == expected


def test_file_url_and_http_url_are_accepted() -> None:
    text = dedent("""
        output: site
        channels:
          local/a:
            url: file:///srv/channels/a
            subdirs: [noarch]
          local/b:
            url: http://127.0.0.1:8080/b/
            subdirs: [noarch]
          local/c:
            url: file://localhost/srv/channels/c
            subdirs: [noarch]
    """)
    a, b, c = parse_config(text).channels
    assert a.mirrors[0].source_url({}) == "file:///srv/channels/a"
    assert a.mirrors[0].subdirs == ("noarch",)
    assert b.mirrors[0].source_url({}) == "http://127.0.0.1:8080/b"  # trailing slash dropped
    # 'localhost' is the one host a file:// URL may name: the machine the run is on.
    assert c.mirrors[0].source_url({}) == "file://localhost/srv/channels/c"


def test_passive_mode_is_parsed() -> None:
    config = parse_config(dedent(SHORT) + "    mode: passive\n")
    assert config.channels[0].mirrors[0].mode == "passive"


def test_committed_channels_yaml_is_valid() -> None:
    config = load_config(REPO / "channels.yaml")
    assert config.output == REPO / "site"
    assert [c.path for c in config.channels] == ["cloud/conda-forge"]
    mirror = config.channels[0].mirrors[0]
    assert mirror.filters.include_dependencies is True
    assert mirror.filters.include_specs == ("python 3.12.*", "numpy >=2", "pip")


def test_load_config_resolves_output_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "mirror.yaml"
    path.write_text(dedent(SHORT))
    config = load_config(path)
    assert config.output == tmp_path / "conf" / "site"
    assert config.source == tmp_path / "conf" / "mirror.yaml"


def test_the_whitespace_a_title_may_hold_leaves_the_feed_xml(tmp_path: Path) -> None:
    """Tab, newline and carriage return are what YAML's escapes may still put in a string:
    the history feed, which carries the title, stays well-formed XML."""
    folder = tmp_path / "folder"
    folder.mkdir()
    config = parse_config(
        dedent(f"""
        output: {tmp_path / "site"}
        title: "Mirror\\tA\\r\\nB\\x7f\\x85"
        channels:
          cloud/x: {{path: {folder}, subdirs: [linux-64]}}
        """)
    )
    assert config.title == "Mirror\tA\r\nB\x7f\x85"
    render_site(config)
    feed = ET.parse(tmp_path / "site" / "history" / "feed.atom").getroot()
    title = feed.find("{http://www.w3.org/2005/Atom}title")
    assert title is not None and title.text is not None and title.text.startswith("Mirror\tA")


def test_a_registered_source_kind_is_chosen_by_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the built-in kind that reads `path:`, so that this test can register its own.
    monkeypatch.setattr(sources, "SOURCES", tuple(s for s in sources.SOURCES if s.key != "path"))

    def parse_path(node: YamlNode) -> str:
        path = node.string()
        if not path.startswith("/"):
            raise node.error("expected an absolute path")
        return f"file://{path}"

    sources.register_source(SourceKind("folder", "path", parse_path))
    config = parse_config(
        dedent("""
            output: site
            channels:
              local/incoming:
                path: /srv/conda/incoming
                subdirs: [noarch]
              cloud/x:
                url: https://conda.anaconda.org/x
                subdirs: [noarch]
        """)
    )
    incoming, forge = (c.mirrors[0] for c in config.channels)
    assert (incoming.kind, incoming.url) == ("folder", "file:///srv/conda/incoming")
    assert (forge.kind, forge.url) == ("channel", "https://conda.anaconda.org/x")
    with pytest.raises(ConfigError, match="missing required key 'url' or 'path'"):
        parse_config("output: site\nchannels:\n  a/b:\n    mirrors:\n      - subdirs: [noarch]\n")
