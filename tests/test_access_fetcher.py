"""Private passive channels: the fetcher only behind the web server's token check, answering
dead tokens as the servers do, following channels.yaml's readers and a damaged store."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import httpx
import pytest

from sitegen.access.server_files import AccessPaths, write_server_files
from sitegen.cli import main
from sitegen.config import load_config
from sitegen.tools.webconf import PRIVATE_LONG_CACHE
from testkit.access import fetcher_subprocess
from testkit.apache import require_server, webconf_server
from testkit.faults import slow_drip
from testkit.private_site import (
    PREFIX,
    PULL,
    PrivateSite,
    add_expired,
    assert_no_token_anywhere,
    basic,
    bearer,
    package_of,
    packages_of,
    request,
    token_add,
    wait_status,
    wrong_token,
)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_the_fetcher_serves_a_private_channel_only_behind_the_check(
    server: str, private_site: PrivateSite, tmp_path: Path
) -> None:
    require_server(server)
    site = private_site.config.output
    token = private_site.tokens["ci"]
    fn = package_of(site, PULL)
    path = f"{PREFIX}/{PULL}/linux-64/{fn}"
    target = site / PULL / "linux-64" / fn
    upstream = private_site.upstream.server
    before = len(upstream.requests)  # the active channels' downloads

    def package_requests() -> list[str]:
        return [r.path for r in upstream.requests[before:] if r.path.endswith(fn)]

    with fetcher_subprocess(private_site.config_path, tmp_path / "fetcher.log") as address:
        running = webconf_server(
            server,
            private_site.config,
            private_site.root / "state",
            prefix=PREFIX,
            fetcher=address,
        )
        with running, httpx.Client(base_url=running.url, follow_redirects=True) as client:
            for headers in ({}, bearer(wrong_token(token)), bearer(private_site.tokens["gone"])):
                assert client.get(path, headers=headers).status_code in (401, 403)
                assert client.head(path, headers=headers).status_code in (401, 403)
            assert package_requests() == [] and not target.exists()
            # HEAD is answered without a download, GET fetches, verifies and stores once.
            head = client.head(path, headers=bearer(token))
            assert head.status_code == 200 and package_requests() == []
            # Not stored yet: the fetcher's answer, which no cache may keep as the file's, and
            # which a shared cache may not keep at all, as any answer of a private channel.
            assert head.headers.get_list("cache-control") == ["private, no-cache"]
            got = client.get(f"/t/{token}{path}")
            assert got.status_code == 200
            assert got.content == target.read_bytes() and len(package_requests()) == 1
            # The web server sent the file: nginx through X-Accel-Redirect (the fetcher's
            # own header is gone), Apache after a redirect back to the static URL.
            assert "x-sitegen-fetcher" not in got.headers
            if server == "apache":
                assert [r.status_code for r in got.history] == [302]
                assert str(got.url).endswith(f"/t/{token}{path}")
            again = client.get(path, headers=basic("ci", token))
            assert again.status_code == 200 and len(package_requests()) == 1
            # Fetched now or stored before: for the client's cache only, never a shared one.
            for answer in (got, again):
                assert answer.headers.get_list("cache-control") == [PRIVATE_LONG_CACHE]
            # A file whose download takes its time is streamed as it lands (the fetcher's own
            # answer): for the client's cache only too, and never kept as the file for good,
            # since it could still have been cut off.
            slow = next(name for name in packages_of(site, PULL) if name != fn)
            upstream.add_fault(f"/linux-64/{slow}", slow_drip(chunk=64, interval=0.1), times=1)
            streamed = client.get(f"{PREFIX}/{PULL}/linux-64/{slow}", headers=bearer(token))
            assert streamed.status_code == 200 and streamed.history == []
            assert streamed.headers["x-sitegen-fetcher"] == "fetched"
            assert streamed.headers.get_list("cache-control") == ["private, no-cache"]
            assert streamed.content == (site / PULL / "linux-64" / slow).read_bytes()
            # Whoever sent it, each answer says what the site's static ones say of Referers.
            for answer in (head, got, again, streamed):
                assert answer.headers.get("referrer-policy") == "no-referrer", answer.url
        # The fetcher itself, reached directly (any local user can): private files only for
        # a token that may read the channel.
        direct = f"/{PULL}/linux-64/{fn}"
        tokens = private_site.tokens
        with httpx.Client(base_url=f"http://{address}") as fetcher:
            for headers, status in (
                ({}, 401),
                (bearer(wrong_token(token)), 401),
                (bearer(tokens["gone"]), 401),
                (bearer(tokens["outsider"]), 401),
                ({"X-Sitegen-Token": tokens["old"]}, 401),
                (bearer(token), 200),
                (basic("anyone", token), 200),
                ({"X-Sitegen-Token": token}, 200),
                ({"X-Sitegen-Uri": f"/t/{token}{PREFIX}{direct}"}, 200),
            ):
                assert fetcher.head(direct, headers=headers).status_code == status, headers
            answer = fetcher.get(direct, headers=bearer(token))
            assert answer.headers.get_list("cache-control") == [PRIVATE_LONG_CACHE]
    assert_no_token_anywhere(private_site, running.state_dir)
    assert token not in (tmp_path / "fetcher.log").read_text()


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_the_fetcher_answers_a_dead_token_as_the_web_servers_do(
    server: str, private_site: PrivateSite, tmp_path: Path
) -> None:
    """A reader's token revoked or expired is refused with 403 by the web server and by the
    fetcher reached directly, in every form it may come in; a dead token that never read the
    channel is a wrong one to both: 401, with WWW-Authenticate."""
    require_server(server)
    config = private_site.config
    late = token_add(private_site.config_path, "late", "--channel", PULL)
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["token", "revoke", "late", "-c", str(private_site.config_path)]) == 0
    lapsed = add_expired(config, "lapsed", PULL)
    write_server_files(config)
    expected = {late: 403, lapsed: 403, private_site.tokens["gone"]: 401}
    fn = package_of(config.output, PULL)
    path = f"{PREFIX}/{PULL}/linux-64/{fn}"
    direct = f"/{PULL}/linux-64/{fn}"
    with fetcher_subprocess(private_site.config_path, tmp_path / "fetcher.log") as address:
        running = webconf_server(
            server, config, private_site.root / "state", prefix=PREFIX, fetcher=address
        )
        with (
            running,
            httpx.Client(base_url=running.url) as web,
            httpx.Client(base_url=f"http://{address}") as fetcher,
        ):
            for token, status in expected.items():
                assert web.get(f"/t/{token}{path}").status_code == status
                for headers in (bearer(token), basic("anyone", token)):
                    assert web.get(path, headers=headers).status_code == status
                for headers in (
                    bearer(token),
                    basic("anyone", token),
                    {"X-Sitegen-Token": token},
                    {"X-Sitegen-Uri": f"/t/{token}{path}"},
                ):
                    answer = fetcher.get(direct, headers=headers)
                    assert answer.status_code == status, headers
                    assert ("www-authenticate" in answer.headers) == (status == 401)
    assert not (config.output / PULL / "linux-64" / fn).exists()


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_the_fetcher_follows_the_readers_channels_yaml_names_now(
    server: str, private_site: PrivateSite, tmp_path: Path
) -> None:
    """A run rewrites the web server's token files from channels.yaml's readers and groups;
    the fetcher, running since before the change, reads them from the same file: a reader
    added there gets the passive channel's files not stored yet, and one taken out no longer
    gets them from the fetcher either."""
    require_server(server)
    site = private_site.config.output
    tokens = private_site.tokens
    fn = package_of(site, PULL)
    path = f"{PREFIX}/{PULL}/linux-64/{fn}"
    direct = f"/{PULL}/linux-64/{fn}"
    config_path = private_site.config_path
    text = config_path.read_text()
    block = f"  {PULL}:\n    access: private\n    readers: [team]\n"
    assert block in text

    def readers(names: str) -> None:
        """channels.yaml edited, then what the next run does with the token files."""
        config_path.write_text(text.replace(block, block.replace("[team]", f"[{names}]")))
        write_server_files(load_config(config_path))
        if server == "nginx":
            running.reload()  # access.reload

    with fetcher_subprocess(config_path, tmp_path / "fetcher.log") as address:
        running = webconf_server(
            server, private_site.config, private_site.root / "state", prefix=PREFIX, fetcher=address
        )
        with running, httpx.Client(base_url=f"http://{address}") as fetcher:
            assert request(running.url, path, bearer(tokens["outsider"]))[0] == 401
            readers("team, outsider")
            assert wait_status(running.url, path, bearer(tokens["outsider"]), 200)
            assert (site / PULL / "linux-64" / fn).is_file()
            assert fetcher.head(direct, headers=bearer(tokens["ci"])).status_code == 200
            readers("outsider")
            assert wait_status(running.url, path, bearer(tokens["ci"]), 401)
            assert fetcher.head(direct, headers=bearer(tokens["ci"])).status_code == 401
            assert fetcher.head(direct, headers=bearer(tokens["outsider"])).status_code == 200
            # A file that does not load (an edit half done) leaves the readers read before.
            config_path.write_text(text + "channels: [\n")
            assert fetcher.head(direct, headers=bearer(tokens["outsider"])).status_code == 200
            assert fetcher.head(direct, headers=bearer(tokens["ci"])).status_code == 401
    assert "access settings as read before kept" in (tmp_path / "fetcher.log").read_text()


@pytest.mark.integration
def test_the_fetcher_denies_every_private_request_while_the_store_is_damaged(
    private_site: PrivateSite, tmp_path: Path
) -> None:
    """A tokens.json the fetcher cannot read (here hand-edited into invalid JSON) lets no
    one in: 401, logged with the file's name, and the connection served on; the repaired
    store is read again on the next request."""
    site = private_site.config.output
    token = private_site.tokens["ci"]
    direct = f"/{PULL}/linux-64/{package_of(site, PULL)}"
    store = AccessPaths.of(private_site.config).store
    intact = store.path.read_bytes()
    log = tmp_path / "fetcher.log"
    with (
        fetcher_subprocess(private_site.config_path, log) as address,
        httpx.Client(base_url=f"http://{address}") as fetcher,
    ):
        store.path.write_bytes(intact.rstrip().rstrip(b"}") + b",}")
        for headers in (bearer(token), basic("anyone", token), {"X-Sitegen-Token": token}):
            assert fetcher.head(direct, headers=headers).status_code == 401, headers
        store.path.write_bytes(intact)
        assert fetcher.head(direct, headers=bearer(token)).status_code == 200
    logged = log.read_text()
    assert str(store.path) in logged and "not a token store" in logged
    assert token not in logged
