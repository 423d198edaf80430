"""CEP-12 ``run_exports.json``: the copy a mirror keeps of upstream's, to ask for it
conditionally the next run; a copy that cannot be forgotten, one damaged or kept by an earlier
sitegen without its sha256."""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from sitegen.config import SiteConfig
from sitegen.layout import upstream_run_exports_dir, upstream_validators_path
from sitegen.net.upstream_cache import UpstreamCache
from testkit.run_exports import (
    KEPT,
    exports_config,
    mirror_once,
    published_exports,
    serve_exports,
    upstream_document,
    withdraw_exports,
)
from testkit.upstream import UpstreamServer


@pytest.mark.integration
async def test_a_second_run_asks_conditionally_and_keeps_it(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    root, server = small_upstream
    serve_exports(root, upstream_document(), zst=True)
    config = exports_config(tmp_path, server.url)
    await mirror_once(config)
    # Kept where layout says, beside the validators to ask again with.
    (mirror,) = config.channels[0].mirrors
    cache = upstream_run_exports_dir(config.output, mirror.name, "linux-64")
    kept = json.loads(upstream_validators_path(cache).read_bytes())["variant"]
    assert kept == "run_exports.json.zst" and (cache / kept).is_file()
    server.reset()
    await mirror_once(config)
    asked = [r for r in server.requests if r.path == "/linux-64/run_exports.json.zst"]
    assert [r.status for r in asked] == [304]
    assert published_exports(config) == KEPT


@pytest.mark.integration
async def test_a_copy_that_cannot_be_forgotten_costs_a_warning_not_the_run(
    small_upstream: tuple[Path, UpstreamServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Upstream stops serving it and the copy kept cannot be forgotten (an I/O error): the
    subdir is published without it, with a warning; the run goes on."""
    root, server = small_upstream
    serve_exports(root, upstream_document(), zst=True)
    config = exports_config(tmp_path, server.url)
    await mirror_once(config)
    withdraw_exports(root)

    def failing(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(UpstreamCache, "forget", failing)
    await mirror_once(config)
    assert published_exports(config) is None
    assert "could not forget upstream run_exports.json" in caplog.text


def _as_earlier_sitegen_kept_it(config: SiteConfig, variant: str) -> tuple[Path, bytes]:
    """The copy kept cut short, its validators without the sha256 of the body they describe
    (an earlier sitegen recorded none): only its parse, after a 304, tells it is damaged.
    The folder of the copy and the body it held, sound."""
    (mirror,) = config.channels[0].mirrors
    cache = upstream_run_exports_dir(config.output, mirror.name, "linux-64")
    validators = upstream_validators_path(cache)
    document = json.loads(validators.read_bytes())
    assert document.pop("sha256") and document["variant"] == variant
    validators.write_text(json.dumps(document))
    good = (cache / variant).read_bytes()
    (cache / variant).write_bytes(good[: len(good) // 2])
    return cache, good


def _asked(server: UpstreamServer, variant: str) -> list[tuple[int, str | None]]:
    path = f"/linux-64/{variant}"
    return [(r.status, r.header("if-none-match")) for r in server.requests if r.path == path]


@pytest.mark.integration
@pytest.mark.parametrize("variant", ["run_exports.json.zst", "run_exports.json"])
async def test_a_damaged_copy_kept_without_its_sha256_is_fetched_whole_again(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path, variant: str
) -> None:
    """Upstream answers 304 and the copy does not parse: it is forgotten and the document
    fetched whole once more in the same run, published and kept sound; the next run asks
    conditionally again."""
    root, server = small_upstream
    serve_exports(root, upstream_document(), zst=variant.endswith(".zst"), plain=True)
    config = exports_config(tmp_path, server.url)
    first = await mirror_once(config)
    cache, good = _as_earlier_sitegen_kept_it(config, variant)
    etag = f'"{hashlib.sha256((root / "linux-64" / variant).read_bytes()).hexdigest()}"'
    server.reset()

    report = await mirror_once(config)
    assert _asked(server, variant) == [(304, etag), (200, None)]
    assert published_exports(config) == KEPT
    assert report.mirrors[0].warnings == first.mirrors[0].warnings  # the unsound entry's
    assert (cache / variant).read_bytes() == good
    recorded = json.loads(upstream_validators_path(cache).read_bytes())["sha256"]
    assert recorded == hashlib.sha256(good).hexdigest()

    server.reset()
    await mirror_once(config)
    assert _asked(server, variant) == [(304, etag)]
    assert published_exports(config) == KEPT


@pytest.mark.integration
async def test_a_copy_kept_without_its_sha256_gets_it_once_it_parses(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    """A sound copy an earlier sitegen kept without its sha256, found current by upstream,
    parses: its sha256 is recorded then, so damage to it is told when it is read back."""
    root, server = small_upstream
    variant = "run_exports.json.zst"
    serve_exports(root, upstream_document(), zst=True)
    config = exports_config(tmp_path, server.url)
    await mirror_once(config)
    (mirror,) = config.channels[0].mirrors
    cache = upstream_run_exports_dir(config.output, mirror.name, "linux-64")
    validators = upstream_validators_path(cache)
    document = json.loads(validators.read_bytes())
    recorded = document.pop("sha256")
    validators.write_text(json.dumps(document))
    server.reset()

    await mirror_once(config)
    etag = f'"{hashlib.sha256((root / "linux-64" / variant).read_bytes()).hexdigest()}"'
    assert _asked(server, variant) == [(304, etag)]
    assert json.loads(validators.read_bytes()) == {**document, "sha256": recorded}
    assert published_exports(config) == KEPT


@pytest.mark.integration
async def test_a_bad_body_fetched_in_place_of_a_damaged_copy_is_asked_for_once(
    small_upstream: tuple[Path, UpstreamServer], tmp_path: Path
) -> None:
    """Upstream's own body, fetched whole, does not parse either: the subdir is published
    without it, with one warning, after that one request (never a loop)."""
    root, server = small_upstream
    variant = "run_exports.json"
    serve_exports(root, upstream_document(), zst=False)
    config = exports_config(tmp_path, server.url)
    await mirror_once(config)
    _as_earlier_sitegen_kept_it(config, variant)

    def bad_unless_conditional(handler: Any) -> bool | None:
        if handler.headers.get("If-None-Match"):
            return False  # served as the file is: 304
        handler.respond(200, b"<html>502</html>", {})
        return None

    server.add_fault(f"/linux-64/{variant}", bad_unless_conditional)
    server.reset()
    report = await mirror_once(config)
    assert [status for status, _tag in _asked(server, variant)] == [304, 200]
    assert published_exports(config) is None
    (warning,) = report.mirrors[0].warnings
    assert warning.startswith(f"linux-64: {variant}: ") and "published without it" in warning
