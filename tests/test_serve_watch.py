"""``sitegen serve [--watch]`` as a user runs it: a child process on 127.0.0.1, its config edited
on disk, its answers read over HTTP and its log read as it goes."""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sitegen.access.tokens import new_token
from sitegen.config import load_config
from sitegen.tools.serve import watch_and_render
from sitegen.web.render import TEMPLATES_DIR
from testkit.server_process import terminate

pytestmark = pytest.mark.integration

RENDERING = re.compile(r"changed: .*; rendering")


@dataclass
class Preview:
    """A running ``sitegen serve --watch``: its address and what it has logged so far."""

    proc: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)

    def renders(self) -> int:
        return sum(1 for line in list(self.lines) if RENDERING.search(line))

    def get(self, path: str, token: str | None = None) -> tuple[int, str]:
        request = urllib.request.Request(self.url + path)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    def wait_for(self, pattern: str, timeout: float = 30, since: int = 0) -> bool:
        """Whether a line logged (from the ``since``-th on) matches, waiting for one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(re.search(pattern, line) for line in list(self.lines)[since:]):
                return True
            time.sleep(0.05)
        return False


def config_text(tmp_path: Path, title: str) -> str:
    return (
        f"output: site\ntitle: {title}\nchannels:\n  cloud/x:\n    path: {tmp_path}/folder\n"
        "    subdirs: [linux-64]\n"
    )


def sitegen(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sitegen", *args], cwd=cwd, text=True, capture_output=True
    )


@contextlib.contextmanager
def running(tmp_path: Path, *options: str) -> Iterator[Preview]:
    """``sitegen serve`` of tmp_path/channels.yaml on a free port, stopped on exit."""
    config = tmp_path / "channels.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitegen", "serve", *options, "--port", "0", "-c", str(config)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Preview(proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            server.lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert server.wait_for(r"Serving .* at http://"), server.lines
        served = next(line for line in server.lines if line.startswith("Serving "))
        server.url = re.search(r"(http://\S+)/ ", served).group(1)  # type: ignore[union-attr]
        yield server
    finally:
        terminate(proc, ((signal.SIGTERM, 10),))
        reader.join(10)


@pytest.fixture
def preview(tmp_path: Path) -> Iterator[Preview]:
    (tmp_path / "folder").mkdir()
    (tmp_path / "channels.yaml").write_text(config_text(tmp_path, "First"))
    with running(tmp_path, "--watch") as server:
        # The watcher starts a moment after the server: a change made before it watches is
        # never seen.
        assert server.wait_for(r"watching channels.yaml .* for changes"), server.lines
        yield server


def test_a_burst_of_saves_is_one_render(tmp_path: Path, preview: Preview) -> None:
    """An editor saving several times in a row, or a checkout writing file after file: one
    render once the files are quiet, not one per save."""
    config = tmp_path / "channels.yaml"
    for n in range(10):
        config.write_text(config_text(tmp_path, f"Save {n}"))
        time.sleep(0.15)
    assert preview.wait_for(RENDERING.pattern), preview.lines
    time.sleep(2)  # any further render has started by now
    assert preview.renders() <= 2, preview.lines  # 2: a save delayed on a busy machine
    assert preview.wait_for(r"pages: "), preview.lines
    status, body = preview.get("/")
    assert status == 200 and "Save 9" in body


def test_a_new_output_is_not_rendered_where_nothing_serves_it(
    tmp_path: Path, preview: Preview
) -> None:
    """channels.yaml's output changed under a running preview: no site is made elsewhere that
    the server does not show; it says so and serves on the site it serves."""
    config = tmp_path / "channels.yaml"
    config.write_text(config_text(tmp_path, "Moved").replace("output: site", "output: moved"))
    assert preview.wait_for(r"restart sitegen serve"), preview.lines
    assert not (tmp_path / "moved").exists()
    assert "First" in preview.get("/")[1]
    logged = len(preview.lines)
    config.write_text(config_text(tmp_path, "Back"))
    assert preview.wait_for(r"pages: .* written", since=logged), preview.lines
    assert "Back" in preview.get("/")[1]


def test_private_channels_and_a_private_site_answer_only_to_tokens(tmp_path: Path) -> None:
    """Every local user reaches 127.0.0.1: the preview guards what the web servers guard."""
    (tmp_path / "folder").mkdir()
    config = tmp_path / "channels.yaml"
    body = config_text(tmp_path, "Private") + "    access: private\n"
    config.write_text(body)
    done = sitegen(tmp_path, "mirror", "--no-progress", "-c", str(config))
    assert done.returncode == 0, done.stderr
    added = sitegen(tmp_path, "token", "add", "reader", "--channel", "cloud/x", "-c", str(config))
    other = sitegen(tmp_path, "token", "add", "other", "-c", str(config))
    reader, stranger = added.stdout.strip(), other.stdout.strip()
    assert reader and stranger, added.stderr + other.stderr
    run_record = next((tmp_path / "site" / "history" / "runs").glob("*.json")).name
    repodata = "/cloud/x/linux-64/repodata.json"
    with running(tmp_path, "-v") as server:  # -v: every request logged
        assert server.get(repodata)[0] == 401
        assert server.get("/cloud/x/")[0] == 401
        assert server.get(repodata, stranger)[0] == 401
        assert server.get(repodata, reader)[0] == 200
        assert server.get(f"/t/{reader}{repodata}")[0] == 200
        assert server.get(f"/cloud/t/{reader}/x/linux-64/repodata.json")[0] == 200
        # A path token taken out of the path leaves "//" before the rest: still the channel's
        # path, checked as such, and the token a made-up one.
        assert server.get(f"/t/{new_token()}/{repodata}")[0] == 401
        assert server.get(f"/t/{new_token()}//.sitegen/lock")[0] == 404
        assert server.get(f"/history/runs/{run_record}", reader)[0] == 404
        assert server.get("/")[0] == 200  # the site itself is public
        revoked = sitegen(tmp_path, "token", "revoke", "reader", "-c", str(config))
        assert revoked.returncode == 0, revoked.stderr
        assert server.get(repodata, reader)[0] == 403
        assert not [line for line in server.lines if reader in line]

    config.write_text("access: {site: private}\n" + body)
    with running(tmp_path) as server:
        assert server.get("/")[0] == 401
        assert server.get("/", stranger)[0] == 200
        assert server.get(repodata, stranger)[0] == 401  # still a reader's only


def test_a_port_in_use_is_reported_before_any_render(tmp_path: Path) -> None:
    """The port is bound first: one taken fails at once (exit status 1, saying why), with no
    render done in vain before it (on a large site, minutes)."""
    (tmp_path / "folder").mkdir()
    config = tmp_path / "channels.yaml"
    config.write_text(config_text(tmp_path, "Taken"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = sitegen(tmp_path, "serve", "--port", port, "-c", str(config))
    assert done.returncode == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert not (tmp_path / "site" / "index.html").exists()


@contextlib.contextmanager
def watching(tmp_path: Path, title: str) -> Iterator[tuple[Path, list[int]]]:
    """``watch_and_render`` in a thread on a copy of the templates (tmp_path/templates) and
    tmp_path/channels.yaml: the templates' folder and the renders done so far, one entry
    each; stopped on exit."""
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    (tmp_path / "folder").mkdir()
    config = tmp_path / "channels.yaml"
    config.write_text(config_text(tmp_path, title))
    renders: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch_and_render,
        args=(lambda: load_config(config), config),
        kwargs={
            "templates_dir": templates,
            "stop_event": stop,
            "on_render": lambda: renders.append(1),
        },
        daemon=True,
    )
    # The watcher starts a moment after the thread: a change made before it watches is never
    # seen. It says when it watches.
    ready = threading.Event()
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: ready.set() if "for changes" in record.getMessage() else None
    logger = logging.getLogger("sitegen")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    watcher.start()
    try:
        assert ready.wait(30), "the watcher did not start"
        yield templates, renders
    finally:
        stop.set()
        watcher.join(10)
        logger.removeHandler(handler)
        logger.setLevel(level)


def wait(done: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 15
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)
    return done()


def test_a_folder_added_to_the_templates_is_watched_too(tmp_path: Path) -> None:
    """A folder made under the templates while the preview runs (assets/fonts/): its files are
    watched as the others, and an edit there renders the pages again."""
    served = tmp_path / "site" / "assets" / "fonts" / "extra.css"
    with watching(tmp_path, "Fonts") as (templates, renders):
        (templates / "assets" / "fonts").mkdir()
        assert wait(lambda: len(renders) == 1)  # the new folder is a change itself
        for text in ("b { }", "i { }"):
            (templates / "assets" / "fonts" / "extra.css").write_text(text)
            assert wait(lambda t=text: served.exists() and served.read_text() == t), renders


def test_only_the_page_templates_render_the_pages(tmp_path: Path) -> None:
    """The web server configurations' templates (webconf/) make no page: editing one, adding
    one or a folder beside them renders nothing. A page template's edit still renders."""
    with watching(tmp_path, "Pages") as (templates, renders):
        nginx = templates / "webconf" / "nginx.conf.j2"
        nginx.write_text(nginx.read_text() + "# edited\n")
        (templates / "webconf" / "caddy.conf.j2").write_text("# new\n")
        (templates / "webconf" / "more").mkdir()
        (templates / "webconf" / "more" / "x.j2").write_text("# new\n")
        time.sleep(3)  # six times the quiet time: a render would have started
        assert renders == []
        base = templates / "base.html"
        base.write_text(base.read_text().replace("</body>", "<!-- edited --></body>"))
        assert wait(lambda: len(renders) == 1), renders
        page = tmp_path / "site" / "index.html"
        assert "<!-- edited -->" in page.read_text()
