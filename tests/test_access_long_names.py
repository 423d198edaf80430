"""A path segment longer than any file name (255 bytes) under a private channel, on real nginx
and Apache: without a valid token it answers 401 whether the folders around it exist or not,
so an outsider learns nothing of what the channel holds; with one, 404, as any missing file
(clients fall back on 404 only). Under a public channel: 404. Left to itself, Apache refuses
such a name while it maps the path to a file, before any access check, with a 403 where the
folders before it exist. A private channel's path as long as the config allows is served by
both servers, checked as any other.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest

from sitegen.access.server_files import write_server_files
from sitegen.config import load_config
from testkit.apache import require_server, server_user, webconf_server, world_readable_dir
from testkit.private_site import (
    PREFIX,
    PRIVATE,
    PUBLIC,
    PrivateSite,
    basic,
    bearer,
    request,
    token_add,
)
from testkit.private_site import private_site as open_private_site
from testkit.upstream import ExampleUpstream

LONG = "a" * 300  # longer than a file name may be: the file system refuses it (ENAMETOOLONG)
WIDE = "%C3%A9" * 128  # 128 characters, 256 bytes: too long too
# Where the long segment stands in a channel: last, under a folder that exists and under one
# that does not, and right under the channel; in the middle of a path; a name with fewer
# characters than bytes.
PLACES = (
    f"linux-64/{LONG}",
    f"nosuchdir/{LONG}",
    f"{LONG}",
    f"linux-64/{LONG}/repodata.json",
    f"{LONG}/linux-64/repodata.json",
    f"linux-64/{WIDE}",
)


@pytest.fixture
def private_whole_site(example_upstream: ExampleUpstream) -> Iterator[PrivateSite]:
    with open_private_site(example_upstream, site=True) as site:
        yield site


def forms(prefix: str, channel: str, token: str) -> list[str]:
    """A channel's location with the path token ``token`` where each client puts it."""
    head, _, last = channel.rpartition("/")
    return [
        f"/t/{token}{prefix}/{channel}",
        f"{prefix}/t/{token}/{channel}",
        f"{prefix}/{head}/t/{token}/{last}",
    ]


def mismatches(
    url: str, paths: list[str], status: int, headers: dict[str, str] | None = None
) -> list[tuple[str, int]]:
    """The paths (the long segment shown as <long>) that do not answer ``status``, with what
    they answer."""
    answers = ((path, request(url, path, headers)[0]) for path in paths)
    return [
        (path.replace(LONG, "<long>").replace(WIDE, "<wide>"), got)
        for path, got in answers
        if got != status
    ]


def assert_private(url: str, prefix: str, channel: str, reader: str, other: str) -> None:
    """Under ``channel``, a long segment anywhere answers 401 without a token or with ``other``
    (a live token that does not read it), in a header or in the path, and 404 with
    ``reader``'s."""
    bare = [f"{prefix}/{channel}/{p}" for p in PLACES]
    refused = [f"{f}/{p}" for p in PLACES for f in forms(prefix, channel, other)]
    let_in = [f"{f}/{p}" for p in PLACES for f in forms(prefix, channel, reader)]
    wrong = [
        *mismatches(url, bare, 401),
        *mismatches(url, bare, 401, bearer(other)),
        *mismatches(url, refused, 401),
        *mismatches(url, bare, 404, bearer(reader)),
        *mismatches(url, let_in, 404),
    ]
    assert wrong == []


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("prefix", [PREFIX, ""])
def test_an_over_long_name_in_a_private_channel_tells_nothing_without_a_token(
    server: str, prefix: str, private_site: PrivateSite
) -> None:
    require_server(server)
    tokens = private_site.tokens
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=prefix
    )
    with running:
        assert_private(running.url, prefix, PRIVATE, tokens["ci"], tokens["outsider"])
        # A public channel has nothing to hide: a name that cannot exist is missing.
        public = [f"{prefix}/{PUBLIC}/{p}" for p in PLACES]
        assert mismatches(running.url, public, 404) == []


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_an_over_long_name_in_a_private_site_tells_nothing_without_a_token(
    server: str, private_whole_site: PrivateSite
) -> None:
    require_server(server)
    site = private_whole_site
    tokens = site.tokens
    running = webconf_server(server, site.config, site.root / "state", prefix=PREFIX)
    with running:
        url = running.url
        # Everywhere: any live token reads the site, the private channel only its readers.
        anywhere = [f"{PREFIX}/{p}" for p in (LONG, f"{LONG}/index.html", f"cloud/{LONG}")]
        anywhere += [f"{PREFIX}/{PUBLIC}/{p}" for p in PLACES]
        outsider = bearer(tokens["outsider"])
        assert mismatches(url, anywhere, 401) + mismatches(url, anywhere, 404, outsider) == []
        assert_private(url, PREFIX, PRIVATE, tokens["ci"], tokens["outsider"])


# A channel path of 49 characters, as an operator may well write one.
LONG_CHANNEL = "internal/licensed-vendor-builds/data-science-team"


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("site", ["", "site: private"], ids=["private-channel", "private-site"])
def test_a_private_channel_with_a_long_path_answers_to_its_readers_tokens(
    server: str, site: str
) -> None:
    """nginx looks a token up under the channel's path in a hash whose buckets hold 64 bytes
    (the usual default): a longer path (over 26 characters) must still make a config it runs."""
    require_server(server)
    user = server_user()
    with world_readable_dir() as root:
        config_path = root / "channels.yaml"
        config_path.write_text(
            textwrap.dedent(f"""\
                output: site
                access:
                  {site}
                  dir: {root}/access
                  {f"group: {user.split(':')[1]}" if user else ""}
                channels:
                  {LONG_CHANNEL}:
                    url: https://example.org/long
                    subdirs: [noarch]
                    access: private
                    readers: [ci]
                """)
        )
        config = load_config(config_path)
        repodata = config.output / LONG_CHANNEL / "noarch" / "repodata.json"
        repodata.parent.mkdir(parents=True)
        repodata.write_text("{}")
        tokens = {name: token_add(config_path, name) for name in ("ci", "outsider")}
        write_server_files(config)
        path = f"/{LONG_CHANNEL}/noarch/repodata.json"
        with webconf_server(server, config, root / "state") as running:
            answers = {
                "none": request(running.url, path)[0],
                "bearer": request(running.url, path, bearer(tokens["ci"]))[0],
                "basic": request(running.url, path, basic("ci", tokens["ci"]))[0],
                "path": request(running.url, f"/t/{tokens['ci']}{path}")[0],
                "outsider": request(running.url, path, bearer(tokens["outsider"]))[0],
            }
    assert answers == {"none": 401, "bearer": 200, "basic": 200, "path": 200, "outsider": 401}
