"""The generated snippets (not standalone) with private channels, checked by the servers
themselves, and Apache's quieting of the site's own token paths."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import pytest

from sitegen.access.pages import TOKEN_PLACEHOLDER
from sitegen.access.server_files import write_server_files
from sitegen.config import load_config
from sitegen.tools.webconf import WebconfOptions, render_webconf
from sitegen.web.render import render_site
from testkit.access import install_with_auth
from testkit.apache import (
    ApacheServer,
    apache_modules_dir,
    check_snippet,
    require_server,
    server_user,
    webconf_server,
    world_readable_dir,
)
from testkit.private_site import (
    PREFIX,
    PRIVATE,
    PUBLIC,
    PULL,
    PrivateSite,
    assert_no_token_anywhere,
    package_of,
)
from testkit.rendered import snippet_text


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
        snippet = state / "sitegen.conf"
        if server == "nginx":
            cases = [("", "127.0.0.1:8080"), ("/conda", "127.0.0.1:8080")]
        else:  # Apache's conf-available snippet as well as a <VirtualHost>
            cases = [("", None), ("/conda", None), ("/conda", "127.0.0.1:8080")]
        for prefix, listen in cases:
            options = WebconfOptions(prefix=prefix, listen=listen)
            snippet.write_text(render_webconf(server, config, options))
            check_snippet(server, snippet, state)


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


def _token_snippet(page: str, channel: str) -> list[str]:
    """The lines of ``channel``'s token snippet on the landing page, as a reader copies them."""
    text = snippet_text(page, f"private channel {channel}: with a token")
    assert text is not None, f"no token snippet for {channel}"
    return text.splitlines()


@pytest.mark.integration
def test_the_token_snippet_of_a_site_on_a_port_authenticates_rattler(
    private_site: PrivateSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site whose base_url names a port: the credentials the landing page says to store,
    by ``pixi auth login`` or in a RATTLER_AUTH_FILE, are keyed as rattler looks them up (by
    the host alone), so the client sends the token and installs from the plain channel URL."""
    require_server("nginx")
    token = private_site.tokens["ci"]
    running = webconf_server(
        "nginx", private_site.config, private_site.root / "state", prefix=PREFIX
    )
    with running:
        text = private_site.config_path.read_text()
        private_site.config_path.write_text(f"base_url: {running.url}{PREFIX}\n{text}")
        render_site(load_config(private_site.config_path))
        lines = _token_snippet((private_site.config.output / "index.html").read_text(), PRIVATE)
        (auth_line,) = [lines[i + 1] for i, line in enumerate(lines) if "RATTLER_AUTH_FILE" in line]
        (login,) = [line.split() for line in lines if line.startswith("pixi auth login ")]
        (channel,) = [line.split(": ", 1)[1] for line in lines if "by its plain URL" in line]
        assert channel == f"{running.url}{PREFIX}/{PRIVATE}"
        entries = json.loads(auth_line.replace(TOKEN_PLACEHOLDER, token))
        # What `pixi auth login HOST --token T` stores: T under HOST, a host with dots as is.
        assert login[4:] == ["--token", TOKEN_PLACEHOLDER] and list(entries) == [login[3]]
        auth_file = tmp_path / "auth.json"
        auth_file.write_text(json.dumps(entries))
        monkeypatch.setenv("RATTLER_AUTH_FILE", str(auth_file))
        assert "numpy" in install_with_auth(channel, ["numpy"], tmp_path / "client")
    assert_no_token_anywhere(private_site, running.state_dir)
