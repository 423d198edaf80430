"""channels.yaml errors in keys, value types, globs and MatchSpecs: line and key path, exit 2."""

from __future__ import annotations

import pytest

from testkit.config import ConfigErrorCase, config_error_tests

pytestmark = pytest.mark.unit

ERRORS: list[ConfigErrorCase] = [
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
]


test_error_names_line_and_key_path, test_cli_exits_2_and_touches_nothing = config_error_tests(
    ERRORS
)
