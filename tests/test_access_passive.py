"""Private passive channels: the fetcher only behind the web server's token check; and the
generated snippets (not standalone) with private channels, checked by the servers themselves."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sitegen.access.server_files import AccessPaths, write_server_files
from sitegen.cli import main
from sitegen.config import load_config
from sitegen.tools.webconf import PRIVATE_LONG_CACHE, WebconfOptions, render_webconf
from testkit.access import fetcher_subprocess
from testkit.apache import (
    ApacheServer,
    apache_binary,
    apache_modules_dir,
    require_server,
    server_user,
    webconf_server,
    world_readable_dir,
)
from testkit.faults import slow_drip
from testkit.nginx import nginx_binary
from testkit.private_site import (
    PREFIX,
    PRIVATE,
    PUBLIC,
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
from testkit.private_site import private_site as open_private_site
from testkit.raw_server import RawServer
from testkit.upstream import ExampleUpstream


@pytest.fixture
def private_site(example_upstream: ExampleUpstream) -> Iterator[PrivateSite]:
    with open_private_site(example_upstream) as site:
        yield site


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


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_snippets_with_private_channels_pass_the_servers_own_check(server: str) -> None:
    """The non-standalone outputs, included the way a sysadmin would include them."""
    require_server(server)
    with world_readable_dir() as root:
        (root / "channels.yaml").write_text(
            textwrap.dedent(f"""\
                output: site
                channels:
                  {PUBLIC}: {{url: https://example.org/a, subdirs: [noarch]}}
                  {PULL}:
                    url: https://example.org/b
                    subdirs: [noarch]
                    mode: passive
                    access: private
                """)
        )
        config = load_config(root / "channels.yaml")
        write_server_files(config)
        state = root / "state"
        state.mkdir()
        user = server_user()
        snippet = state / "sitegen.conf"
        if server == "nginx":
            for prefix in ("", "/conda"):
                options = WebconfOptions(prefix=prefix, listen="127.0.0.1:8080")
                snippet.write_text(render_webconf("nginx", config, options))
                wrapper = state / "nginx.conf"
                wrapper.write_text(
                    (f"user {user.replace(':', ' ')};\n" if user else "")
                    + f"pid {state}/nginx.pid;\nerror_log {state}/error.log;\nevents {{}}\n"
                    f"http {{\n  client_body_temp_path {state}/cb;\n"
                    f"  proxy_temp_path {state}/p;\n  fastcgi_temp_path {state}/f;\n"
                    f"  uwsgi_temp_path {state}/u;\n  scgi_temp_path {state}/s;\n"
                    f"  include {snippet};\n}}\n"
                )
                command = [nginx_binary() or "nginx", "-t", "-p", f"{state}/", "-c", str(wrapper)]
                result = subprocess.run(command, capture_output=True, text=True, check=False)
                assert result.returncode == 0, result.stderr
            return
        modules = apache_modules_dir()
        names = ["mpm_event", "authz_core", "alias", "dir", "mime", "headers", "rewrite"]
        names += ["proxy", "proxy_http", "setenvif"]
        loads = "".join(f"LoadModule {m}_module {modules}/mod_{m}.so\n" for m in names)
        for prefix, listen in (("", None), ("/conda", None), ("/conda", "127.0.0.1:8080")):
            options = WebconfOptions(prefix=prefix, listen=listen)
            snippet.write_text(render_webconf("apache", config, options))
            wrapper = state / "apache.conf"
            wrapper.write_text(
                f"ServerRoot {state}\nServerName localhost\nListen 127.0.0.1:8080\n"
                f"PidFile {state}/a.pid\nErrorLog {state}/error.log\n{loads}"
                f"TypesConfig /dev/null\nInclude {snippet}\n"
            )
            command = [apache_binary() or "apache2", "-t", "-f", str(wrapper)]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            assert result.returncode == 0, result.stderr


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


@pytest.mark.integration
def test_the_apache_snippet_quiets_only_the_sites_own_token_paths(
    private_site: PrivateSite,
) -> None:
    """The snippet without --listen is included at the server's top level, beside whatever
    else the server serves: its quiet error log for paths holding a /t/ segment covers the
    site's own paths (a path token wherever conda puts it: before, in or after the prefix, or
    in a channel's path), never another site's /t/ path, whose errors are logged as usual."""
    require_server("apache")
    token = private_site.tokens["ci"]
    other = private_site.root / "other"
    (other / "t").mkdir(parents=True)
    state = private_site.root / "state"
    state.mkdir()
    snippet = state / "sitegen.conf"
    snippet.write_text(render_webconf("apache", private_site.config, WebconfOptions(prefix=PREFIX)))
    modules = apache_modules_dir()
    names = ["mpm_event", "authz_core", "alias", "dir", "mime", "headers", "rewrite"]
    names += ["proxy", "proxy_http", "setenvif"]
    loads = "".join(f"LoadModule {m}_module {modules}/mod_{m}.so\n" for m in names)
    user = server_user()
    users = "User {}\nGroup {}\n".format(*user.split(":")) if user else ""

    def make_config(port: int) -> str:
        return (
            f"ServerRoot {state}\nServerName localhost\nListen 127.0.0.1:{port}\n"
            f"PidFile {state}/apache2.pid\nErrorLog {state}/error.log\nLogLevel warn\n"
            f"{users}{loads}TypesConfig /dev/null\n"
            f"<Directory />\n  Require all denied\n</Directory>\n"
            f"Alias /other {other}\n<Directory {other}>\n  Require all granted\n</Directory>\n"
            f"Include {snippet}\nCustomLog {state}/access.log sitegen_stats\n"
        )

    # Core logs the path of one it cannot walk: a directory it may not search (AH00035) in the
    # site, a name longer than the filesystem allows (AH00036) elsewhere (the site answers 404
    # for one without walking it).
    site = private_site.config.output
    (site / PRIVATE / "linux-64").chmod(0o700)  # the server's user may not search it
    fn = package_of(site, PRIVATE)
    long_name = "x" * 300
    site_paths = [
        f"/t/{token}{PREFIX}/{PRIVATE}/linux-64/{fn}",
        f"{PREFIX}/t/{token}/{PRIVATE}/linux-64/{fn}",
        f"{PREFIX}/internal/t/{token}/licensed/linux-64/{fn}",
    ]
    running = ApacheServer(make_config, state)
    with running, httpx.Client(base_url=running.url) as client:
        for path in site_paths:
            assert client.get(path).status_code == 403, path
        assert client.get(f"/other/t/{long_name}").status_code == 403
    logged = running.error_log.read_text()
    assert "AH00035" not in logged, logged
    assert logged.count("AH00036") == 1, logged
    assert f"/other/t/{long_name}" in logged
    assert_no_token_anywhere(private_site, state)
