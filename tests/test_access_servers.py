"""Private channels behind real nginx and real Apache, run from ``sitegen webconf --standalone``.

A site with a public and private channels (mirrored from the example upstream, pages rendered;
see :mod:`testkit.private_site`) is served by each server; tokens are issued with ``sitegen
token``. Every credential form conda, mamba and pixi send is tried against repodata, a shard, a
package file and a page (curl for ``.netrc``), at the root and under a prefix; py-rattler
installs through its authentication storage and through a ``/t/`` URL; revocation takes effect
after at most a reload; and afterwards every log and output file is searched for the tokens.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sitegen.cli import main
from testkit.access import fetcher_subprocess, install_with_auth, rattler_auth_file
from testkit.apache import require_server, webconf_server
from testkit.private_site import (
    BASIC_LOGINS,
    PREFIX,
    PRIVATE,
    PUBLIC,
    PULL,
    PrivateSite,
    assert_no_token_anywhere,
    basic,
    bearer,
    package_of,
    request,
    token_add,
    token_list,
    wait_for_log,
    wait_status,
    wrong_token,
)
from testkit.private_site import private_site as open_private_site
from testkit.upstream import ExampleUpstream


@pytest.fixture
def private_site(example_upstream: ExampleUpstream) -> Iterator[PrivateSite]:
    with open_private_site(example_upstream) as site:
        yield site


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("prefix", [PREFIX, ""])
def test_every_credential_form_on_every_kind_of_file(
    server: str, prefix: str, private_site: PrivateSite, tmp_path: Path
) -> None:
    require_server(server)
    site = private_site.config.output
    tokens = private_site.tokens
    ci = tokens["ci"]
    for optional in ("current_repodata.json", "repodata_shards.msgpack.zst"):
        (site / PRIVATE / "linux-64" / optional).unlink()  # optional files clients probe
    # At the root: the symlink deploy (the config names the link, Apache's <Directory> too).
    root = site
    if not prefix:
        root = private_site.root / "www"
        root.symlink_to(site)
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=prefix, root=root
    )
    shard_name = f"{'ab' * 32}.msgpack.zst"
    for channel in (PRIVATE, PUBLIC):  # a CEP-16 shard, as written beside the index
        shard = site / channel / "linux-64" / "shards" / shard_name
        shard.parent.mkdir(exist_ok=True)
        shard.write_bytes(b"(shard)")
    for channel in (PRIVATE, PUBLIC):  # CEP-12, as a mirror whose upstream serves one has it
        (site / channel / "linux-64" / "run_exports.json").write_text('{"info": {}}')
    files = {
        "repodata": "linux-64/repodata.json",
        "run_exports": "linux-64/run_exports.json",
        "shard": f"linux-64/shards/{shard_name}",
        "package": f"linux-64/{package_of(site, PRIVATE)}",
        "page": "",  # the channel's index.html
    }
    with running:
        url = running.url
        for kind, rel in files.items():
            private = f"{prefix}/{PRIVATE}/{rel}"
            expected_body = (site / PRIVATE / (rel or "index.html")).read_bytes()
            cases: list[tuple[str, str, dict[str, str], int]] = [
                ("no credentials", private, {}, 401),
                ("wrong Bearer", private, bearer(wrong_token(ci)), 401),
                ("wrong path token", f"/t/{wrong_token(ci)}{private}", {}, 401),
                ("wrong Basic", private, basic("ci", wrong_token(ci)), 401),
                ("token of no reader", private, bearer(tokens["outsider"]), 401),
                ("revoked Bearer", private, bearer(tokens["gone"]), 403),
                ("revoked path token", f"{prefix}/t/{tokens['gone']}/{PRIVATE}/{rel}", {}, 403),
                ("revoked Basic", private, basic("gone", tokens["gone"]), 403),
                ("expired Bearer", private, bearer(tokens["old"]), 403),
                ("expired path token", f"/t/{tokens['old']}{private}", {}, 403),
                ("Bearer", private, bearer(ci), 200),
                ("Bearer, direct grant", private, bearer(tokens["alice"]), 200),
                ("path token after the host", f"/t/{ci}{private}", {}, 200),
                ("path token after the prefix", f"{prefix}/t/{ci}/{PRIVATE}/{rel}", {}, 200),
                ("Basic", private, basic("ci", ci), 200),
                # Schemes are case-insensitive (RFC 9110).
                ("bearer in lower case", private, {"Authorization": f"bearer {ci}"}, 200),
                (
                    "BASIC in upper case",
                    private,
                    {"Authorization": basic("ci", ci)["Authorization"].replace("Basic", "BASIC")},
                    200,
                ),
                # A client may send two forms at once (a /t/ URL and a stored Bearer token).
                ("path token and Bearer", f"/t/{ci}{private}", bearer(ci), 200),
                (
                    "path token and another's Bearer",
                    f"/t/{ci}{private}",
                    bearer(tokens["alice"]),
                    200,
                ),
                # HTTP Basic takes any login, whatever base64 alignment it gives the token.
                *[
                    (f"Basic as {login!r}", private, basic(login, ci), 200)
                    for login in BASIC_LOGINS
                ],
                *[
                    (f"wrong Basic as {login!r}", private, basic(login, wrong_token(ci)), 401)
                    for login in BASIC_LOGINS
                ],
                ("revoked Basic as another", private, basic("someone-else", tokens["gone"]), 403),
                ("expired Basic as another", private, basic("a", tokens["old"]), 403),
            ]
            for what, path, headers, status in cases:
                got, response_headers, body = request(url, path, headers)
                assert got == status, f"{server} {kind}: {what}: {got}"
                if status == 401:
                    assert response_headers["www-authenticate"].startswith("Basic "), what
                if status == 200:
                    assert body == expected_body, f"{kind}: {what}"
                else:
                    assert ci.encode() not in body
            # A path token spelled oddly (percent-encoded, dot segments, doubled slashes) is
            # read by the server once decoded; whatever it answers, the log must not show it.
            odd = f"%{ord(ci[0]):02x}{ci[1:]}"
            for path in (
                f"/%74/{ci}{private}",
                f"/%74%2f{ci}{private}",
                f"/t/{odd}{private}",
                f"/t//{ci}{private}",
                f"/t/./{ci}{private}",
                f"/x/../t/{ci}{private}",
                f"{prefix}/%74/{ci}/{PRIVATE}/{rel}",
                f"{prefix}/t/{odd}/{PRIVATE}/{rel}",
                f"{prefix}/{PRIVATE}/../t/{ci}/{PRIVATE}/{rel}",
            ):
                request(url, path)
            # The public channel stays public, with or without a token in the URL.
            public = f"{prefix}/{PUBLIC}/{rel}"
            assert request(url, public)[0] == 200, kind
            assert request(url, f"/t/{ci}{public}")[0] == 200, kind

        # Private state stays denied whatever the path token says.
        (site / ".sitegen").mkdir(exist_ok=True)
        (site / ".sitegen" / "token-test").write_text("private state")
        for path in (
            f"/t/{ci}{prefix}/.sitegen/token-test",
            f"{prefix}/t/{ci}/.sitegen/token-test",
        ):
            status, _, body = request(url, path)
            assert status in (403, 404) and b"private state" not in body, path

        # ~/.netrc: Basic with the token as password (any login), as conda and pixi read it.
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine 127.0.0.1 login someone-else password {ci}\n")
        netrc.chmod(0o600)
        curl = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--netrc-file", str(netrc),
             f"{url}{prefix}/{PRIVATE}/linux-64/repodata.json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert curl.stdout == "200"

        # An authorised request for a missing optional file is a clean 404 (clients fall
        # back); without a token it is still 401: absence tells nothing.
        optionals = ("repodata_shards.msgpack.zst", "current_repodata.json", "run_exports.json.zst")
        for optional in optionals:
            path = f"{prefix}/{PRIVATE}/linux-64/{optional}"
            assert request(url, path, bearer(ci))[0] == 404, optional
            status, _, body = request(url, f"/t/{ci}{path}")
            assert status == 404 and ci.encode() not in body, optional
            assert request(url, path, basic("ci", ci))[0] == 404, optional
            assert request(url, path)[0] == 401, optional

    # The log tells when each token was last used (a 401 or 403 is not a use).
    access_log = running.state_dir / "access.log"
    wait_for_log(access_log)
    listing = token_list(private_site.config_path, access_log)
    assert listing["ci"][-1] != "-" and listing["alice"][-1] != "-"
    assert listing["outsider"][-1] == listing["gone"][-1] == listing["old"][-1] == "-"
    assert_no_token_anywhere(private_site, running.state_dir)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_a_path_token_is_let_in_wherever_conda_puts_it(
    server: str, private_site: PrivateSite, tmp_path: Path
) -> None:
    """conda puts /t/<token>/ between a channel's location and its name: after the host, or
    after /conda for a channel URL given whole whose path starts so, or after the URL a
    channel_alias or custom_channels entry names (``licensed:
    https://host/conda/mirror/t/<token>/internal``). Each place lets the token in, and no
    further than the others: never to private state or the records that name every channel,
    never into a log."""
    require_server(server)
    prefix = "/conda/mirror"
    site = private_site.config.output
    tokens = private_site.tokens
    ci = tokens["ci"]
    ledger = sorted((site / "history" / "runs").glob("*.json"))[0].name
    (site / "stats.json").write_text("{}")
    (site / ".sitegen" / "token-test").write_text("private state")
    rel = "linux-64/repodata.json"
    fn = package_of(site, PULL)
    with fetcher_subprocess(private_site.config_path, tmp_path / "fetcher.log") as address:
        running = webconf_server(
            server,
            private_site.config,
            private_site.root / "state",
            prefix=prefix,
            fetcher=address,
        )
        with running:
            url = running.url
            for place in (
                f"/conda/t/{{}}/mirror/{PRIVATE}/{rel}",  # the whole URL: location host/conda
                f"{prefix}/internal/t/{{}}/licensed/{rel}",  # custom_channels, as above
                f"{prefix}/internal/t/{{}}/pull/linux-64/{fn}",  # fetched, stored
                f"/t/{{}}{prefix}/{PRIVATE}/{rel}",  # pixi, mamba: after the host
                f"{prefix}/t/{{}}/{PRIVATE}/{rel}",  # location: the site's prefix
            ):
                assert request(url, place.format(wrong_token(ci)))[0] == 401, place
                revoked = 403 if PRIVATE in place.replace("/t/{}", "") else 401  # PULL: no reader
                assert request(url, place.format(tokens["gone"]))[0] == revoked, place
                # Apache sends a file the fetcher stored after a redirect to the same URL.
                got = httpx.get(url + place.format(ci), follow_redirects=True)
                assert got.status_code == 200, (place, got.status_code)
                stored = site / (PULL if place.endswith(fn) else PRIVATE) / "linux-64"
                assert got.content == (stored / place.rsplit("/", 1)[1]).read_bytes(), place
            for path in (
                f"/conda/t/{ci}/mirror/.sitegen/token-test",
                f"/conda/t/{ci}/mirror/history/runs/{ledger}",
                f"/conda/t/{ci}/mirror/stats.json",
            ):
                status, _, body = request(url, path)
                assert status in (403, 404) and b"private state" not in body, path
            # A public channel stays public, whatever token stands where.
            assert request(url, f"/conda/t/{ci}/mirror/{PUBLIC}/{rel}")[0] == 200
            assert request(url, f"{prefix}/cloud/t/{ci}/conda-forge/{rel}")[0] == 200
    wait_for_log(running.state_dir / "access.log")
    assert_no_token_anywhere(private_site, running.state_dir)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_rattler_installs_with_its_auth_storage_and_with_a_path_token(
    server: str,
    private_site: PrivateSite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_server(server)
    token = private_site.tokens["ci"]
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    with running:
        channel = f"{running.url}{PREFIX}/{PRIVATE}"
        entries = {
            "bearer": {"BearerToken": token},
            "basic": {"BasicHTTP": {"username": "someone-else", "password": token}},
            # rattler inserts a conda token right after the host, as pixi does.
            "conda-token": {"CondaToken": token},
        }
        for kind, entry in entries.items():
            auth_file = rattler_auth_file(tmp_path / f"auth-{kind}.json", "127.0.0.1", entry)
            monkeypatch.setenv("RATTLER_AUTH_FILE", str(auth_file))
            installed = install_with_auth(channel, ["numpy"], tmp_path / kind)
            assert "numpy" in installed, kind
        monkeypatch.delenv("RATTLER_AUTH_FILE")
        # conda's placement: /t/<token>/ right after the channel location (the prefix).
        with_token = f"{running.url}{PREFIX}/t/{token}/{PRIVATE}"
        installed = install_with_auth(with_token, ["numpy"], tmp_path / "path-token")
        assert "numpy" in installed
        # And without any credential, nothing.
        with pytest.raises(Exception, match="401"):
            install_with_auth(channel, ["numpy"], tmp_path / "anonymous")
    assert_no_token_anywhere(private_site, running.state_dir)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_revocation_takes_effect_with_at_most_a_reload(
    server: str, private_site: PrivateSite, capsys: pytest.CaptureFixture[str]
) -> None:
    require_server(server)
    config_path = private_site.config_path
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    path = f"{PREFIX}/{PRIVATE}/linux-64/repodata.json"
    with running:
        url = running.url
        assert request(url, path, bearer(private_site.tokens["alice"]))[0] == 200
        # nginx reads the map when it reloads: access.reload signals this very server.
        assert running.proc is not None
        text = config_path.read_text().replace(
            "reload: [true]", f"reload: [kill, -HUP, '{running.proc.pid}']"
        )
        config_path.write_text(text)
        # Apache reads the token files per request: no reload at all.
        reload = ["--reload"] if server == "nginx" else []
        assert main(["token", "revoke", "alice", *reload, "-c", str(config_path)]) == 0
        new = token_add(config_path, "bob", "--channel", PRIVATE, *reload)
        assert main(["token", "list", "-c", str(config_path)]) == 0
        listing = capsys.readouterr().out
        assert "alice" in listing and "revoked" in listing and new not in listing
        assert wait_status(url, path, bearer(private_site.tokens["alice"]), 403)
        assert wait_status(url, path, bearer(new), 200)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_files_naming_every_channel_are_not_served(server: str, private_site: PrivateSite) -> None:
    """The run ledger, the filtered-out records and stats.json name private channels' files:
    with a private channel they are not served to anyone; the pages stay public."""
    require_server(server)
    site = private_site.config.output
    ledger = sorted((site / "history" / "runs").glob("*.json"))
    assert ledger, "the mirror run left no run record"
    (site / "stats.json").write_text("{}")
    ci = private_site.tokens["ci"]
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    with running:
        url = running.url
        for path in (f"history/runs/{ledger[0].name}", "stats.json"):
            for headers in ({}, bearer(ci)):
                status = request(url, f"{PREFIX}/{path}", headers)[0]
                assert status in (403, 404), (path, headers, status)
            assert request(url, f"/t/{ci}{PREFIX}/{path}")[0] in (403, 404), path
        assert request(url, f"{PREFIX}/history/index.html")[0] == 200
        assert request(url, f"{PREFIX}/{PUBLIC}/linux-64/repodata.json")[0] == 200


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
