"""channels.yaml: the valid forms parse into the documented settings, and every kind of mistake
stops the CLI with exit status 2, a message naming the file line and the key path, and nothing
created on disk."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sitegen.cli import main
from sitegen.conda.record_secrets import SecretSearch
from sitegen.config import (
    ConfigError,
    FilterSpec,
    MirrorConfig,
    SourceKind,
    YamlNode,
    load_config,
    parse_config,
    sources,
    yaml_nodes,
)
from sitegen.config.urls import redact_url, scrub_names
from sitegen.config.yaml_nodes import shown_reason, shown_value
from sitegen.web.render import render_site
from testkit.zone import local_zone

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of text that contains needle."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the config text")


def ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


# --------------------------------------------------------------------------- valid configs

SHORT = """
output: site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
"""


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
    [("500MB", 500_000_000), ("2GiB", 2 * 1024**3), ("1024", 1024), ("10 kB", 10_000)],
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
    """)
    a, b = parse_config(text).channels
    assert a.mirrors[0].source_url({}) == "file:///srv/channels/a"
    assert a.mirrors[0].subdirs == ("noarch",)
    assert b.mirrors[0].source_url({}) == "http://127.0.0.1:8080/b"  # trailing slash dropped


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


# --------------------------------------------------------------------------- errors

# (id, config text, marker on the line the error must name, key path, words of the message)
ERRORS: list[tuple[str, str, str, str, str]] = [
    (
        "unknown key in a mirror",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            colour: red
        """,
        "colour:",
        "channels.cloud/conda-forge.colour",
        "unknown key 'colour'",
    ),
    (
        "unknown top-level key",
        """
        output: site
        outptu: other
        channels:
          cloud/conda-forge: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "outptu",
        "outptu",
        "unknown key 'outptu'",
    ),
    (
        "unknown filter key",
        """
        output: site
        filters:
          name: {include: [numpy]}
        channels:
          cloud/conda-forge: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "name:",
        "filters.name",
        "unknown key 'name'",
    ),
    (
        "misspelt key: the key it most likely means",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            shedule: "@hourly"
        """,
        "shedule:",
        "channels.cloud/conda-forge.shedule",
        "unknown key 'shedule'; did you mean 'schedule'?",
    ),
    (
        "a filter outside filters: where it belongs",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              specs: {include: [numpy]}
            include_dependencies: true
        """,
        "include_dependencies",
        "channels.cloud/conda-forge.include_dependencies",
        "it belongs under 'filters'",
    ),
    (
        "a channel's key indented too little reads as a channel",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
          mode: passive
        """,
        "mode:",
        "channels.mode",
        "'mode' is a key of a channel, read here as a channel's name: indent it",
    ),
    (
        "a channel's filters indented too little read as a channel",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
          filters:
            specs: {include: [numpy]}
        """,
        "specs:",  # a mapping is where its first key is
        "channels.filters",
        "'filters' is a key of a channel, read here as a channel's name",
    ),
    (
        "duplicate key",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            url: https://conda.anaconda.org/bioconda
        """,
        "bioconda",
        "channels.cloud/conda-forge.url",
        "duplicate key",
    ),
    (
        "wrong type: number",
        """
        output: site
        download:
          concurrency: many
        channels:
          cloud/conda-forge: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "many",
        "download.concurrency",
        "expected a whole number",
    ),
    (
        "wrong type: boolean",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            verify_tls: maybe
        """,
        "maybe",
        "channels.cloud/conda-forge.verify_tls",
        "expected true or false",
    ),
    (
        "wrong type: list instead of mapping",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              names: [numpy]
        """,
        "names:",
        "channels.cloud/conda-forge.filters.names",
        "expected a mapping",
    ),
    (
        "wrong type: mapping instead of list",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: {linux-64: true}
        """,
        "subdirs:",
        "channels.cloud/conda-forge.subdirs",
        "expected a list",
    ),
    (
        "wrong type: newest_versions below 1",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              newest_versions: 0
        """,
        "newest_versions",
        "channels.cloud/conda-forge.filters.newest_versions",
        "at least 1",
    ),
    (
        "bad glob",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              names:
                include: [numpy, "sci[py"]
        """,
        "sci[py",
        "channels.cloud/conda-forge.filters.names.include[1]",
        "invalid glob 'sci[py'",
    ),
    (
        "bad MatchSpec",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              specs:
                include:
                  - python 3.11.*
                  - numpy >>1
        """,
        "numpy >>1",
        "channels.cloud/conda-forge.filters.specs.include[1]",
        "invalid MatchSpec 'numpy >>1'",
    ),
    (
        "MatchSpec by file name",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              specs:
                exclude: ["numpy[fn=numpy-1.26.0-py312_0.conda]"]
        """,
        "numpy[fn=",
        "channels.cloud/conda-forge.filters.specs.exclude[0]",
        "[fn=...] (or a package URL) is not matched against records",
    ),
    (
        "MatchSpec as a package URL",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              specs:
                include:
                  - https://conda.anaconda.org/conda-forge/linux-64/zlib-1.3.1-h0_0.conda
        """,
        "zlib-1.3.1-h0_0.conda",
        "channels.cloud/conda-forge.filters.specs.include[0]",
        "[url=...] (or a package URL) is not matched against records",
    ),
    (
        "MatchSpec naming a channel",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              specs: {exclude: ["conda-forge::numpy >=2"]}
        """,
        "conda-forge::numpy",
        "channels.cloud/conda-forge.filters.specs.exclude[0]",
        "channel:: and [subdir=...] are not supported in filters",
    ),
    (
        "MatchSpec naming a subdir",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              specs: {include: ["numpy[subdir=linux-64]"]}
        """,
        "numpy[subdir",
        "channels.cloud/conda-forge.filters.specs.include[0]",
        "channel:: and [subdir=...] are not supported in filters",
    ),
    (
        "channel nested where its parent keeps its pages",
        """
        output: site
        channels:
          cloud/forge: {url: https://conda.anaconda.org/conda-forge, subdirs: [linux-64]}
          cloud/forge/packages: {url: https://conda.anaconda.org/other, subdirs: [linux-64]}
        """,
        "cloud/forge/packages:",
        "channels.cloud/forge/packages",
        "inside channel 'cloud/forge' (line 3), 'packages' holds that channel's own pages",
    ),
    (
        # A subdir name SUBDIR_RE accepts but no known platform has: the two would share
        # cloud/forge/linux-loong64/ and its index.html.
        "channel nested where its parent keeps a subdir",
        """
        output: site
        channels:
          cloud/forge: {url: https://conda.anaconda.org/conda-forge, subdirs: [linux-loong64]}
          cloud/forge/linux-loong64: {url: https://conda.anaconda.org/other, subdirs: [noarch]}
        """,
        "cloud/forge/linux-loong64:",
        "channels.cloud/forge/linux-loong64",
        "inside channel 'cloud/forge' (line 3), 'linux-loong64' is one of its subdirs",
    ),
    (
        # The state of cloud/forge's noarch is kept in files such as .sitegen/origins/
        # cloud/forge/noarch.json: the folder of the channel inside it.
        "channel nested under a name of its parent's subdir state files",
        """
        output: site
        channels:
          cloud/forge: {url: https://conda.anaconda.org/conda-forge, subdirs: [linux-64]}
          cloud/forge/noarch.json: {url: https://conda.anaconda.org/other, subdirs: [linux-64]}
        """,
        "cloud/forge/noarch.json:",
        "channels.cloud/forge/noarch.json",
        "inside channel 'cloud/forge' (line 3), 'noarch.json' is named like the state files of"
        " its subdir 'noarch'",
    ),
    (
        "channel nested in a subdir a gated channel takes from its source",
        """
        output: site
        channels:
          cloud/forge: {url: https://conda.anaconda.org/conda-forge, subdirs: [linux-loong64]}
          internal/approved:
            approval: {from: cloud/forge}
          internal/approved/linux-loong64/rc: {url: https://example.org/rc, subdirs: [noarch]}
        """,
        "internal/approved/linux-loong64/rc:",
        "channels.internal/approved/linux-loong64/rc",
        "inside channel 'internal/approved' (line 5), 'linux-loong64' is one of its subdirs",
    ),
    (
        "bad URL scheme",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: ftp://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
        """,
        "ftp://",
        "channels.cloud/conda-forge.url",
        "https://, http:// or file://",
    ),
    (
        "URL without scheme",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: conda-forge
            subdirs: [linux-64]
        """,
        "url:",
        "channels.cloud/conda-forge.url",
        "https://, http:// or file://",
    ),
    (
        "literal token in URL",
        """
        output: site
        channels:
          private/org:
            mirrors:
              - name: org
                url: https://conda.anaconda.org/t/abc123/my-org
                subdirs: [linux-64]
        """,
        "/t/abc123/",
        "channels.private/org.mirrors[0].url",
        "literal token",
    ),
    (
        "unknown mode",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            mode: lazy
        """,
        "lazy",
        "channels.cloud/conda-forge.mode",
        "'lazy'",
    ),
    (
        "duplicate mirror names",
        """
        output: site
        channels:
          a/forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
          b/forge:
            mirrors:
              - name: a-forge
                url: https://conda.anaconda.org/bioconda
                subdirs: [linux-64]
        """,
        "name: a-forge",
        "channels.b/forge",
        "mirror name 'a-forge' is already used (line 4)",
    ),
    (
        "duplicate channel paths",
        """
        output: site
        channels:
          cloud/x:
            name: first
            url: https://conda.anaconda.org/a
            subdirs: [linux-64]
          /cloud/x/:
            name: second
            url: https://conda.anaconda.org/b
            subdirs: [linux-64]
        """,
        "name: second",
        "channels.cloud/x",
        "channel path 'cloud/x' is already used (line 4)",
    ),
    (
        "names.exclude '*'",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              names: {exclude: ["*"]}
        """,
        "names: {exclude",
        "channels.cloud/conda-forge.filters",
        "excludes every package",
    ),
    (
        "date after >= before at one level",
        """
        output: site
        filters:
          dates:
            after: 2025-01-01
            before: 2024-01-01
        channels:
          cloud/conda-forge: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "after:",
        "filters.dates",
        "'after' must be earlier than 'before'",
    ),
    (
        "builds.exclude '*'",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              builds: {exclude: ["*"]}
        """,
        "builds: {exclude",
        "channels.cloud/conda-forge.filters",
        "builds.exclude '*' excludes every package",
    ),
    (
        "date after == before at one level",
        """
        output: site
        filters:
          dates: {after: 2024-01-01, before: 2024-01-01}
        channels:
          cloud/conda-forge: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "dates:",
        "filters.dates",
        "'after' must be earlier than 'before'",
    ),
    (
        # The latest 'after' of all levels bounds the range, not the earliest.
        "the latest after of three levels is past the before of another",
        """
        output: site
        filters:
          dates: {after: 2025-01-01}
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              dates: {after: 2023-01-01, before: 2024-06-01}
        """,
        "url:",
        "channels.cloud/conda-forge",
        "date ranges of its levels do not overlap",
    ),
    (
        # And the earliest 'before', not the latest.
        "the earliest before of two levels is before the after of another",
        """
        output: site
        filters:
          dates: {before: 2023-01-01}
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              dates: {after: 2023-06-01, before: 2025-01-01}
        """,
        "url:",
        "channels.cloud/conda-forge",
        "date ranges of its levels do not overlap",
    ),
    (
        "date ranges of two levels meet without overlapping",
        """
        output: site
        filters:
          dates: {after: 2024-06-01}
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              dates: {before: 2024-06-01}
        """,
        "url:",
        "channels.cloud/conda-forge",
        "date ranges of its levels do not overlap",
    ),
    (
        "date ranges of two levels do not overlap",
        """
        output: site
        filters:
          dates: {after: 2025-01-01}
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              dates: {before: 2024-06-01}
        """,
        "url:",
        "channels.cloud/conda-forge",
        "date ranges of its levels do not overlap",
    ),
    (
        "subdirs of three levels have an empty intersection",
        """
        output: site
        filters:
          subdirs: [linux-64, osx-64]
        channels:
          cloud/conda-forge:
            mirrors:
              - name: forge
                url: https://conda.anaconda.org/conda-forge
                subdirs: [linux-64, win-64]
            filters:
              subdirs: [osx-64, win-64]
        """,
        "mirrors:",  # the channel's mapping starts here
        "channels.cloud/conda-forge",
        "leave no subdir to mirror",
    ),
    (
        "formats conda and tar.bz2 at two levels",
        """
        output: site
        filters:
          formats: conda
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              formats: tar.bz2
        """,
        "url:",
        "channels.cloud/conda-forge",
        "formats 'conda' and 'tar.bz2' exclude each other",
    ),
    (
        "allowlist fully excluded at another level",
        """
        output: site
        filters:
          names: {exclude: [numpy]}
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              names: {include: [numpy]}
        """,
        "url:",
        "channels.cloud/conda-forge",
        "every name in an allowlist is excluded",
    ),
    (
        "invalid channel path",
        """
        output: site
        channels:
          cloud/../etc:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
        """,
        "url:",
        "channels.cloud/../etc",
        "invalid channel path",
    ),
    (
        "missing url",
        """
        output: site
        channels:
          cloud/conda-forge:
            mirrors:
              - name: forge
                subdirs: [linux-64]
        """,
        "name: forge",
        "channels.cloud/conda-forge.mirrors[0]",
        "missing required key 'url'",
    ),
    (
        "a URL with a broken IPv6 host",
        """
        output: site
        channels:
          cloud/x:
            url: "http://[::1"
            subdirs: [linux-64]
        """,
        "url:",
        "channels.cloud/x.url",
        "not a valid URL",
    ),
    (
        "a URL whose port is not a number",
        """
        output: site
        channels:
          cloud/x:
            url: "http://host:abc/x"
            subdirs: [linux-64]
        """,
        "url:",
        "channels.cloud/x.url",
        "not a valid URL",
    ),
    (
        "a URL with a control character",
        """
        output: site
        channels:
          cloud/x:
            url: "http://host/x\\ny"
            subdirs: [linux-64]
        """,
        "url:",
        "channels.cloud/x.url",
        "whitespace or control characters",
    ),
    (
        "base_url with a broken IPv6 host",
        """
        output: site
        base_url: "https://[::1"
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "base_url",
        "base_url",
        "not a valid URL",
    ),
    (
        "base_url with an ${ENV} reference, which only a source's URL fills in",
        """
        output: site
        base_url: "https://${SITEGEN_PUBLIC_HOST}/conda"
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "base_url",
        "base_url",
        "${ENV} references are filled in only in the URLs sitegen fetches",
    ),
    (
        "mirror_of with an ${ENV} reference",
        """
        output: site
        channels:
          cloud/x:
            url: "https://conda.anaconda.org/conda-forge"
            mirror_of: "https://${SITEGEN_FORGE_HOST}/conda-forge"
            subdirs: [linux-64]
        """,
        "mirror_of",
        "channels.cloud/x.mirror_of",
        "${ENV} references are filled in only in the URLs sitegen fetches",
    ),
    (
        "a stats log with an ${ENV} reference, which only a fetched URL fills in",
        """
        output: site
        stats: {logs: ["${LOG_DIR}/access.log"]}
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "logs:",
        "stats.logs[0]",
        "${ENV} references are filled in only in the URLs sitegen fetches",
    ),
    (
        "a size beyond any disk",
        """
        output: site
        min_free_space: 10000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "min_free_space",
        "min_free_space",
        "too large",
    ),
    (
        "a timeout that is not a number",
        """
        output: site
        download: {timeout: nan}
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "download",
        "download.timeout",
        "expected a finite number",
    ),
    (
        "retries without end",
        """
        output: site
        download: {retries: 99999999999999999999}
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "download",
        "download.retries",
        "must be at most 100",
    ),
    (
        "a grace period of forever",
        """
        output: site
        shards: {grace_days: 1e999}
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "shards",
        "shards.grace_days",
        "expected a finite number",
    ),
    (
        "a file of a user that does not exist",
        """
        output: site
        filters:
          advisories: {files: ['~nosuchuser-sitegen/osv.json']}
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "advisories",
        "filters.advisories.files[0]",
        "no such user",
    ),
    (
        "a NUL in a path",
        """
        output: site
        filters:
          lockfiles: ["pixi\\0.lock"]
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "lockfiles",
        "filters.lockfiles[0]",
        "control character (U+0000)",
    ),
    (
        "a control character in the title (the feed could not be XML)",
        """
        output: site
        title: "Mirror\\x01"
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "title",
        "title",
        "control character (U+0001)",
    ),
    (
        "a terminal escape in a notice",
        """
        output: site
        channels:
          cloud/x:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            notices: [{message: "\\e[31mred"}]
        """,
        "notices:",
        "channels.cloud/x.notices[0].message",
        "control character (U+001B)",
    ),
    (
        "a noncharacter",
        """
        output: site
        title: "Mirror\\uFFFE"
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "title",
        "title",
        "noncharacter (U+FFFE)",
    ),
    (
        "text that is no Unicode",
        """
        output: site
        title: "\\ud800"
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "title",
        "title",
        "lone surrogate",
    ),
    (
        "a notice expiring beyond the calendar",
        """
        output: site
        channels:
          cloud/x:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            notices: [{message: hi, expires: "9999-12-31T23:59:59-12:00"}]
        """,
        "notices:",
        "channels.cloud/x.notices[0].expires",
        "expected a date",
    ),
    (
        "a schedule that never fires",
        """
        output: site
        channels:
          cloud/x:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            schedule: "0 0 31 2 *"
        """,
        "schedule:",
        "channels.cloud/x.schedule",
        "invalid cron expression",
    ),
    (
        "an ${ENV} reference in output (filled in only in URLs)",
        """
        output: ${SITE_DIR}
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "output:",
        "output",
        "not in a path; write the path out",
    ),
    (
        "an ${ENV} reference in a local source's path",
        """
        output: site
        channels:
          cloud/x: {path: "/srv/${BUILDS}/incoming", subdirs: [linux-64]}
        """,
        "BUILDS",
        "channels.cloud/x.path",
        "not in a path; write the path out",
    ),
    (
        "an ${ENV} reference in a CA bundle",
        """
        output: site
        download: {ca_bundle: "${CA_DIR}/corp.pem"}
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "CA_DIR",
        "download.ca_bundle",
        "not in a path; write the path out",
    ),
    (
        "an ${ENV} reference in the access directory",
        """
        output: site
        access: {dir: "${STATE}/access"}
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "STATE",
        "access.dir",
        "not in a path; write the path out",
    ),
    (
        "a schedule with a backwards range",
        """
        output: site
        channels:
          cloud/x:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            schedule: "1-0 * * * *"
        """,
        "schedule:",
        "channels.cloud/x.schedule",
        "backwards range '1-0'",
    ),
    (
        "a build number beyond 64 bits",
        """
        output: site
        filters:
          specs: {include: ['numpy[build_number=99999999999999999999999]']}
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "specs",
        "filters.specs.include[0]",
        "beyond 64 bits",
    ),
    (
        "a channel path segment too long for a file system",
        """
        output: site
        channels:
          cloud/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
        """,
        "url:",
        "channels.cloud/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "up to 100 each",
    ),
    (
        "a t segment inside a channel path",
        """
        output: site
        channels:
          a:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
          a/t/b:
            url: https://conda.anaconda.org/bioconda
            subdirs: [linux-64]
        """,
        "bioconda",
        "channels.a/t/b",
        "has 't' as a segment, which is conda's path token",
    ),
    (
        "a subdir name too long",
        """
        output: site
        channels:
          cloud/x:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-6666666666666666666666666666666666666666]
        """,
        "subdirs:",
        "channels.cloud/x.subdirs[0]",
        "invalid subdir",
    ),
    # A line end after a name ("$" alone would let it by): a directory, a state file, a line
    # of the web server's config would hold it.
    (
        "a subdir name ending in a line end",
        """
        output: site
        channels:
          cloud/x:
            url: https://conda.anaconda.org/conda-forge
            subdirs: ["linux-64\\n"]
        """,
        "subdirs:",
        "channels.cloud/x.subdirs[0]",
        "invalid subdir 'linux-64\\n'",
    ),
    (
        "a channel path ending in a line end",
        """
        output: site
        channels:
          "cloud/x\\n":
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
        """,
        "url:",
        "channels.cloud/x\n",
        "invalid channel path 'cloud/x\\n'",
    ),
    (
        "a mirror name ending in a line end",
        """
        output: site
        channels:
          cloud/x:
            mirrors:
              - name: |
                  forge
                url: https://conda.anaconda.org/conda-forge
                subdirs: [linux-64]
        """,
        "name: |",
        "channels.cloud/x.mirrors[0].name",
        "invalid mirror name 'forge\\n'",
    ),
    (
        "an installer folder ending in a line end",
        """
        output: site
        installers:
          "miniconda\\n":
            url: https://repo.anaconda.com/miniconda
        channels:
          cloud/x:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
        """,
        "url: https://repo",
        "installers.miniconda\n",
        "invalid installer folder 'miniconda\\n'",
    ),
    (
        "invalid MatchSpec in except",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              builds: {exclude: ["py2*"]}
              except: [readline, "numpy >>1"]
        """,
        "except:",
        "channels.cloud/conda-forge.filters.except[1]",
        "invalid MatchSpec 'numpy >>1'",
    ),
    (
        "an except entry naming a key conda-mirror entries are not read by",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              builds: {exclude: ["py2*"]}
              except:
                - {name: six, platform: linux}
        """,
        "platform: linux",
        "channels.cloud/conda-forge.filters.except[0].platform",
        "unknown key 'platform'",
    ),
    (
        "an empty except entry",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              builds: {exclude: ["py2*"]}
              except:
                - {}
        """,
        "- {}",
        "channels.cloud/conda-forge.filters.except[0]",
        "an empty entry would match every record",
    ),
    (
        "an except entry of only '*'",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              builds: {exclude: ["py2*"]}
              except:
                - {name: "*", build: "*"}
        """,
        "- {name",
        "channels.cloud/conda-forge.filters.except[0]",
        "would match every record",
    ),
    (
        "an except entry that is a list",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              builds: {exclude: ["py2*"]}
              except:
                - [readline]
        """,
        "- [readline]",
        "channels.cloud/conda-forge.filters.except[0]",
        "expected a MatchSpec or a mapping of repodata keys to globs",
    ),
    (
        "a bad glob in an except entry",
        """
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64]
            filters:
              builds: {exclude: ["py2*"]}
              except: [{build: "py[3"}]
        """,
        "except:",
        "channels.cloud/conda-forge.filters.except[0].build",
        "invalid glob 'py[3': unbalanced brackets",
    ),
    (
        # The excludes are the mirror's: a channel's exception cannot take back from them.
        "except on a level without excludes",
        """
        output: site
        channels:
          pkgs/main:
            filters:
              except: [readline]
            mirrors:
              - url: https://repo.anaconda.com/pkgs/main
                subdirs: [linux-64]
                filters: {builds: {exclude: ["py2*"]}}
        """,
        "except: [readline]",
        "channels.pkgs/main.filters",
        "except (line 5): this level excludes nothing to take back; an exception overrides"
        " only the excludes of its own level",
    ),
]


def _expected_line(text: str, marker: str) -> int:
    return line_of(text, marker)


@pytest.mark.parametrize(
    ("text", "marker", "path", "words"),
    [pytest.param(t, m, p, w, id=case) for case, t, m, p, w in ERRORS],
)
def test_error_names_line_and_key_path(text: str, marker: str, path: str, words: str) -> None:
    text = dedent(text)
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert message.startswith(f"channels.yaml:{_expected_line(text, marker)}: {path}: "), message
    assert words in message


@pytest.mark.parametrize(
    ("setting", "path"),
    [
        ("download: {concurrency: N}", "download.concurrency"),
        ("history: {keep_runs: N}", "history.keep_runs"),
        ("shards: {grace_days: N}", "shards.grace_days"),
        ("prune: {max_fraction: N}", "prune.max_fraction"),
        ("min_free_space: N", "min_free_space"),
        ("filters: {max_size: N}", "filters.max_size"),
        ("download: {retries: xN}", "download.retries"),
    ],
)
def test_an_oversized_number_is_quoted_clipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str, path: str
) -> None:
    """A value pasted by mistake (10,000 digits) is named by its start and its length, not
    written out whole across the terminal."""
    config_path = _write_config(
        tmp_path,
        f"output: site\n{setting.replace('N', '9' * 10_000)}\n"
        "channels:\n  c/x: {url: http://127.0.0.1:1/c, subdirs: [noarch]}\n",
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"channels.yaml:2: {path}: " in err
    assert len(err) < 300, err[:300]
    if path.endswith(("concurrency", "keep_runs")):  # more digits than int() reads: a number
        assert "must be at most" in err
    else:
        assert "9999999999'... (10,00" in err


# A value of a channel's (L: 100,000 characters pasted by mistake) and the line it is on.
_CHANNEL = "channels:\n  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [noarch]\n"
LONG_VALUES = [
    pytest.param(_CHANNEL + "    schedule: 'L'\n", 6, "channels.c/x.schedule", id="cron"),
    pytest.param(
        _CHANNEL + "    schedule: '30-10/L * * * *'\n", 6, "channels.c/x.schedule", id="cron-range"
    ),
    pytest.param(
        _CHANNEL + "    notices:\n      - {message: m, created: 'L'}\n",
        7,
        "channels.c/x.notices[0].created",
        id="notice-date",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      dates: {after: 'L'}\n",
        7,
        "channels.c/x.filters.dates.after",
        id="filter-date",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      specs: {include: ['numpy >>L']}\n",
        7,
        "channels.c/x.filters.specs.include[0]",
        id="matchspec",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      specs: {exclude: ['numpy[build_number=L]']}\n",
        7,
        "channels.c/x.filters.specs.exclude[0]",
        id="matchspec-build-number",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      specs: {include: ['cL::numpy']}\n",
        7,
        "channels.c/x.filters.specs.include[0]",
        id="matchspec-channel",
    ),
    pytest.param(_CHANNEL + "    mode: L\n", 6, "channels.c/x.mode", id="mode"),
    pytest.param(_CHANNEL + "    access: L\n", 6, "channels.c/x.access", id="access"),
    pytest.param(
        _CHANNEL + "    access: private\n    readers: [L]\n",
        7,
        "channels.c/x.readers[0]",
        id="reader",
    ),
    pytest.param(
        _CHANNEL + "    notices:\n      - {message: m, level: L}\n",
        7,
        "channels.c/x.notices[0].level",
        id="notice-level",
    ),
    pytest.param(
        _CHANNEL + "    notices:\n      - {message: m, id: L}\n      - {message: n, id: L}\n",
        8,
        "channels.c/x.notices[1]",
        id="notice-id",
    ),
    pytest.param(_CHANNEL + "    ca_bundle: L.pem\n", 6, "channels.c/x.ca_bundle", id="ca-bundle"),
    pytest.param(
        _CHANNEL + "    filters:\n      names: {include: ['[L']}\n",
        7,
        "channels.c/x.filters.names.include[0]",
        id="glob",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      names: {include: [aL], exclude: [a*]}\n",
        7,
        "channels.c/x.filters",
        id="glob-excluded",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      formats: L\n",
        7,
        "channels.c/x.filters.formats",
        id="formats",
    ),
    pytest.param(
        "channels:\n  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [L]\n",
        5,
        "channels.c/x.subdirs[0]",
        id="subdir",
    ),
    pytest.param(
        "channels:\n  c/x:\n    url: ftp://L\n    subdirs: [noarch]\n",
        4,
        "channels.c/x.url",
        id="url",
    ),
    pytest.param(
        "channels:\n  c/x:\n    path: relL\n    subdirs: [noarch]\n",
        4,
        "channels.c/x.path",
        id="local-path",
    ),
    pytest.param(
        "channels:\n  c/x:\n    mirrors:\n      - {name: 'L', url: 'http://127.0.0.1:1/c', subdirs: [noarch]}\n",
        5,
        "channels.c/x.mirrors[0].name",
        id="mirror-name",
    ),
    pytest.param(
        "installers:\n  m: {url: 'http://127.0.0.1:1/m/', include: ['[L']}\n" + _CHANNEL,
        3,
        "installers.m.include[0]",
        id="installer-glob",
    ),
]


@pytest.mark.parametrize(("text", "line", "path"), LONG_VALUES)
def test_a_long_value_is_quoted_clipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, path: str
) -> None:
    """A value refused for what it holds is quoted by its start and its length: 100,000
    characters pasted by mistake would otherwise fill the terminal and the log."""
    config_path = _write_config(tmp_path, "output: site\n" + text.replace("L", "9" * 100_000))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"channels.yaml:{line}: {path}: " in err, err[:300]
    assert len(err.replace(str(tmp_path), "")) < 400, err[:600]
    assert "... (100,0" in err, err


# A key of 200,000 characters, which YAML's explicit form (`? key`) lets past PyYAML's limit of
# 1,024 on a plain key (<K>), and what the errors under it say: its first 200 characters (<S>;
# of a channel's "c/<K>": "c/" and <T>, 198 of them).
LONG_KEYS = [
    pytest.param(
        "? '<K>'\n: 1\n" + _CHANNEL,
        [
            "channels.yaml:2: <S>... (200,000 characters): unknown key '<S>'... (200,000 characters);"
        ],
        id="top",
    ),
    pytest.param(
        "channels:\n  ? 'c/<K>'\n  : {url: 'ftp://x', subdirs: [noarch], bogus: 1, mode: x}\n",
        [
            "channels.yaml:4: channels.c/<T>... (200,002 characters): invalid channel path",
            "channels.yaml:4: channels.c/<T>... (200,002 characters).bogus: unknown key 'bogus'",
            "channels.yaml:4: channels.c/<T>... (200,002 characters).mode: expected 'active'",
            "channels.yaml:4: channels.c/<T>... (200,002 characters).url: URL must start with",
        ],
        id="channel",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      ? '<K>'\n      : 1\n",
        ["channels.yaml:7: channels.c/x.filters.<S>... (200,000 characters): unknown key '<S>'..."],
        id="filter",
    ),
]


@pytest.mark.parametrize(("text", "errors"), LONG_KEYS)
def test_a_long_key_is_shown_clipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, errors: list[str]
) -> None:
    """A key is shown by its start and its length in the key path of every error under it and
    in the error that refuses it, not written out whole in each."""
    config_path = _write_config(tmp_path, "output: site\n" + text.replace("<K>", "9" * 200_000))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    for error in errors:
        assert error.replace("<S>", "9" * 200).replace("<T>", "9" * 198) in err, err[:2000]
    assert len(err.replace(str(tmp_path), "")) < 800 * len(errors), err[:2000]


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


def test_literal_token_is_not_echoed() -> None:
    text = dedent(SHORT).replace("conda-forge\n", "t/abc123/conda-forge\n", 1)
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert "literal token" in str(info.value)
    assert "abc123" not in str(info.value)


@pytest.mark.parametrize("password", ["Zx9Secret/kq7", "Zx9Secret\u2100kq7"])
def test_a_url_urllib_refuses_is_refused_without_quoting_its_password(
    tmp_path: Path, password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A password written out with a '/' (or a character that Unicode normalization turns into
    one) ends the host part early: urllib's reason quotes what it then reads as the port, or
    the whole host part, and so the password's start or all of it."""
    url = f"https://mirror:{password}@conda.example.org/forge"
    config_path = _write_config(
        tmp_path, dedent(SHORT).replace("https://conda.anaconda.org/conda-forge", url)
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "channels.cloud/conda-forge.url: not a valid URL: " in err, err
    assert "Zx9" not in err, err


def test_empty_file() -> None:
    for text in ("", "\n", "# only a comment\n"):
        with pytest.raises(ConfigError, match=r"^channels\.yaml:1: the file is empty"):
            parse_config(text)


def test_invalid_yaml_names_the_line() -> None:
    text = dedent("""
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64
          pkgs/main:
            url: https://repo.anaconda.com/pkgs/main
    """)
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert "not valid YAML" in message
    # PyYAML reports where it noticed the problem: at or after the unclosed bracket.
    line = int(message.split(":")[1])
    assert line >= line_of(text, "[linux-64")


def test_yaml_a_file_system_or_a_decoder_would_choke_on_names_the_line(tmp_path: Path) -> None:
    """Nesting too deep for the parser, a character YAML does not allow, bytes that are not
    UTF-8, an output that is a file: each an error naming the file (and the line where the
    text tells it), never a crash."""
    body = "output: site\nchannels:\n  cloud/x: {url: https://x.org/c, subdirs: [linux-64]}\n"
    with pytest.raises(ConfigError, match=r"^channels.yaml: not valid YAML: nested too deep"):
        parse_config("title: " + "[" * 5000 + "]" * 5000 + "\n" + body)
    with pytest.raises(ConfigError, match=r"^channels.yaml:3: not valid YAML: unacceptable"):
        parse_config(body.replace("linux-64", "linux-64\x01"))
    path = tmp_path / "channels.yaml"
    path.write_bytes(body.encode() + b"title: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"channels.yaml:4: not UTF-8 text"):
        load_config(path)
    (tmp_path / "site").write_text("a file")
    path.write_text(body)
    with pytest.raises(ConfigError, match=rf"^{path}:1: output: .* is not a directory"):
        load_config(path)
    # Below a file: mkdir would fail at the run's start, so the check says so first.
    path.write_text(body.replace("output: site", "output: site/inner/pages"))
    with pytest.raises(
        ConfigError, match=rf"^{path}:1: output: .* cannot be created: .*/site' is not a directory"
    ):
        load_config(path)


def test_aliases_that_multiply_the_document_are_refused_before_it_is_walked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A few kilobytes of anchors and aliases can stand for millions of values (one list of
    specs aliased by every channel); walking them all would hold the command for minutes, so
    a document that expands past a bound is refused, naming the line. Aliases used within
    it (one filter set shared by a few channels) still read as written."""
    specs = ", ".join(f'"pkg{i} >=1"' for i in range(1500))
    first = f"  c/0: &c {{url: https://x.org/c, subdirs: [noarch], filters: {{specs: {{include: [{specs}]}}}}}}"
    text = "\n".join(
        ["output: site", "channels:", first, *(f"  c/{i}: *c" for i in range(1, 1500))]
    )
    walked = 0  # nodes of the document wrapped to be read (the walk that took minutes)
    wrap = yaml_nodes.YamlNode.__init__

    def counted(self: yaml_nodes.YamlNode, *args: Any, **kwargs: Any) -> None:
        nonlocal walked
        walked += 1
        wrap(self, *args, **kwargs)

    monkeypatch.setattr(yaml_nodes.YamlNode, "__init__", counted)
    with pytest.raises(ConfigError, match=r"^channels\.yaml:3: not valid YAML: its aliases expand"):
        parse_config(text + "\n")
    assert walked == 0
    monkeypatch.undo()
    shared = "\n".join(
        ["output: site", "channels:", first, *(f"  c/{i}: *c" for i in range(1, 20))]
    )
    config = parse_config(shared + "\n")
    assert len(config.channels) == 20
    assert config.channels[19].filters == config.channels[0].filters


def test_output_under_the_home_directory_may_be_written_with_a_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "etc" / "channels.yaml"
    path.parent.mkdir()
    path.write_text(
        "output: ~/mirror/site\nchannels:\n  cloud/x: {url: https://x.org/c, subdirs: [linux-64]}\n"
    )
    assert load_config(path).output == tmp_path / "home" / "mirror" / "site"
    assert load_config(path).source == path


def test_output_may_not_be_the_root_or_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site owns its directory (pages and history at its top, files it no longer publishes
    deleted), so it cannot be the file system's root or the user's home, however written."""
    home = tmp_path / "home"
    (home / "project").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    body = "channels:\n  cloud/x: {url: https://x.org/c, subdirs: [linux-64]}\n"
    with pytest.raises(ConfigError, match=r"^channels.yaml:1: output: '/' is the root"):
        parse_config("output: /\n" + body)
    path = home / "project" / "channels.yaml"
    for output in ("..", str(home), f"{home}/project/.."):
        path.write_text(f"output: {output}\n" + body)
        with pytest.raises(ConfigError, match=rf"^{path}:1: output: .* is the home dir"):
            load_config(path)
    path.write_text("output: site\n" + body)
    assert load_config(path).output == home / "project" / "site"


def test_a_loop_of_symbolic_links_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ``output``, ``--out`` or local source folder that is a loop of symbolic links cannot
    be resolved: a configuration error naming file, line and key (exit 2), not a traceback."""
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    body = "channels:\n  a/b:\n    path: {folder}\n    subdirs: [noarch]\n"
    with pytest.raises(ConfigError, match=r"^channels.yaml:1: output: .*loop of symbolic links"):
        parse_config(f"output: {loop}\n" + body.format(folder=tmp_path / "in"))
    with pytest.raises(
        ConfigError, match=r"^channels.yaml:4: channels.a/b: mirror 'a-b': .*loop of symbolic"
    ):
        parse_config(f"output: {tmp_path / 'site'}\n" + body.format(folder=loop / "in"))
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(f"output: {tmp_path / 'site'}\n" + body.format(folder=tmp_path))
    assert main(["status", "-c", str(config_path), "--out", str(loop)]) == 2
    assert "configuration error: --out: " in capsys.readouterr().err


# --------------------------------------------------------------------------- via the CLI


def _write_config(tmp_path: Path, text: str) -> Path:
    site = tmp_path / "out" / "site"
    path = tmp_path / "channels.yaml"
    path.write_text(text.replace("output: site", f"output: {site}"))
    return path


@pytest.mark.parametrize(
    ("text", "marker", "path", "words"),
    [pytest.param(t, m, p, w, id=case) for case, t, m, p, w in ERRORS],
)
def test_cli_exits_2_and_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text, marker, path, words
) -> None:
    config_path = _write_config(tmp_path, dedent(text))
    status = main(["mirror", "-c", str(config_path), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2
    line = _expected_line(config_path.read_text(), marker)
    assert f"channels.yaml:{line}: {path}: " in err
    assert words in err
    assert not (tmp_path / "out").exists()  # not even the parent of the site directory


@pytest.mark.parametrize(
    "text", ["", "output: site\nchannels: [\n"], ids=["empty file", "invalid YAML"]
)
def test_cli_exits_2_for_unreadable_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(text)
    status = main(["mirror", "-c", str(config_path), "--out", str(tmp_path / "site")])
    assert status == 2
    # The file named as given to -c, not only by its base name.
    assert f"configuration error: {config_path}:" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("where", ["root", "home", "file", "below a file"])
def test_cli_out_is_checked_like_output(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """``--out`` replaces ``output`` and is refused for the same reasons (exit 2, nothing
    written): the root (checked with a read-only verify), the home directory, a file, a path
    below a file."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    (tmp_path / "a-file").write_text("not a site")
    out = {
        "root": "/",
        "home": str(home),
        "file": str(tmp_path / "a-file"),
        "below a file": str(tmp_path / "a-file" / "site"),
    }[where]
    config_path = _write_config(
        tmp_path, "output: site\nchannels:\n  c/x: {url: http://127.0.0.1:1/c, subdirs: [noarch]}\n"
    )
    command = "verify" if where == "root" else "mirror"
    assert main([command, "-c", str(config_path), "--out", out]) == 2
    assert "configuration error: --out: " in capsys.readouterr().err
    assert list(home.iterdir()) == []


def test_cli_exits_2_for_missing_config(tmp_path: Path, capsys) -> None:
    status = main(["mirror", "-c", str(tmp_path / "nope.yaml")])
    assert status == 2
    assert "nope.yaml: cannot read" in capsys.readouterr().err


def test_cli_exits_2_for_bad_usage(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["mirror", "--no-such-flag"])
    assert info.value.code == 2


# --------------------------------------------------------------------------- ${VAR} in URLs

TOKEN_CONFIG = """
output: site
channels:
  private/org:
    mirrors:
      - name: org
        url: https://conda.anaconda.org/t/${SITEGEN_CONFIG_TOKEN}/org
        subdirs: [linux-64]
"""


def test_unset_variable_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text(dedent(TOKEN_CONFIG))
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"OTHER": "x"})
    line = line_of(dedent(TOKEN_CONFIG), "url:")
    assert str(info.value) == (
        f"{path}:{line}: channels.private/org.mirrors[0].url:"
        " environment variable SITEGEN_CONFIG_TOKEN is not set"
    )
    config = load_config(path, environ={"SITEGEN_CONFIG_TOKEN": "tk-1"})
    assert config.channels[0].mirrors[0].secret_env == ("SITEGEN_CONFIG_TOKEN",)
    # Parsing text alone leaves the variable to the run, which resolves it.
    assert parse_config(dedent(TOKEN_CONFIG)).channels[0].mirrors[0].name == "org"


@pytest.mark.parametrize(
    "url",
    [
        "https://conda.anaconda.org/t/${SITEGEN_CONFIG_TOKEN:-none}/org",
        "https://conda.anaconda.org/t/${SITEGEN_CONFIG_TOKEN/org",
        "https://conda.anaconda.org/t/${1TOKEN}/org",
        "https://${}.example.org/org",
    ],
)
def test_a_reference_that_is_not_one_is_a_config_error(tmp_path: Path, url: str) -> None:
    """``${`` that does not open a ``${NAME}`` reference (shell's ``:-``, a brace left open)
    is a mistake in the file, told as one (exit 2): it was sent upstream as written, so the
    run failed on the upstream's answer (exit 1) or, under ``/t/``, slipped past the check
    for a token written out."""
    text = dedent(TOKEN_CONFIG).replace(
        "https://conda.anaconda.org/t/${SITEGEN_CONFIG_TOKEN}/org", url
    )
    config_path = _write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(config_path, environ={"SITEGEN_CONFIG_TOKEN": "tk-1"})
    assert str(info.value) == (
        f"{config_path}:{line_of(text, 'url:')}: channels.private/org.mirrors[0].url:"
        " '${' that does not open a ${NAME} reference (NAME: letters, digits and '_', not"
        " starting with a digit, then '}')"
    )


def test_cli_exits_2_for_an_unset_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SITEGEN_CONFIG_TOKEN", raising=False)
    config_path = _write_config(tmp_path, dedent(TOKEN_CONFIG))
    status = main(["mirror", "-c", str(config_path), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2
    line = line_of(config_path.read_text(), "url:")
    assert f"channels.yaml:{line}: channels.private/org.mirrors[0].url: " in err
    assert "SITEGEN_CONFIG_TOKEN is not set" in err
    assert not (tmp_path / "out").exists()


def test_variable_values_never_appear_in_errors(tmp_path: Path) -> None:
    secret = "tk-very-secret-value"
    text = dedent("""
        output: site
        channels:
          a/one:
            url: ftp://user:${SITEGEN_CONFIG_TOKEN}@example.org/t/${SITEGEN_CONFIG_TOKEN}/a
            subdirs: [linux-64]
          a/two:
            url: https://${SITEGEN_CONFIG_TOKEN}.example.org/a?x=${SITEGEN_CONFIG_TOKEN}
            subdirs: [linux-64]
          a/three:
            url: https://conda.anaconda.org/t/${SITEGEN_CONFIG_TOKEN}/${SITEGEN_CONFIG_UNSET}
            subdirs: [linux-64]
    """)
    path = tmp_path / "channels.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"SITEGEN_CONFIG_TOKEN": secret})
    assert [e.split(": ", 2)[1] for e in info.value.errors] == [
        "channels.a/one.url",
        "channels.a/two.url",
        "channels.a/three.url",
    ]
    message = str(info.value)
    assert "environment variable SITEGEN_CONFIG_UNSET is not set" in message
    assert secret not in message


def test_a_variable_that_makes_the_url_invalid_is_named_not_shown(tmp_path: Path) -> None:
    text = dedent("""
        output: site
        channels:
          a/one:
            url: https://${SITEGEN_CONFIG_HOST}/conda-forge
            subdirs: [linux-64]
    """)
    path = tmp_path / "channels.yaml"
    path.write_text(text)
    secret = "example.org:port-secret"
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"SITEGEN_CONFIG_HOST": secret})
    assert str(info.value) == (
        f"{path}:{line_of(text, 'url:')}: channels.a/one.url: not a valid URL once"
        " SITEGEN_CONFIG_HOST from the environment are filled in"
    )
    assert "port-secret" not in str(info.value)
    config = load_config(path, environ={"SITEGEN_CONFIG_HOST": "example.org:8443"})
    assert config.channels[0].mirrors[0].source_url({"SITEGEN_CONFIG_HOST": "h:1"}) == (
        "https://h:1/conda-forge"
    )


@pytest.mark.parametrize(
    "host",
    [".example", "mirror.example..", "mirror..example", "x" * 64 + ".example", "a." * 127 + "b"],
    ids=["leading dot", "two dots at the end", "empty label", "label over 63", "name over 253"],
)
def test_a_host_that_is_no_dns_name_is_an_error_written_or_filled_in(
    tmp_path: Path, host: str
) -> None:
    """No request could ever reach such a host: the file says so, not every run."""
    path = tmp_path / "channels.yaml"
    for url, environ in (
        (f"https://{host}/conda", {}),
        ("https://${SITEGEN_CONFIG_HOST}/conda", {"SITEGEN_CONFIG_HOST": host}),
    ):
        text = f"output: site\nchannels:\n  a/one:\n    url: {url}\n    subdirs: [linux-64]\n"
        path.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_config(path, environ=environ)
        message = str(info.value)
        assert message.startswith(f"{path}:4: channels.a/one.url: "), message
        assert "valid" in message and (host not in message or not environ)
    for fine in ("mirror.example.", "127.0.0.1", "[::1]", "bücher.example", "h:8443"):
        text = f"output: site\nchannels:\n  a/one:\n    url: http://{fine}/c\n    subdirs: [linux-64]\n"
        path.write_text(text)
        load_config(path, environ={})


# --------------------------------------------------------------------------- all errors at once

MANY_ERRORS = """
output: site
outptu: typo
download: {concurrency: many, retries: -1}
filters:
  names: {include: ["sci[py"]}
channels:
  cloud/a:
    url: ftp://example.org/a
    subdirs: [linux-64]
    mode: lazy
  cloud/b:
    mirrors:
      - name: b1
        subdirs: [linux-64]
      - name: b2
        url: https://example.org/b
        subdirs: [Linux 64]
        filters: {newest_versions: 0, max_size: huge}
  cloud/c:
    url: https://example.org/c
    subdirs: [linux-64]
    filters:
      names: {exclude: ["*"]}
"""


def test_every_error_is_reported_once_in_file_order() -> None:
    text = dedent(MANY_ERRORS)
    with pytest.raises(ConfigError) as info:
        parse_config(text)

    def at(marker: str, path: str, words: str) -> str:
        return f"channels.yaml:{line_of(text, marker)}: {path}: {words}"

    expected = [
        at("outptu", "outptu", "unknown key 'outptu'"),
        at("download", "download.concurrency", "expected a whole number, got 'many'"),
        at("download", "download.retries", "must be at least 0"),
        at("sci[py", "filters.names.include[0]", "invalid glob 'sci[py': unbalanced brackets"),
        at("ftp://", "channels.cloud/a.url", "URL must start with https://, http:// or file://"),
        at("mode: lazy", "channels.cloud/a.mode", "expected 'active' or 'passive', got 'lazy'"),
        at("name: b1", "channels.cloud/b.mirrors[0]", "missing required key 'url'"),
        at("Linux 64", "channels.cloud/b.mirrors[1].subdirs[0]", "invalid subdir 'Linux 64'"),
        at("newest_versions", "channels.cloud/b.mirrors[1].filters.newest_versions", "must be"),
        at("max_size", "channels.cloud/b.mirrors[1].filters.max_size", "expected a size"),
        at("names: {exclude", "channels.cloud/c.filters", "names.exclude '*' excludes every"),
    ]
    errors = info.value.errors
    assert len(errors) == len(expected), "\n".join(errors)
    for error, prefix in zip(errors, expected, strict=True):
        assert error.startswith(prefix), (error, prefix)
    assert str(info.value) == "\n".join(errors)


def test_at_most_20_errors_are_listed() -> None:
    channels = "".join(
        f"  c/m{i}:\n    url: https://example.org/{i}\n    subdirs: [linux-64]\n    mode: m{i}\n"
        for i in range(25)
    )
    with pytest.raises(ConfigError) as info:
        parse_config(f"output: site\nchannels:\n{channels}")
    errors = info.value.errors
    assert len(errors) == 21
    assert all(f"channels.c/m{i}.mode: " in errors[i] for i in range(20))
    assert errors[20] == "channels.yaml: stopped after 20 errors"


def test_cli_lists_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = _write_config(tmp_path, dedent(MANY_ERRORS))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "channels.cloud/a.mode" in err and "channels.cloud/c.filters" in err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- source kinds


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


def test_source_url_fills_references_and_encodes_only_the_user_part() -> None:
    """A value in user:password is percent-encoded (httpx decodes it for Basic auth); one in
    the host or the path, or in a local folder's path, is filled in as it is."""
    env = {"PASS": "a/b?c#d@e", "TOKEN": "tok-123", "HOST": "example.org:8443"}
    cases = {
        "https://me:${PASS}@h.example/chan/": "https://me:a%2Fb%3Fc%23d%40e@h.example/chan",
        "https://h.example/t/${TOKEN}/chan": "https://h.example/t/tok-123/chan",
        "https://${HOST}/chan": "https://example.org:8443/chan",
        "https://h.example/a@b/chan": "https://h.example/a@b/chan",
        "file:///srv/${TOKEN}/chan": "file:///srv/tok-123/chan",
        "/srv/builds/": "/srv/builds",
    }
    for url, expected in cases.items():
        mirror = MirrorConfig(name="m", url=url, subdirs=("linux-64",))
        assert mirror.source_url(env) == expected, url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://files.example.org/conda/main?token=s3cr3t-42&region=eu",
            "https://files.example.org/conda/main?token=***&region=***",
        ),
        (
            "error: https://u:pw@h.example/c/x.conda?X-Amz-Signature=abcdef returned 403",
            "error: https://***@h.example/c/x.conda?X-Amz-Signature=*** returned 403",
        ),
        ("https://h.example/c?flag", "https://h.example/c?flag"),
    ],
)
def test_redact_url_hides_query_values(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_a_secret_cut_short_in_an_error_message_is_hidden(monkeypatch) -> None:
    """Error messages quote only the start of a long value (shown_value, shown_reason), before
    anything hides the secrets it holds: a secret the cut went through is no whole value, yet
    its start must not show."""
    secret = "tk-5f1e9a7c3b2d4e6f8a0b"
    monkeypatch.setenv("FEED_TOKEN", secret)
    for kept in (4, 10, 20):  # characters of the secret before the cut
        value = "x" * (40 - kept) + secret + "-advisory.json"
        for message in (
            f"member {shown_value(value)}: not valid JSON",
            f"cannot read: {shown_reason('y' * (200 - kept) + secret)}",
        ):
            for hide in (scrub_names(["FEED_TOKEN"]), SecretSearch([secret]).hide):
                shown = hide(message)
                assert secret[:3] not in shown, (kept, shown)
                assert "***" in shown and "characters)" in shown
    # A start of the secret that does not end at a cut is ordinary text.
    assert scrub_names(["FEED_TOKEN"])("tk-5 and tk-5f1e...") == "tk-5 and tk-5f1e..."


def test_a_secret_percent_encoded_otherwise_in_an_error_message_is_hidden(monkeypatch) -> None:
    """A URL spells a value in any percent-encoding (``%74`` for ``t``), not only as sitegen
    encodes it: an error message quoting what an upstream served (a feed archive's member
    name) may hold a secret so, whole or cut short."""
    secret = "tk-5f1e9a7c3b2d4e6f8a0b"
    monkeypatch.setenv("FEED_TOKEN", secret)
    spelt = "%74%6B%2d" + secret[3:]
    for value in (spelt + ".json", "x" * 20 + spelt + "-advisory.json"):
        message = f"member {shown_value(value)}: not valid JSON"
        for hide in (scrub_names(["FEED_TOKEN"]), SecretSearch([secret]).hide):
            shown = hide(message)
            assert secret[3:8] not in shown, shown
            assert "***" in shown
    # Text whose percent-escapes spell no secret is shown as it is.
    assert scrub_names(["FEED_TOKEN"])("a%20b tk-5f") == "a%20b tk-5f"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # A password holding an unencoded '/' or '@': hidden up to the last '@' before the path.
        ("https://user:pa/ss@h.example/x", "https://***@h.example/x"),
        ("get 'https://me:a/b/c@h.example/c' failed", "get 'https://***@h.example/c' failed"),
        ("https://user:pa/t/ss@h.example/x", "https://***@h.example/x"),
        ("https://u:pa@ss@h.example/x", "https://***@h.example/x"),
        # An '@' in the path after a host (and port) is no user:password part.
        ("https://h.example/a@b/chan", "https://h.example/a@b/chan"),
        ("https://h.example:8443/a@b/chan", "https://h.example:8443/a@b/chan"),
        ("https://[::1]:8443/a@b", "https://[::1]:8443/a@b"),
        ("https://u:pw@h.example/a@b/chan", "https://***@h.example/a@b/chan"),
    ],
)
def test_redact_url_hides_the_whole_user_password_part(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize("secret", ["tk\\5f1e9a'7c3b\"2d", "p\u00e4ssw\u00f6rd-5f1e9a7c3b2d"])
def test_a_secret_escaped_in_an_error_message_is_hidden(monkeypatch, secret: str) -> None:
    """A message quoting a value with repr() or as JSON spells a backslash, a quote or a
    character outside ASCII escaped: a search for the value as it is finds no such spelling."""
    monkeypatch.setenv("FEED_TOKEN", secret)
    value = "x" * 20 + secret + "-advisory.json"
    messages = [
        f"member {value!r}: not valid JSON",
        f"member {[value]!r}: not valid JSON",
        f"member {shown_value(value)}: not valid JSON",
        f"member {shown_value(value, 30)}: not valid JSON",  # cut in the secret
        f"body {json.dumps({'name': value})} refused",
        f"body {json.dumps({'name': value}, ensure_ascii=False)} refused",
    ]
    for message in messages:
        for hide in (scrub_names(["FEED_TOKEN"]), SecretSearch([secret]).hide):
            shown = hide(message)
            assert "5f1e" not in shown and "tk" not in shown and "ssw" not in shown, shown
            assert "***" in shown
