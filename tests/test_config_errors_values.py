"""channels.yaml values of a wrong form or range (URLs, ${ENV}, sizes, text): line and key path."""

from __future__ import annotations

import pytest

from testkit.config import ConfigErrorCase, config_error_tests

pytestmark = pytest.mark.unit

ERRORS: list[ConfigErrorCase] = [
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
        # The pages join channel paths to it: clients would read them as part of the fragment
        # and ask the site's root for every channel.
        "base_url with a fragment",
        """
        output: site
        base_url: https://conda.example.org/#mirror
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "base_url",
        "base_url",
        "base_url must not have a fragment",
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
        "a grace period shorter than a client keeps the shard index",
        """
        output: site
        shards: {grace_days: 0.5}
        channels:
          cloud/x: {url: "https://conda.anaconda.org/conda-forge", subdirs: [linux-64]}
        """,
        "shards",
        "shards.grace_days",
        "must be between 1.0 and",
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
]


test_error_names_line_and_key_path, test_cli_exits_2_and_touches_nothing = config_error_tests(
    ERRORS
)
