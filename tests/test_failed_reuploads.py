"""A re-upload under a published name whose new bytes cannot be had, through the stages that
follow the downloads: merge, plan, prepare and publish. The published file stays listed as it
was (never deleted with nothing in its place, which the deletion guard, weighing only the
merged listing, would not see), unless its own bytes are no longer what its record says."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from sitegen.conda.records import Repodata, parse_repodata
from sitegen.conda.version import RecordMatcher
from sitegen.config import parse_config
from sitegen.store.origins import load_origins
from sitegen.store.site import Site
from sitegen.sync.download import DownloadOutcome
from sitegen.sync.merge import (
    MERGED,
    DeletionGuard,
    Feed,
    MergedSubdir,
    load_previous,
    merge_subdir,
)
from sitegen.sync.plan import DiskSnapshot, plan_subdir
from sitegen.sync.prepare import filters_list, prepare_all
from sitegen.sync.prune import package_files
from sitegen.sync.publish import PublishOutcome, publish_target
from sitegen.sync.subdir_metadata import SubdirMetadata
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
    return parse_repodata(msgspec.json.encode(document), "linux-64", origin="chan")


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
    feed = Feed("chan", new, new.records)
    previous = load_previous(directory, "linux-64", [feed])
    assert previous is not None
    merged = merge_subdir("chan", "linux-64", [feed], [], previous, DeletionGuard(0.5))
    assert merged is not None and merged.status == MERGED and merged.meta is not None
    snapshot = DiskSnapshot(package_files(directory))
    plan = plan_subdir(merged.meta.records, previous.records, snapshot, (), False)
    assert {r.fn for r in plan.to_stage} == set(new.records)
    downloads = {KEY: DownloadOutcome(failed={r.fn for r in plan.to_stage})}
    outcomes: dict[tuple[str, str], PublishOutcome] = {}
    config = parse_config(
        f"output: {tmp_path}\nchannels: {{chan: {{url: 'http://127.0.0.1:1/c', subdirs: [linux-64]}}}}"
    )
    listable = filters_list(config, config.channels, RecordMatcher())
    prepared = trio.run(prepare_all, site, [merged], downloads, outcomes, listable)
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
    assert {fn: origins.mirror_of(fn) for fn in kept} == dict.fromkeys(kept, "chan")


def test_a_kept_published_file_is_judged_by_the_filters_as_its_replacement(
    tmp_path: Path,
) -> None:
    """The published record stands in for its failed replacement only where the filters would
    list it: p0's replacement is pinned by a lockfile, which the published bytes are not (it
    goes); p1 is pinned by name alone (listed either way); p2 is in no lockfile, its
    replacement pulled in by the dependency closure (it stands in as the replacement did); p3
    was published by a mirror that no longer feeds the subdir (it goes)."""
    old, new = upstream(b"old"), upstream(b"new")
    lock = tmp_path / "explicit.txt"
    base = "https://h/c/linux-64"
    lock.write_text(
        f"@EXPLICIT\n{base}/p0-1-h0_0.conda#sha256:{new.records['p0-1-h0_0.conda'].sha256}\n"
        f"{base}/p1-1-h0_0.conda\n"
    )
    config = parse_config(
        f"output: {tmp_path / 'site'}\n"
        "channels: {chan: {url: 'http://127.0.0.1:1/c', subdirs: [linux-64],"
        f" filters: {{lockfiles: [{lock}]}}}}}}\n"
    )
    previous = Repodata("linux-64", {}, dict(old.records))
    meta = SubdirMetadata("linux-64", dict(new.records))
    merged = MergedSubdir("chan", "linux-64", MERGED, previous, meta)
    standing = {fn: r for fn, r in old.records.items() if not fn.startswith("p3")}
    standing["p3-1-h0_0.conda"] = replace(old.records["p3-1-h0_0.conda"], origin="gone")
    listable = filters_list(config, config.channels, RecordMatcher())
    assert set(listable(merged, standing)) == {"p1-1-h0_0.conda", "p2-1-h0_0.conda"}
