"""``sitegen serve``: preview the site on 127.0.0.1, optionally re-rendering on changes.

A stdlib HTTP server in a thread serves the site directory (never ``.sitegen/`` nor temporary
files, no directory listings, as the nginx config does). With ``watch`` the main thread waits for
changes of the templates or of channels.yaml (watchfiles) and renders the pages again; the
repodata itself changes only through ``sitegen mirror``, which renders when it finishes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import watchfiles

from sitegen.config import ConfigError, SiteConfig
from sitegen.store.site import TEMP_PREFIX
from sitegen.web.render import TEMPLATES_DIR, render_site

log = logging.getLogger("sitegen")

QUIET = 0.5  # seconds without a change of the watched files before a render

EXTRA_TYPES = {
    ".conda": "application/octet-stream",
    ".bz2": "application/x-bzip2",
    ".zst": "application/zstd",
    ".json": "application/json",
    ".atom": "application/atom+xml",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}


class ServeError(Exception):
    """The preview server cannot start (e.g. the port is taken)."""


class _Handler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        **EXTRA_TYPES,
    }

    def _hidden(self) -> bool:
        segments = unquote(urlsplit(self.path).path).split("/")
        return any(s.startswith(".") or s.startswith(TEMP_PREFIX) for s in segments if s)

    def send_head(self) -> Any:
        if self._hidden():
            self.send_error(404, "Not found")
            return None
        return super().send_head()

    def list_directory(self, path: Any) -> Any:  # no listings: index.html or 404
        self.send_error(404, "Not found")
        return None

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("serve: %s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    # conda, mamba and pixi open many connections at once; the socketserver default backlog
    # of 5 makes the rest wait a second or more for the kernel to retry their handshake.
    request_queue_size = 128


def make_server(directory: Path, port: int = 8000, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """An HTTP server for ``directory`` bound to ``host:port`` (port 0: any free port)."""
    handler = partial(_Handler, directory=str(directory))
    server = _Server((host, port), handler)
    server.daemon_threads = True
    return server


def watch_and_render(
    load: Callable[[], SiteConfig],
    config_path: Path,
    *,
    templates_dir: Path = TEMPLATES_DIR,
    stop_event: threading.Event | None = None,
    on_render: Callable[[], None] | None = None,
) -> None:
    """Render again whenever a template or ``config_path`` changes, once they have been quiet
    for :data:`QUIET` seconds, until ``stop_event``."""
    config_path = Path(config_path).absolute()
    templates_dir = Path(templates_dir).absolute()
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # we log what changed ourselves
    watched = [templates_dir, config_path.parent]
    watched += [p for p in templates_dir.rglob("*") if p.is_dir()]

    def relevant(path: str) -> bool:
        candidate = Path(path)
        return candidate == config_path or templates_dir in candidate.parents

    changed: set[str] = set()  # relevant paths changed since the last render
    last_change = 0.0
    # Every batch is yielded, filtered here (and an empty one after QUIET seconds without any):
    # other files changing beside channels.yaml (a log written there) must not hold a render
    # back, as they would if watchfiles dropped their batches before we saw them.
    for changes in watchfiles.watch(
        *watched,
        watch_filter=None,
        recursive=False,
        stop_event=stop_event,
        rust_timeout=int(QUIET * 1000),
        yield_on_timeout=True,
    ):
        now = time.monotonic()
        fresh = {p for _c, p in changes if relevant(p)}
        if fresh:
            changed |= fresh
            last_change = now
        if not changed or now - last_change < QUIET:
            continue  # a burst of saves (an editor, a checkout) is one render, once quiet
        names = ", ".join(sorted({Path(p).name for p in changed}))
        changed.clear()
        log.info("changed: %s; rendering", names)
        try:
            render_site(load(), templates_dir=templates_dir)
        except ConfigError as exc:
            log.error("configuration error: %s (pages not rendered)", exc)
        except Exception:
            log.exception("rendering failed")
        if on_render is not None:
            on_render()


def serve(
    load: Callable[[], SiteConfig],
    config_path: Path,
    *,
    port: int = 8000,
    watch: bool = False,
    templates_dir: Path = TEMPLATES_DIR,
) -> None:
    """Render once, then serve the site on 127.0.0.1 until interrupted (Ctrl-C)."""
    config = load()
    render_site(config, templates_dir=templates_dir)
    try:
        server = make_server(config.output, port)
    except OSError as exc:
        raise ServeError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, bound = server.server_address[:2]
    print(f"Serving {config.output} at http://{host}:{bound}/ (Ctrl-C stops)", flush=True)
    stop = threading.Event()
    try:
        if watch:
            watch_and_render(load, config_path, templates_dir=templates_dir, stop_event=stop)
        else:
            stop.wait()
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
