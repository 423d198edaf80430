"""``sitegen serve``: preview the site on 127.0.0.1, optionally re-rendering on changes.

A stdlib HTTP server in a thread serves the site directory (never ``.sitegen/`` nor temporary
files, no directory listings, as the nginx config does). It guards private channels and a
private site as the web servers do: every other local user can reach 127.0.0.1 too. With ``watch`` the main thread waits for
changes of the page templates or of channels.yaml (watchfiles) and renders the pages again; the
repodata itself changes only through ``sitegen mirror``, which renders when it finishes.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote

import watchfiles

from sitegen.access.check import TokenCheck
from sitegen.access.server_files import private_channels
from sitegen.config import ConfigError, SiteConfig
from sitegen.config.urls import redact_url
from sitegen.store.site import TEMP_PREFIX
from sitegen.web.environment import is_page_template, page_template_dirs
from sitegen.web.private import ledger_hides
from sitegen.web.render import TEMPLATES_DIR, render_site

log = logging.getLogger("sitegen")

# conda's path token, wherever a client puts it (after the host, or in the channel's path).
PATH_TOKEN_RE = re.compile(r"/t/[0-9a-f]{12}-[0-9a-f]{40}(?=/)")
# Files for machines that name every channel's files: the run ledger, the records each run
# filtered out, the download statistics (see sitegen.web.private).
RECORDS_RE = re.compile(r"^(?:history/(?:runs|filtered)/|stats\.json$)")
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
    server: _Server
    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        **EXTRA_TYPES,
    }

    def translate_path(self, path: str) -> str:
        return super().translate_path(without_path_token(path))

    def send_head(self) -> Any:
        segments = [s for s in served_path(self.path).split("/") if s]
        if any(s.startswith(".") or s.startswith(TEMP_PREFIX) for s in segments):
            self.send_error(404, "Not found")
            return None
        if self.server.access is not None:
            # The path, token and all, as the fetcher gets it from the web server.
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
            headers.append((b"x-sitegen-uri", self.path.encode("latin-1", "replace")))
            status = refusal(self.server.access, "/".join(segments), headers)
            if status is not None:
                self.send_response(status)
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="conda mirror"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
        return super().send_head()

    def list_directory(self, path: Any) -> Any:  # no listings: index.html or 404
        self.send_error(404, "Not found")
        return None

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("serve: %s %s", self.address_string(), redact_url(format % args))


def without_path_token(target: str) -> str:
    """A request target (still encoded) with its path token taken out: the one place that
    does, for both the file served (:meth:`_Handler.translate_path`) and the path checked
    (:func:`served_path`), so the two cannot come to read different paths."""
    return PATH_TOKEN_RE.sub("", target, count=1)


def served_path(target: str) -> str:
    """The decoded path of a request target, its path token taken out, read as
    :meth:`SimpleHTTPRequestHandler.translate_path` reads it to find the file: what is checked
    is what is served. (urlsplit would read a path left starting with "//", as
    ``/t/<token>//internal/...`` leaves it, as a host and the rest, and check that rest.)"""
    path = without_path_token(target).split("?", 1)[0].split("#", 1)[0]
    return unquote(path, errors="surrogatepass")


def refusal(access: TokenCheck, relpath: str, headers: list[tuple[bytes, bytes]]) -> int | None:
    """None when the request may read the site's file ``relpath``, else the status the web
    servers that ``sitegen webconf`` configures answer it with (see sitegen.tools.webconf):
    a private channel's files take a token of its readers, every file of a private site one
    of the store, and the records naming private channels' files are served to no one."""
    config = access.current()
    if RECORDS_RE.match(relpath) and (private_channels(config) or ledger_hides(config)):
        return 404
    channel = max(
        (c for c in config.channels if relpath == c.path or relpath.startswith(c.path + "/")),
        key=lambda c: len(c.path),
        default=None,
    )
    now = dt.datetime.now(dt.UTC)
    if channel is None:
        return access.site_refusal(headers, now)
    return access.refusal(channel, headers, now)


class _Server(ThreadingHTTPServer):
    # conda, mamba and pixi open many connections at once; the socketserver default backlog
    # of 5 makes the rest wait a second or more for the kernel to retry their handshake.
    request_queue_size = 128
    access: TokenCheck | None = None


def make_server(
    directory: Path,
    port: int = 8000,
    host: str = "127.0.0.1",
    access: TokenCheck | None = None,
) -> ThreadingHTTPServer:
    """An HTTP server for ``directory`` bound to ``host:port`` (port 0: any free port);
    ``access``: the site's token check (None: every file is served to anyone)."""
    handler = partial(_Handler, directory=str(directory))
    server = _Server((host, port), handler)
    server.daemon_threads = True
    server.access = access
    return server


def watch_and_render(
    load: Callable[[], SiteConfig],
    config_path: Path,
    *,
    templates_dir: Path = TEMPLATES_DIR,
    stop_event: threading.Event | None = None,
    on_render: Callable[[], None] | None = None,
    served: Path | None = None,
) -> None:
    """Render again whenever a page template (an asset too) or ``config_path`` changes, once
    they have been quiet for :data:`QUIET` seconds, until ``stop_event``; not for the other
    tools' templates beside them (webconf/), which make no page. ``served``: the site directory the server
    serves; a configuration naming another output is not rendered (nothing would show it)."""
    config_path = Path(config_path).absolute()
    templates_dir = Path(templates_dir).absolute()
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # we log what changed ourselves

    def relevant(path: str) -> bool:
        candidate = Path(path)
        return candidate == config_path or is_page_template(templates_dir, candidate)

    def folder_added(change: watchfiles.Change, path: str) -> bool:
        return change == watchfiles.Change.added and relevant(path) and Path(path).is_dir()

    changed: set[str] = set()  # relevant paths changed since the last render
    last_change = 0.0
    ready = False
    while True:
        # Not recursive: the site may lie beside channels.yaml, and every render writes there.
        # So each folder of the page templates is watched by name, and one made since
        # (assets/fonts/) starts the watch again with it.
        watched = [config_path.parent, *page_template_dirs(templates_dir)]
        # Every batch is yielded, filtered here (and an empty one after QUIET seconds without
        # any): other files changing beside channels.yaml (a log written there) must not hold a
        # render back, as they would if watchfiles dropped their batches before we saw them.
        for changes in watchfiles.watch(
            *watched,
            watch_filter=None,
            recursive=False,
            stop_event=stop_event,
            rust_timeout=int(QUIET * 1000),
            yield_on_timeout=True,
        ):
            if not ready:  # the first batch: the watches are set, a change from now on is seen
                ready = True
                log.info("watching %s and the page templates for changes", config_path.name)
            now = time.monotonic()
            fresh = {p for _c, p in changes if relevant(p)}
            if fresh:
                changed |= fresh
                last_change = now
            if any(folder_added(c, p) for c, p in changes):
                break  # the render waits for quiet as ever, in the next watch
            if not changed or now - last_change < QUIET:
                continue  # a burst of saves (an editor, a checkout) is one render, once quiet
            names = ", ".join(sorted({Path(p).name for p in changed}))
            changed.clear()
            log.info("changed: %s; rendering", names)
            try:
                config = load()
                if served is not None and config.output != served:
                    log.error(
                        "output is now %s, but this server serves %s: restart sitegen serve to"
                        " preview it (pages not rendered)",
                        config.output,
                        served,
                    )
                else:
                    render_site(config, templates_dir=templates_dir)
            except ConfigError as exc:
                log.error("configuration error: %s (pages not rendered)", exc)
            except Exception:
                log.exception("rendering failed")
            if on_render is not None:
                on_render()
        else:
            return  # stop_event: the watch ended


def serve(
    load: Callable[[], SiteConfig],
    config_path: Path,
    *,
    port: int = 8000,
    watch: bool = False,
    templates_dir: Path = TEMPLATES_DIR,
) -> None:
    """Bind the port, render once, then serve the site on 127.0.0.1 until interrupted
    (Ctrl-C). The port comes first: one that is taken fails at once, not after a render that
    may take minutes."""
    config = load()
    try:
        server = make_server(config.output, port, access=TokenCheck(config))
    except OSError as exc:
        raise ServeError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    try:
        # A client connecting meanwhile waits in the listen backlog for the pages.
        render_site(config, templates_dir=templates_dir)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, bound = server.server_address[:2]
        print(f"Serving {config.output} at http://{host}:{bound}/ (Ctrl-C stops)", flush=True)
        stop = threading.Event()
        try:
            if watch:
                watch_and_render(
                    load,
                    config_path,
                    templates_dir=templates_dir,
                    stop_event=stop,
                    served=config.output,
                )
            else:
                stop.wait()
        finally:
            stop.set()
            server.shutdown()  # waits for serve_forever: only once it runs
    finally:
        server.server_close()
