"""No token in nginx's or Apache's error log, for a directory, a file or a path the server
cannot read, or a fetcher away or breaking off."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import httpx
import pytest

from testkit.access import fetcher_subprocess
from testkit.apache import require_server, webconf_server
from testkit.private_site import (
    PREFIX,
    PRIVATE,
    PUBLIC,
    PULL,
    PrivateSite,
    assert_no_token_anywhere,
    bearer,
    package_of,
    request,
)
from testkit.raw_server import RawServer


@pytest.mark.integration
def test_no_token_in_nginx_error_log_for_a_directory_or_a_fetcher_away(
    private_site: PrivateSite, tmp_path: Path
) -> None:
    """The two errors nginx writes with the request line (path token and all): a directory
    without index.html, and the pull-through fetcher not answering. Neither is logged with the
    token; the clients get a plain 404 and 502."""
    require_server("nginx")
    token = private_site.tokens["ci"]
    site = private_site.config.output
    fn = package_of(site, PULL)
    (site / PULL / "linux-64" / fn).unlink(missing_ok=True)
    nothing = "127.0.0.1:9"  # the discard port: nobody listens there
    running = webconf_server(
        "nginx", private_site.config, private_site.root / "state", prefix=PREFIX, fetcher=nothing
    )
    with running, httpx.Client(base_url=running.url) as client:
        shards = f"/t/{token}{PREFIX}/{PULL}/linux-64/shards/"
        assert client.get(shards).status_code == 404
        package = f"/t/{token}{PREFIX}/{PULL}/linux-64/{fn}"
        assert client.get(package).status_code == 502
    assert_no_token_anywhere(private_site, private_site.root / "state")


@pytest.mark.integration
def test_no_token_in_apache_error_log_when_the_fetcher_breaks_off(
    private_site: PrivateSite,
) -> None:
    """mod_proxy logs a fetcher that breaks off without an answer (restarted, crashed, past
    the proxy timeout) as "Error reading from remote server returned by <path>", path token
    and all: not with the token. The client gets a 502 (or, on a reused connection, none)."""
    require_server("apache")
    token = private_site.tokens["ci"]
    site = private_site.config.output
    fn = package_of(site, PULL)
    (site / PULL / "linux-64" / fn).unlink(missing_ok=True)
    with RawServer("reset") as fetcher:
        address = fetcher.url.removeprefix("http://")
        state = private_site.root / "state"
        running = webconf_server(
            "apache", private_site.config, state, prefix=PREFIX, fetcher=address
        )
        with running:
            for path in (f"/t/{token}{PREFIX}", f"{PREFIX}/t/{token}"):
                status, _headers, _body = request(running.url, f"{path}/{PULL}/linux-64/{fn}")
                assert status == 502
    assert fetcher.connections >= 2
    assert_no_token_anywhere(private_site, state)


@pytest.mark.integration
def test_no_token_in_nginx_error_log_for_a_file_it_cannot_read(
    private_site: PrivateSite, tmp_path: Path
) -> None:
    """A file nginx may not read (mode 000 here; a fetcher run with umask 077 stores its files
    so) is a 403 whose error nginx logs with the request line: under a path token (for a
    private or a public channel) the error is not logged. Asked for without one, it still is,
    for the operator."""
    require_server("nginx")
    token = private_site.tokens["ci"]
    site = private_site.config.output
    unreadable = {channel: package_of(site, channel) for channel in (PRIVATE, PUBLIC)}
    for channel, fn in unreadable.items():
        (site / channel / "linux-64" / fn).chmod(0)
    fetched = package_of(site, PULL)
    (site / PULL / "linux-64" / fetched).unlink(missing_ok=True)
    state = private_site.root / "state"
    with contextlib.ExitStack() as stack:
        old_umask = os.umask(0o077)  # the fetcher's, inherited: it stores files as 0600
        try:
            log = tmp_path / "fetcher.log"
            address = stack.enter_context(fetcher_subprocess(private_site.config_path, log))
        finally:
            os.umask(old_umask)
        running = webconf_server(
            "nginx", private_site.config, state, prefix=PREFIX, fetcher=address
        )
        with running, httpx.Client(base_url=running.url) as client:
            for path in (f"/t/{token}{PREFIX}", f"{PREFIX}/t/{token}"):
                for channel, fn in unreadable.items():
                    assert client.get(f"{path}/{channel}/linux-64/{fn}").status_code == 403
                # Fetched, stored unreadable, then sent by nginx (X-Accel-Redirect): 403.
                assert client.get(f"{path}/{PULL}/linux-64/{fetched}").status_code == 403
            assert (site / PULL / "linux-64" / fetched).stat().st_mode & 0o777 == 0o600
            assert "Permission denied" not in running.error_log.read_text()
            denied = f"{PREFIX}/{PRIVATE}/linux-64/{unreadable[PRIVATE]}"
            assert client.get(denied, headers=bearer(token)).status_code == 403
    assert "Permission denied" in running.error_log.read_text()
    assert_no_token_anywhere(private_site, state)


@pytest.mark.integration
def test_no_token_in_apache_error_log_for_a_path_it_cannot_walk(
    private_site: PrivateSite,
) -> None:
    """Apache's core logs the request's path, path token and all, when it cannot walk it to a
    file: a directory it may not search. Under a path token (for a private or a public
    channel) it is not logged with the token; asked for without one, it still is, for the
    operator. A name longer than the filesystem allows (255 bytes) never reaches that walk:
    it is missing."""
    require_server("apache")
    token = private_site.tokens["ci"]
    site = private_site.config.output
    (site / PUBLIC / "linux-64").chmod(0o700)  # the server's user may not search it
    fn = package_of(site, PRIVATE)
    paths = {f"{PRIVATE}/linux-64/{'x' * 300}.conda": 404, f"{PUBLIC}/linux-64/{fn}": 403}
    state = private_site.root / "state"
    running = webconf_server("apache", private_site.config, state, prefix=PREFIX)
    with running, httpx.Client(base_url=running.url) as client:
        for path in (f"/t/{token}{PREFIX}", f"{PREFIX}/t/{token}"):
            for name, status in paths.items():
                assert client.get(f"{path}/{name}").status_code == status
        for name, status in paths.items():
            assert client.get(f"{PREFIX}/{name}", headers=bearer(token)).status_code == status
    logged = running.error_log.read_text()
    assert logged.count("AH00035") == 1, logged  # search permissions missing
    assert "AH00036" not in logged, logged  # a file name too long
    assert_no_token_anywhere(private_site, state)
