"""Private channels behind real nginx and real Apache, run from ``sitegen webconf --standalone``:
what reaches no one else. A page under a path token sends no Referer, every answer says
``no-referrer``, a private channel's answers are for the client's cache only, and the access
log names a token as used only where the server verified it, and never shows one.
"""

from __future__ import annotations

import pytest

from testkit.apache import require_server, webconf_server
from testkit.private_site import (
    PREFIX,
    PRIVATE,
    PUBLIC,
    PrivateSite,
    assert_no_token_anywhere,
    basic,
    bearer,
    package_of,
    request,
    token_list,
    wait_for_log,
    wrong_token,
)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_a_page_under_a_path_token_leaks_it_through_no_referer(
    server: str, private_site: PrivateSite
) -> None:
    """A private channel's page browsed under /t/<token>/ tells the browser to send no Referer
    (header and <meta>), and a Referer sent anyway, naming that page, is not logged."""
    require_server(server)
    ci = private_site.tokens["ci"]
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    with running:
        url = running.url
        page = f"{PREFIX}/t/{ci}/{PRIVATE}/"
        status, headers, body = request(url, page)
        assert status == 200 and b"assets/style.css" in body
        assert headers.get("referrer-policy") == "no-referrer"
        assert b'<meta name="referrer" content="no-referrer">' in body
        # What a browser ignoring the policy sends for the page's own stylesheet: the page's
        # address as written, and as it keeps one spelled oddly (the server decodes %74).
        for referer in (f"{url}{page}", f"{url}{PREFIX}/%74/{ci}/{PRIVATE}/"):
            status, _, _ = request(url, f"{PREFIX}/t/{ci}/assets/style.css", {"Referer": referer})
            assert status == 200
    access_log = running.state_dir / "access.log"
    wait_for_log(access_log)
    assert_no_token_anywhere(private_site, running.state_dir)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_every_answer_says_no_referrer(server: str, private_site: PrivateSite) -> None:
    """Not only the files found: a 404 (a missing optional file, asked for under a path token
    too), a refusal, a redirect and a denied name carry ``Referrer-Policy: no-referrer`` as
    well, whatever page the server or an operator's ``error_page`` shows there."""
    require_server(server)
    site = private_site.config.output
    tokens = private_site.tokens
    ci = tokens["ci"]
    (site / PRIVATE / "linux-64" / "current_repodata.json").unlink()
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    missing = f"{PRIVATE}/linux-64/current_repodata.json"
    with running:
        url = running.url
        for path, headers, statuses in (
            (f"{PREFIX}/{PRIVATE}/", bearer(ci), (200,)),
            (f"{PREFIX}/{missing}", bearer(ci), (404,)),
            (f"{PREFIX}/t/{ci}/{missing}", {}, (404,)),
            (f"/t/{ci}{PREFIX}/{missing}", {}, (404,)),
            (f"{PREFIX}/{PUBLIC}/linux-64/missing-1.0-0.conda", {}, (404,)),
            (f"{PREFIX}/{PRIVATE}/linux-64/repodata.json", {}, (401,)),
            (f"{PREFIX}/{PRIVATE}/linux-64/repodata.json", bearer(tokens["gone"]), (403,)),
            (f"{PREFIX}/.sitegen/", {}, (403,)),
            (f"{PREFIX}/stats.json", bearer(ci), (403, 404)),
            (PREFIX, {}, (301,)),
            (f"{PREFIX}/t/{ci}/{PRIVATE}", {}, (301,)),
        ):
            status, got, _ = request(url, path, headers)
            shown = path.replace(ci, "<token>")
            assert status in statuses, (shown, status)
            assert got.get("referrer-policy") == "no-referrer", (shown, status)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_private_files_are_for_the_client_cache_only(
    server: str, private_site: PrivateSite
) -> None:
    """A private channel's answers are ``private`` (RFC 9111 §3.5: a shared cache may store an
    answer to a request with Authorization when it is ``public``, and serve it to anyone);
    a public channel's stay ``public``, with the same lifetimes: long only for a subdir's
    package files and its shards, not for a file named like one elsewhere in the channel."""
    require_server(server)
    site = private_site.config.output
    ci = private_site.tokens["ci"]
    shard_name = f"{'cd' * 32}.msgpack.zst"
    for channel in (PRIVATE, PUBLIC):
        shard = site / channel / "linux-64" / "shards" / shard_name
        shard.parent.mkdir(exist_ok=True)
        shard.write_bytes(b"(shard)")
        (site / channel / "linux-64" / shard_name).write_bytes(b"(not a shard)")
        deeper = site / channel / "linux-64" / "old" / "x-1.0-0.conda"
        deeper.parent.mkdir()
        deeper.write_bytes(b"(not a package file)")
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    short, long = "max-age=60", "max-age=31536000, immutable"
    with running:
        url = running.url
        for channel, scope in ((PRIVATE, "private"), (PUBLIC, "public")):
            files = {
                "linux-64/repodata.json": short,
                "linux-64/repodata.json.zst": short,
                "linux-64/repodata_shards.msgpack.zst": short,
                f"linux-64/shards/{shard_name}": long,
                f"linux-64/{package_of(site, channel)}": long,
                f"linux-64/{shard_name}": short,
                "linux-64/old/x-1.0-0.conda": short,
                "": short,  # the channel's page
                "linux-64/": short,
            }
            for rel, lifetime in files.items():
                for path, headers in (
                    (f"{PREFIX}/{channel}/{rel}", bearer(ci)),
                    (f"/t/{ci}{PREFIX}/{channel}/{rel}", {}),
                ):
                    status, got, _ = request(url, path, headers)
                    assert status == 200, (channel, rel)
                    assert got.get("cache-control") == f"{scope}, {lifetime}", (channel, rel)
                    # As every answer of the site (see the page's test below).
                    assert got.get("referrer-policy") == "no-referrer", (channel, rel)
        # The site-wide pages are public.
        status, got, _ = request(url, f"{PREFIX}/")
        assert (status, got.get("cache-control")) == (200, f"public, {short}")


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_only_a_verified_token_is_logged_as_used(server: str, private_site: PrivateSite) -> None:
    """`token list --access-log` counts a use only where the server verified the token: a
    made-up secret after a token's public id, or any token on a public file, is no use."""
    require_server(server)
    outsider, alice = private_site.tokens["outsider"], private_site.tokens["alice"]
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    public = f"{PREFIX}/{PUBLIC}/linux-64/repodata.json"
    with running:
        url = running.url
        for token in (wrong_token(outsider), outsider):
            for path, headers in (
                (public, bearer(token)),
                (public, basic("outsider", token)),
                (f"/t/{token}{public}", {}),
                (f"{PREFIX}/t/{token}/{PUBLIC}/linux-64/repodata.json", {}),
            ):
                assert request(url, path, headers)[0] == 200, (path, headers)
        assert request(url, f"{PREFIX}/{PRIVATE}/linux-64/repodata.json", bearer(alice))[0] == 200
    access_log = running.state_dir / "access.log"
    wait_for_log(access_log)
    lines = access_log.read_text().splitlines()
    # A server writes a line once its answer went out: the lines of two requests in a row may
    # come in either order.
    used = [line for line in lines if not line.endswith(" token=-")]
    assert len(lines) == 9 and len(used) == 1, lines
    assert f"{PREFIX}/{PRIVATE}/linux-64/repodata.json" in used[0], lines
    listing = token_list(private_site.config_path, access_log)
    assert listing["outsider"][-1] == "-" and listing["alice"][-1] != "-"


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_a_path_token_that_ends_the_path_reaches_no_log(
    server: str, private_site: PrivateSite
) -> None:
    """A token with nothing after it (``.../t/<token>``, which no client sends: the servers
    read a path token only from ``/t/<token>/``) is masked in the access log all the same,
    written plainly or not, as every ``/t/`` segment is."""
    require_server(server)
    ci = private_site.tokens["ci"]
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    with running:
        for path in (
            f"{PREFIX}/t/{ci}",
            f"{PREFIX}/t/{ci}?x=1",
            f"{PREFIX}/internal/t/{ci}",
            f"/t/{ci}",
            f"{PREFIX}/%74/{ci}",
        ):
            status, _, _ = request(running.url, path)
            assert status in (401, 403, 404), (path.replace(ci, "<token>"), status)
    wait_for_log(running.state_dir / "access.log")
    assert_no_token_anywhere(private_site, running.state_dir)
