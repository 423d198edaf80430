"""Private channels behind real nginx and real Apache, run from ``sitegen webconf --standalone``:
a directory asked for without its trailing slash. The redirect keeps the path token wherever it
stood, is kept a minute as the directory's own answer, and tells a client without a right token
nothing a private channel's directory would not.
"""

from __future__ import annotations

import httpx
import pytest

from testkit.apache import require_server, webconf_server
from testkit.private_site import (
    PREFIX,
    PRIVATE,
    PUBLIC,
    PULL,
    PrivateSite,
    assert_no_token_anywhere,
    bearer,
    request,
    wait_for_log,
    wrong_token,
)
from testkit.private_site import private_site as open_private_site
from testkit.upstream import ExampleUpstream


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_a_directory_redirect_keeps_the_path_token(server: str, private_site: PrivateSite) -> None:
    """A private directory asked for without its trailing slash is redirected to the same
    address with the slash, /t/<token>/ still in it wherever it stood, so the next request is
    let in; the token reaches no log."""
    require_server(server)
    ci = private_site.tokens["ci"]
    site = private_site.config.output
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    with running:
        url = running.url
        for path in (
            f"/t/{ci}{PREFIX}/{PRIVATE}",  # pixi, mamba: after the host
            f"{PREFIX}/t/{ci}/{PRIVATE}",  # conda: after the prefix
            f"{PREFIX}/internal/t/{ci}/licensed",  # conda: in the channel's path
            f"{PREFIX}/t/{ci}/{PRIVATE}/linux-64",  # a subdir's page
        ):
            status, headers, _ = request(url, path)
            assert status in (301, 302), (path, status)
            target = httpx.URL(url + path).join(headers["location"])
            assert target.path == path + "/", (path, headers["location"])
            status, _, body = request(url, target.raw_path.decode())
            assert status == 200, (path, status)
            rel = path.rsplit("/", 1)[1]
            index = site / PRIVATE / ("" if rel == "licensed" else rel) / "index.html"
            assert body == index.read_bytes()
    wait_for_log(running.state_dir / "access.log")
    assert_no_token_anywhere(private_site, running.state_dir)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("site", [False, True], ids=["public-site", "private-site"])
def test_the_site_root_under_a_path_token_is_redirected_to_its_slash(
    server: str, site: bool, example_upstream: ExampleUpstream
) -> None:
    """The site's root asked for under a path token without its trailing slash (the token
    after the host, or inside a prefix of two segments) is redirected to the slash, the token
    still in the address, as every other folder is, and kept a minute; a private site's only
    for a right token, and for the client's cache only. A wrong token gets what it gets with
    the slash."""
    require_server(server)
    with open_private_site(example_upstream, site=site) as private_site:
        ci = private_site.tokens["ci"]
        index = (private_site.config.output / "index.html").read_bytes()
        scope = "private" if site else "public"
        for prefix, places in (
            (PREFIX, [f"/t/<token>{PREFIX}"]),
            ("/mirror/conda", ["/t/<token>/mirror/conda", "/mirror/t/<token>/conda"]),
        ):
            running = webconf_server(
                server, private_site.config, private_site.root / "state", prefix=prefix
            )
            with running:
                for place in places:
                    path = place.replace("<token>", ci)
                    status, headers, _ = request(running.url, path)
                    assert status == 301, (server, place, status)
                    assert headers.get("cache-control") == f"{scope}, max-age=60", headers
                    assert headers.get("referrer-policy") == "no-referrer", headers
                    target = httpx.URL(running.url + path).join(headers["location"])
                    assert target.path == path + "/", (place, headers["location"])
                    status, _, body = request(running.url, target.raw_path.decode())
                    assert (status, body) == (200, index), (place, status)
                    if site:
                        wrong = place.replace("<token>", wrong_token(ci))
                        got = request(running.url, wrong)
                        slashed = request(running.url, wrong + "/")
                        for answer in (got, slashed):
                            answer[1].pop("date", None)
                        assert got[0] == 401 and got == slashed, (place, got[0])
            wait_for_log(running.state_dir / "access.log")
            assert_no_token_anywhere(private_site, running.state_dir)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("prefix", [PREFIX, ""])
def test_a_private_directory_without_its_slash_tells_nothing(
    server: str, prefix: str, private_site: PrivateSite
) -> None:
    """In a public site, a private channel's directory asked for without its trailing slash
    answers a client without a right token exactly as with the slash: the redirect to the
    slash would tell anyone that the channel exists. A reader is redirected, for their own
    cache only."""
    require_server(server)
    tokens = private_site.tokens
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=prefix
    )
    with running:
        url = running.url
        for rel in (PRIVATE, PULL, f"{PRIVATE}/linux-64"):
            path = f"{prefix}/{rel}"
            for what, target, headers in (
                ("no token", path, {}),
                ("wrong Bearer", path, bearer(wrong_token(tokens["ci"]))),
                ("token of no reader", path, bearer(tokens["outsider"])),
                ("revoked Bearer", path, bearer(tokens["gone"])),
                ("wrong path token", f"{prefix}/t/{wrong_token(tokens['ci'])}/{rel}", {}),
                ("revoked path token", f"/t/{tokens['gone']}{path}", {}),
            ):
                slashed = request(url, target + "/", headers)
                got = request(url, target, headers)
                assert got[0] in (401, 403), f"{server} {rel}: {what}: {got[0]}"
                for answer in (slashed, got):
                    answer[1].pop("date", None)
                assert got == slashed, f"{server} {rel}: {what}"
            status, headers, _ = request(url, path, bearer(tokens["ci"]))
            assert status == 301 and headers["location"].endswith(f"{path}/"), (rel, status)
            assert "public" not in headers.get("cache-control", ""), (rel, headers)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_a_redirect_to_the_slash_is_cached_as_the_directory(
    server: str, private_site: PrivateSite
) -> None:
    """Every redirect of a directory to its slash (the prefix's, a folder's, a private
    channel's parent folder's, a channel's, a subdir's; under a path token too) is kept a
    minute, as the directory's own answer: public where the directory is, for the client's
    cache only in a private channel. Both servers answer alike; a redirect without a lifetime
    would be kept as long as a cache guesses."""
    require_server(server)
    ci = private_site.tokens["ci"]
    parent = PRIVATE.split("/")[0]
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    with running:
        for path, headers, scope in (
            (PREFIX, {}, "public"),
            (f"{PREFIX}/{parent}", {}, "public"),
            (f"{PREFIX}/{parent}", bearer(ci), "public"),
            (f"{PREFIX}/t/{ci}/{parent}", {}, "public"),
            (f"{PREFIX}/{PUBLIC}", {}, "public"),
            (f"{PREFIX}/{PUBLIC}/linux-64", {}, "public"),
            (f"/t/{ci}{PREFIX}/{PUBLIC}", {}, "public"),
            (f"{PREFIX}/history", {}, "public"),
            (f"{PREFIX}/{PRIVATE}", bearer(ci), "private"),
            (f"{PREFIX}/t/{ci}/{PRIVATE}/linux-64", {}, "private"),
        ):
            status, got, _ = request(running.url, path, headers)
            shown = path.replace(ci, "<token>")
            assert status == 301, (shown, status)
            assert got.get("cache-control") == f"{scope}, max-age=60", (shown, got)
