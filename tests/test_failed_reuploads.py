"""A re-upload under a published name whose new bytes cannot be had, through the stages that
follow the downloads: merge, plan, prepare and publish. The published file stays listed as it
was (never deleted with nothing in its place, which the deletion guard, weighing only the
merged listing, would not see), unless its own bytes are no longer what its record says."""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from sitegen.conda.records import Repodata, parse_repodata
from sitegen.store.origins import load_origins
from sitegen.store.site import Site
from sitegen.sync.download import DownloadOutcome
from sitegen.sync.merge import MERGED, DeletionGuard, Feed, load_previous, merge_subdir
from sitegen.sync.plan import DiskSnapshot, plan_subdir
from sitegen.sync.prepare import prepare_all
from sitegen.sync.prune import package_files
from sitegen.sync.publish import PublishOutcome, SubdirMetadata, publish_target
from testkit.records import raw_record

pytestmark = pytest.mark.unit

NAMES = [f"p{i}" for i in range(4)]
KEY = ("chan", "linux-64")


def raw(name: str, body: bytes) -> dict[str, Any]:
    return raw_record(name, "1", "h0_0", sha256=hashlib.sha256(body).hexdigest(), size=len(body))


def upstream(body: bytes) -> Repodata:
    document = {
        "info": {"subdir": "linux-64"},
        "packages.conda": {f"{n}-1-h0_0.conda": raw(n, body) for n in NAMES},
    }
    return parse_repodata(msgspec.json.encode(document), "linux-64", origin="m")


def test_failed_replacements_keep_their_published_files(tmp_path: Path) -> None:
    site = Site(tmp_path)
    directory = site.path(*KEY)
    old = upstream(b"old")
    directory.mkdir(parents=True)
    for fn in old.records:
        (directory / fn).write_bytes(b"old")
    meta = SubdirMetadata("linux-64", dict(old.records), extra={"repodata_version": 1})
    trio.run(partial(publish_target, site, "chan", meta, [], {}, kept={}, listed=()))
    damaged = "p3-1-h0_0.conda"
    (directory / damaged).write_bytes(b"odd")  # its published bytes are gone: nothing to keep

    # Upstream re-uploads every file under its name (same size); no new bytes can be had.
    new = upstream(b"new")
    feed = Feed("m", new, new.records)
    previous = load_previous(directory, "linux-64", [feed])
    assert previous is not None
    merged = merge_subdir("chan", "linux-64", [feed], [], previous, DeletionGuard(0.5))
    assert merged is not None and merged.status == MERGED and merged.meta is not None
    snapshot = DiskSnapshot(package_files(directory))
    plan = plan_subdir(merged.meta.records, previous.records, snapshot, (), False)
    assert {r.fn for r in plan.to_stage} == set(new.records)
    downloads = {KEY: DownloadOutcome(failed={r.fn for r in plan.to_stage})}
    outcomes: dict[tuple[str, str], PublishOutcome] = {}
    prepared, _sharded = trio.run(prepare_all, site, [merged], downloads, outcomes)
    assert outcomes == {}
    final = prepared[KEY]
    listed = previous.records.keys()
    trio.run(partial(publish_target, site, "chan", final, [], {}, kept={}, listed=listed))

    kept = set(old.records) - {damaged}
    assert set(final.records) == kept
    assert all(final.records[fn].sha256 == old.records[fn].sha256 for fn in kept)
    assert package_files(directory) == dict.fromkeys(kept, 3)
    assert all((directory / fn).read_bytes() == b"old" for fn in kept)
    published = parse_repodata((directory / "repodata.json").read_bytes(), "linux-64")
    assert {fn: r.sha256 for fn, r in published.records.items()} == {
        fn: old.records[fn].sha256 for fn in kept
    }
    origins = load_origins(site, *KEY)
    assert {fn: origins.mirror_of(fn) for fn in kept} == dict.fromkeys(kept, "m")
