"""A private site on real nginx and Apache and the fetcher: every path answers only to a token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sitegen.cli import main
from sitegen.tools.webconf import PRIVATE_LONG_CACHE
from testkit.access import fetcher_subprocess, install_with_auth, rattler_auth_file
from testkit.apache import require_server, webconf_server
from testkit.private_site import (
    OPEN_PULL,
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
    wait_status,
    wrong_token,
)
from testkit.private_site import private_site as open_private_site
from testkit.upstream import ExampleUpstream


@pytest.fixture
def private_site(example_upstream: ExampleUpstream) -> Iterator[PrivateSite]:
    with open_private_site(example_upstream, site=True) as site:
        yield site


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("prefix", [PREFIX, ""])
def test_every_path_of_a_private_site_answers_only_to_a_token(
    server: str, prefix: str, private_site: PrivateSite
) -> None:
    require_server(server)
    site = private_site.config.output
    tokens = private_site.tokens
    outsider, ci = tokens["outsider"], tokens["ci"]
    (site / PUBLIC / "linux-64" / "current_repodata.json").unlink()  # an optional file
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=prefix
    )
    files = {
        "": "index.html",  # the landing page
        "index.html": "index.html",
        "history/": "history/index.html",
        "history/feed.atom": "history/feed.atom",
        "history/history.json": "history/history.json",
        "assets/style.css": "assets/style.css",
        f"{PUBLIC}/": f"{PUBLIC}/index.html",
        f"{PUBLIC}/linux-64/repodata.json": f"{PUBLIC}/linux-64/repodata.json",
        f"{PUBLIC}/linux-64/{package_of(site, PUBLIC)}": (
            f"{PUBLIC}/linux-64/{package_of(site, PUBLIC)}"
        ),
        f"{PUBLIC}/search.json": f"{PUBLIC}/search.json",
    }
    with running:
        url = running.url
        for rel, stored in files.items():
            body = (site / stored).read_bytes()
            path = f"{prefix}/{rel}"
            head, _, tail = f"{prefix}/{rel}".rpartition(f"/{PUBLIC}/")
            for what, target, headers, status in (
                ("no token", path, {}, 401),
                ("wrong Bearer", path, bearer(wrong_token(outsider)), 401),
                ("wrong path token", f"/t/{wrong_token(outsider)}{path}", {}, 401),
                ("revoked Bearer", path, bearer(tokens["gone"]), 403),
                ("revoked path token", f"{prefix}/t/{tokens['gone']}/{rel}", {}, 403),
                ("expired Basic", path, basic("old", tokens["old"]), 403),
                ("Bearer of no channel", path, bearer(outsider), 200),
                ("Basic of no channel", path, basic("someone", outsider), 200),
                ("path token after the host", f"/t/{outsider}{path}", {}, 200),
                ("path token after the prefix", f"{prefix}/t/{outsider}/{rel}", {}, 200),
                ("a reader's token", path, bearer(ci), 200),
            ):
                got, response_headers, answer = request(url, target, headers)
                assert got == status, f"{server} {rel}: {what}: {got}"
                if status == 401:
                    assert response_headers["www-authenticate"].startswith("Basic "), what
                if status == 200:
                    assert answer == body, f"{rel}: {what}"
                    # For the client's cache only: the request carried a credential.
                    assert response_headers["cache-control"].startswith("private, "), rel
                else:
                    assert body[:200] not in answer or not body, f"{rel}: {what}"
            if head:  # conda's placement inside a channel's path: cloud/t/<token>/conda-forge
                inside = f"{head}/cloud/t/{outsider}/conda-forge/{tail}"
                assert request(url, inside)[0] == 200, inside
        # A private channel still answers only to its readers.
        private = f"{prefix}/{PRIVATE}/linux-64/repodata.json"
        assert request(url, private, bearer(outsider))[0] == 401
        assert request(url, f"/t/{outsider}{private}")[0] == 401
        assert request(url, private, bearer(ci))[0] == 200
        assert request(url, f"{prefix}/t/{ci}/{PRIVATE}/linux-64/repodata.json")[0] == 200
        # A missing optional file: 404 for a token holder (clients fall back), 401 otherwise.
        missing = f"{prefix}/{PUBLIC}/linux-64/current_repodata.json"
        assert request(url, missing, bearer(outsider))[0] == 404
        assert request(url, f"/t/{outsider}{missing}")[0] == 404
        assert request(url, missing)[0] == 401
        # The records naming every channel stay withheld from a reader of the site only.
        (site / "stats.json").write_text("{}")
        assert request(url, f"{prefix}/stats.json", bearer(outsider))[0] in (403, 404)
    access_log = running.state_dir / "access.log"
    wait_for_log(access_log)
    listing = token_list(private_site.config_path, access_log)
    assert listing["outsider"][-1] != "-" and listing["gone"][-1] == "-"
    assert_no_token_anywhere(private_site, running.state_dir)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_the_fetcher_serves_a_public_channel_of_a_private_site_only_behind_a_token(
    server: str, private_site: PrivateSite, tmp_path: Path
) -> None:
    require_server(server)
    site = private_site.config.output
    outsider = private_site.tokens["outsider"]
    fn = package_of(site, OPEN_PULL)
    path = f"{PREFIX}/{OPEN_PULL}/linux-64/{fn}"
    target = site / OPEN_PULL / "linux-64" / fn
    with fetcher_subprocess(private_site.config_path, tmp_path / "fetcher.log") as address:
        running = webconf_server(
            server,
            private_site.config,
            private_site.root / "state",
            prefix=PREFIX,
            fetcher=address,
        )
        with running, httpx.Client(base_url=running.url, follow_redirects=True) as client:
            assert client.get(path).status_code == 401
            assert client.get(path, headers=bearer(private_site.tokens["gone"])).status_code == 403
            assert not target.exists()
            for target_path, headers in (
                (f"/t/{outsider}{path}", {}),  # fetched
                (path, bearer(outsider)),  # stored
                (f"{PREFIX}/t/{outsider}/{OPEN_PULL}/linux-64/{fn}", {}),
            ):
                got = client.get(target_path, headers=headers)
                assert got.status_code == 200, (target_path, got.status_code)
                assert got.content == target.read_bytes()
                assert got.headers.get_list("cache-control") == [PRIVATE_LONG_CACHE]
        # The fetcher itself, reached directly: a live token of the store, whichever.
        direct = f"/{OPEN_PULL}/linux-64/{fn}"
        with httpx.Client(base_url=f"http://{address}") as fetcher:
            for headers, status in (
                ({}, 401),
                (bearer(wrong_token(outsider)), 401),
                (bearer(private_site.tokens["gone"]), 403),
                (bearer(outsider), 200),
                ({"X-Sitegen-Uri": f"/t/{outsider}{PREFIX}{direct}"}, 200),
            ):
                assert fetcher.head(direct, headers=headers).status_code == status, headers
            answer = fetcher.get(direct, headers=bearer(outsider))
            assert answer.headers.get_list("cache-control") == [PRIVATE_LONG_CACHE]
    wait_for_log(running.state_dir / "access.log")
    assert_no_token_anywhere(private_site, running.state_dir)
    assert outsider not in (tmp_path / "fetcher.log").read_text()


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_rattler_installs_from_a_private_site_with_any_token(
    server: str, private_site: PrivateSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_server(server)
    token = private_site.tokens["outsider"]  # reads no private channel: the site only
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    with running:
        channel = f"{running.url}{PREFIX}/{PUBLIC}"
        auth_file = rattler_auth_file(tmp_path / "auth.json", "127.0.0.1", {"CondaToken": token})
        monkeypatch.setenv("RATTLER_AUTH_FILE", str(auth_file))
        assert "numpy" in install_with_auth(channel, ["numpy"], tmp_path / "conda-token")
        monkeypatch.delenv("RATTLER_AUTH_FILE")
        with_token = f"{running.url}{PREFIX}/t/{token}/{PUBLIC}"
        assert "numpy" in install_with_auth(with_token, ["numpy"], tmp_path / "path-token")
        with pytest.raises(Exception, match="401"):
            install_with_auth(channel, ["numpy"], tmp_path / "anonymous")
    assert_no_token_anywhere(private_site, running.state_dir)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_a_token_revoked_loses_the_site_with_at_most_a_reload(
    server: str, private_site: PrivateSite
) -> None:
    require_server(server)
    config_path = private_site.config_path
    outsider = private_site.tokens["outsider"]
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    path = f"{PREFIX}/{PUBLIC}/linux-64/repodata.json"
    with running:
        assert request(running.url, path, bearer(outsider))[0] == 200
        assert running.proc is not None
        text = config_path.read_text().replace(
            "reload: [true]", f"reload: [kill, -HUP, '{running.proc.pid}']"
        )
        config_path.write_text(text)
        reload = ["--reload"] if server == "nginx" else []  # Apache reads its files per request
        assert main(["token", "revoke", "outsider", *reload, "-c", str(config_path)]) == 0
        assert wait_status(running.url, path, bearer(outsider), 403)
        assert wait_status(running.url, f"/t/{outsider}{path}", {}, 403)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("site", [True, False], ids=["private-site", "private-channels"])
def test_a_path_token_never_opens_the_servers_internal_locations(
    server: str, site: bool, example_upstream: ExampleUpstream
) -> None:
    """Served at the root, a path token's place is right after the host: stripping it from
    /t/<anything>/__sitegen_stored/... must not hand the client nginx's internal location for
    the fetcher's stored files, which reaches every file of the site unchecked."""
    require_server(server)
    with open_private_site(example_upstream, site=site) as opened:
        root = opened.config.output
        outsider = opened.tokens["outsider"]
        running = webconf_server(server, opened.config, opened.root / "state", prefix="")
        with running:
            for token, rel in (
                (wrong_token(outsider), "index.html"),
                (wrong_token(outsider), f"{PRIVATE}/linux-64/repodata.json"),
                (outsider, f"{PRIVATE}/linux-64/repodata.json"),  # reads the site only
            ):
                for outcome in ("fetched", "stored"):
                    target = f"/t/{token}/__sitegen_stored/{outcome}/{rel}"
                    got, _, answer = request(running.url, target)
                    assert got in (401, 404), f"{server} {target}: {got}"
                    assert (root / rel).read_bytes()[:200] not in answer


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_a_directory_without_its_slash_answers_only_to_a_token(
    server: str, private_site: PrivateSite
) -> None:
    """The redirect to a directory's slash tells that it exists: a channel's, a subdir's, a
    private channel's name. It is for a token holder only, as a missing path's 404 is, and
    for their own cache only."""
    require_server(server)
    outsider = private_site.tokens["outsider"]
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    with running:
        for rel in ("", PUBLIC, f"{PUBLIC}/linux-64", PRIVATE, "history"):
            path = f"{PREFIX}/{rel}".rstrip("/")
            for what, target, headers in (
                ("no token", path, {}),
                ("wrong token", path, bearer(wrong_token(outsider))),
                ("wrong path token", f"{PREFIX}/t/{wrong_token(outsider)}/{rel}".rstrip("/"), {}),
            ):
                got, response_headers, _ = request(running.url, target, headers)
                assert got == 401, f"{server} {rel}: {what}: {got}"
                assert "location" not in response_headers, f"{rel}: {what}"
            got, response_headers, _ = request(running.url, path, bearer(private_site.tokens["ci"]))
            # Kept a minute, as the directory, by the client only.
            assert (got, response_headers.get("cache-control")) == (301, "private, max-age=60")
