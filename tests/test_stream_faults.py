"""Faults around the files written as streams: a full disk while ``repodata.json.zst`` is
compressed or ``current_repodata.json`` encoded is that subdir's failure (not the run's), and an upstream body staged for the cache
is never left behind, also when the run is stopped right after the parse."""

from __future__ import annotations

import errno
import types
from pathlib import Path
from typing import Any

import pytest
import trio

from sitegen.net.upstream import CacheValidators
from sitegen.net.upstream_cache import UpstreamCache
from sitegen.net.upstream_secrets import UpstreamSecrets
from sitegen.store.pending import PendingFile
from sitegen.store.site import TEMP_PREFIX, Site
from sitegen.sync import fetch
from sitegen.sync.publish import publish_all
from sitegen.sync.subdir_metadata import empty_metadata

pytestmark = pytest.mark.unit


def _temporaries(root: Path) -> list[str]:
    return [p.name for p in root.rglob(f"{TEMP_PREFIX}*")]


@pytest.mark.parametrize("name", ["repodata.json.zst", "current_repodata.json"])
@pytest.mark.parametrize("unnamed", [True, False])
def test_a_full_disk_while_streaming_a_sibling_fails_that_subdir_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool, name: str
) -> None:
    site = Site(tmp_path)
    site.unnamed_files = None if unnamed else False
    real_write = PendingFile.write

    def write(self: PendingFile, data: bytes | memoryview) -> None:
        if self.target.name == name and self.target.parent.name == "noarch":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, data)

    monkeypatch.setattr(PendingFile, "write", write)
    outcomes: dict = {}
    targets = [
        ("ch", empty_metadata(subdir), [], {}, {}, (), []) for subdir in ("noarch", "linux-64")
    ]
    trio.run(publish_all, site, targets, outcomes)
    assert outcomes[("ch", "noarch")].status == "failed"
    assert "No space left" in outcomes[("ch", "noarch")].error
    assert outcomes[("ch", "linux-64")].status == "published"
    assert not (tmp_path / "ch" / "noarch" / "repodata.json").exists()
    assert (tmp_path / "ch" / "linux-64" / "repodata.json.zst").is_file()
    assert _temporaries(tmp_path) == []


def test_a_stop_right_after_the_parse_leaves_no_staged_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = Site(tmp_path)
    site.unnamed_files = False  # named temporaries: one left behind would be seen
    cache = UpstreamCache(site)
    scope = trio.CancelScope()
    real_parse = fetch.parse_repodata

    def parse_then_stop(*args: Any, **kwargs: Any):
        parsed = real_parse(*args, **kwargs)
        trio.from_thread.run_sync(scope.cancel)  # a stop signal, as the parse ends
        return parsed

    monkeypatch.setattr(fetch, "parse_repodata", parse_then_stop)
    key = ("m", "noarch")
    upstream = types.SimpleNamespace(
        mirror=types.SimpleNamespace(name="m"), secrets=UpstreamSecrets({})
    )
    fetched = {key: fetch.FetchResult(fetch.FETCHED, CacheValidators("repodata.json", '"e"'))}
    body = b'{"info":{},"packages":{},"packages.conda":{}}'

    async def run() -> None:
        with scope:
            await fetch.parse_all({"m": upstream}, fetched, {key: body}, cache, {})

    trio.run(run)
    assert scope.cancelled_caught
    assert _temporaries(tmp_path) == []
    assert cache.body(*key) is None  # not kept either


def test_a_parsed_body_is_kept_for_the_next_conditional_request(tmp_path: Path) -> None:
    cache = UpstreamCache(Site(tmp_path))
    key = ("m", "noarch")
    upstream = types.SimpleNamespace(
        mirror=types.SimpleNamespace(name="m"), secrets=UpstreamSecrets({})
    )
    fetched = {key: fetch.FetchResult(fetch.FETCHED, CacheValidators("repodata.json", '"e"'))}
    body = b'{"info":{},"packages":{},"packages.conda":{}}'
    broken = {("m", "linux-64"): b'{"info": '}
    fetched[("m", "linux-64")] = fetch.FetchResult(
        fetch.FETCHED, CacheValidators("repodata.json", '"f"')
    )
    results: dict = {}
    trio.run(fetch.parse_all, {"m": upstream}, fetched, {key: body, **broken}, cache, results)
    assert cache.body(*key) == body
    assert cache.validators(*key) == CacheValidators("repodata.json", '"e"')
    assert results[("m", "linux-64")].repodata is None
    assert cache.body("m", "linux-64") is None  # a body that does not parse is not kept
    assert _temporaries(tmp_path) == []
