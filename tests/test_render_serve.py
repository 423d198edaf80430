"""The preview server (``sitegen serve``) and rendering again on a change of channels.yaml."""

from __future__ import annotations

import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitegen.access.tokens import new_token
from sitegen.cli import main
from sitegen.tools.serve import make_server, watch_and_render
from testkit.burst import burst
from testkit.rendered import CHANNELS, page_text
from testkit.upstream import ExampleUpstream

pytestmark = pytest.mark.integration


@pytest.fixture
def preview(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    site = tmp_path / "site"
    (site / ".sitegen").mkdir(parents=True)
    (site / ".sitegen" / "secret.json").write_text("{}")
    (site / "index.html").write_text("<!doctype html><p>hello</p>")
    (site / "history" / "runs").mkdir(parents=True)
    (site / "history" / "runs" / "x.json").write_text("{}")
    (site / "pkg.conda").write_bytes(b"PK")
    server = make_server(site, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", site
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, b"", ""


def test_preview_server_takes_a_burst_of_connections_at_once(preview: tuple[str, Path]) -> None:
    """conda, mamba and pixi open many connections at once; none waits on a short backlog."""
    port = int(preview[0].rpartition(":")[2])
    with burst(port, 64) as (_sockets, waiting):
        assert waiting == 0


def test_preview_server_serves_pages_but_not_private_state(preview: tuple[str, Path]) -> None:
    url, _site = preview
    status, body, ctype = get(url + "/")
    assert status == 200 and b"hello" in body and ctype.startswith("text/html")
    assert get(url + "/history/runs/x.json")[0] == 200
    assert get(url + "/pkg.conda")[2] == "application/octet-stream"
    assert get(url + "/.sitegen/secret.json")[0] == 404
    assert get(url + "/%2Esitegen/secret.json")[0] == 404
    # A path token taken out of the path leaves "//" before the rest, which is checked all the
    # same: any token-shaped string would do.
    assert get(url + f"/t/{new_token()}//.sitegen/secret.json")[0] == 404
    assert get(url + "/history/runs/")[0] == 404  # no directory listings


def test_watch_renders_again_when_the_config_changes(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    site = tmp_path / "site"
    config_path = tmp_path / "channels.yaml"
    text = f"output: {site}\ntitle: First title\n" + textwrap.dedent(
        CHANNELS.format(url=example_upstream.url)
    )
    config_path.write_text(text)
    assert main(["render", "-c", str(config_path)]) == 0
    assert "First title" in page_text(site, "index.html")

    from sitegen.config import load_config

    stop = threading.Event()
    rendered = threading.Event()
    thread = threading.Thread(
        target=watch_and_render,
        args=(lambda: load_config(config_path), config_path),
        kwargs={"stop_event": stop, "on_render": rendered.set},
        daemon=True,
    )
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not rendered.is_set() and time.monotonic() < deadline:
            config_path.write_text(text.replace("First title", "Second title"))
            rendered.wait(2)  # the watcher may start a moment after the thread; renders once quiet
        assert rendered.is_set(), "no render after channels.yaml changed"
        assert "Second title" in page_text(site, "index.html")
    finally:
        stop.set()
        thread.join(10)
