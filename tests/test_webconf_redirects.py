"""``sitegen webconf apache``: a folder asked for without its slash, behind a TLS proxy, run by
real Apache in each form the config takes (the included snippet, its ``<VirtualHost>``, the
standalone config)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sitegen.tools.webconf import WebconfOptions, render_webconf
from testkit.apache import require_server, snippet_server, webconf_server
from testkit.private_site import request
from testkit.webconf import webconf_config

PREFIX = "/anaconda"


@pytest.mark.integration
@pytest.mark.parametrize("form", ["snippet", "virtual-host", "standalone"])
def test_apache_redirects_a_folder_to_its_slash_by_its_path_alone(
    form: str, public_dir: Path
) -> None:
    """Without base_url (nothing tells the config the site's scheme), the redirect of the
    prefix or a folder asked for without its slash names its path alone, the query kept: a
    client behind a TLS proxy (https, a host and port Apache does not listen on) follows it
    to the address it asked for, never to plain http at the host it sent."""
    require_server("apache")
    site = public_dir / "site"
    (site / "cloud" / "example").mkdir(parents=True)
    (site / "index.html").write_text("<p>root</p>")
    (site / "cloud" / "example" / "index.html").write_text("<p>example</p>")
    config = webconf_config(site)
    state = public_dir / "state"
    if form == "standalone":
        running = webconf_server("apache", config, state, prefix=PREFIX)
    else:

        def render(port: int) -> str:
            listen = f"127.0.0.1:{port}" if form == "virtual-host" else None
            return render_webconf("apache", config, WebconfOptions(prefix=PREFIX, listen=listen))

        running = snippet_server(render, state)
    asked = "https://mirror.example"
    proxied = {"Host": "mirror.example", "X-Forwarded-Proto": "https"}
    with running:
        for path, expected in (
            (PREFIX, f"{PREFIX}/"),
            (f"{PREFIX}/cloud/example", f"{PREFIX}/cloud/example/"),
            (f"{PREFIX}/cloud/example?a=1&b=%2F", f"{PREFIX}/cloud/example/?a=1&b=%2F"),
        ):
            status, headers, _ = request(running.url, path, proxied)
            assert status == 301, path
            target = httpx.URL(asked + path).join(headers["location"])
            assert str(target) == asked + expected, (path, headers["location"])
            status, _, body = request(running.url, expected, proxied)
            assert status == 200 and body.startswith(b"<p>"), expected
