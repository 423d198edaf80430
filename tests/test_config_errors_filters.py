"""channels.yaml filters contradicting across levels, bad except entries: line and key path."""

from __future__ import annotations

import pytest

from testkit.config import ConfigErrorCase, config_error_tests

pytestmark = pytest.mark.unit

ERRORS: list[ConfigErrorCase] = [
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
        # Year 1 at +14:00 is still year 0 in UTC, past what a date can hold: the range is
        # shown in UTC (sitegen status), which would fail on it.
        "date whose UTC time is before year 1",
        """
        output: site
        filters:
          dates: {after: "0001-01-01T00:00:00+14:00"}
        channels:
          cloud/conda-forge: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "after:",
        "filters.dates.after",
        "no UTC time",
    ),
    (
        "date whose UTC time is after 9999",
        """
        output: site
        filters:
          dates: {before: "9999-12-31T23:59:59-14:00"}
        channels:
          cloud/conda-forge: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "before:",
        "filters.dates.before",
        "no UTC time",
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


test_error_names_line_and_key_path, test_cli_exits_2_and_touches_nothing = config_error_tests(
    ERRORS
)
