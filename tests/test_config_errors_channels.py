"""channels.yaml errors in channel paths, subdirs, names, URL schemes, modes: line and key path."""

from __future__ import annotations

import pytest

from testkit.config import ConfigErrorCase, config_error_tests

pytestmark = pytest.mark.unit

ERRORS: list[ConfigErrorCase] = [
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
        # nginx and Apache guard internal/open as a file of internal; sitegen serve and the
        # fetcher took it for a public channel of its own.
        "public channel inside a private one",
        """
        output: site
        channels:
          internal: {url: https://example.org/internal, subdirs: [noarch], access: private}
          internal/open: {url: https://example.org/open, subdirs: [noarch]}
        """,
        "internal/open:",
        "channels.internal/open",
        "inside channel 'internal' (line 3), which is private: a private channel's folder is"
        " guarded whole, by its own readers, so it can neither hold a channel nor lie inside"
        " one; give this one a path outside 'internal/', such as 'internal-open'",
    ),
    (
        "private channel inside a public one",
        """
        output: site
        channels:
          open: {url: https://example.org/open, subdirs: [noarch]}
          open/secret: {url: https://example.org/secret, subdirs: [noarch], access: private}
        """,
        "open/secret:",
        "channels.open/secret",
        "inside channel 'open' (line 3), and this one is private:",
    ),
    (
        "private channel inside another private one",
        """
        output: site
        channels:
          internal:
            {url: https://example.org/internal, subdirs: [noarch], access: private, readers: [a]}
          internal/a/b:
            {url: https://example.org/b, subdirs: [noarch], access: private, readers: [b]}
        """,
        "example.org/b",  # a channel's line is that of its mapping
        "channels.internal/a/b",
        "inside channel 'internal' (line 4), and both are private: a private channel's folder",
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
        # Two slashes where three are meant: 'srv' would be read as a host and dropped, and
        # the run would find nothing at /conda/channel (an empty channel, published).
        "file URL with a host",
        """
        output: site
        channels:
          local/a:
            url: file://srv/conda/channel
            subdirs: [linux-64]
        """,
        "file://srv",
        "channels.local/a.url",
        "a file:// URL names no host",
    ),
    (
        # Read against whatever directory the run starts in (cron's is not the operator's).
        "file URL with a relative path",
        """
        output: site
        channels:
          local/a:
            url: file:conda/channel
            subdirs: [linux-64]
        """,
        "file:conda",
        "channels.local/a.url",
        "the path of a file:// URL must be absolute",
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
]


test_error_names_line_and_key_path, test_cli_exits_2_and_touches_nothing = config_error_tests(
    ERRORS
)
