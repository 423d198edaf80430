"""The origins map and kept records of a subdir being published (sitegen.sync.publish_state):
written for the previous state and the new one until the new ``repodata.json`` is in, then for
exactly the new one; a publication that fails leaves them describing what is still served."""

from __future__ import annotations

import errno
import hashlib
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from sitegen.conda.records import Record, parse_repodata
from sitegen.config import ChannelConfig, FilterSpec, MirrorConfig
from sitegen.passive.mirror_fetch import mirror_of
from sitegen.store.origins import load_origins
from sitegen.store.site import Site
from sitegen.sync import publish as publish_module
from sitegen.sync.keep import read_kept
from sitegen.sync.publish import PublishOutcome, publish_all
from sitegen.sync.publish_state import narrow_state, widen_state
from sitegen.sync.subdir_metadata import SubdirMetadata
from sitegen.tools.verify_kept import kept_problems
from sitegen.tools.verify_sample import Checked
from testkit.records import raw_record

pytestmark = pytest.mark.unit

KEY = ("chan", "linux-64")


def raw(name: str) -> dict[str, Any]:
    return raw_record(name, "1", "h0_0", sha256=hashlib.sha256(name.encode()).hexdigest())


def records(**origins: str) -> dict[str, Record]:
    """name -> mirror: a record of ``<name>-1-h0_0.conda`` from that mirror for each."""
    document = {
        "info": {"subdir": "linux-64"},
        "packages.conda": {f"{n}-1-h0_0.conda": raw(n) for n in origins},
    }
    parsed = parse_repodata(msgspec.json.encode(document), "linux-64").records
    for record in parsed.values():
        record.origin = origins[record.name]
    return parsed


def publish(site: Site, meta_records: dict[str, Record], **bases: str) -> PublishOutcome:
    """Publish ``meta_records`` over what the subdir publishes now, as a run does."""
    outcomes: dict[tuple[str, str], PublishOutcome] = {}
    meta = SubdirMetadata("linux-64", meta_records, extra={"repodata_version": 1})
    try:
        served = site.path(*KEY, "repodata.json").read_bytes()
        listed = set(parse_repodata(served, "linux-64").records)
    except FileNotFoundError:
        listed = set()
    target = ("chan", meta, [], dict(bases), {}, listed, [])
    trio.run(partial(publish_all, site, [target], outcomes))
    return outcomes[KEY]


def test_a_failed_publication_keeps_the_origins_of_what_is_still_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = Site(tmp_path)
    assert publish(site, records(a="m1", b="m2"), m2="https://m2/").status == "published"

    # Next run: m2 no longer offers b; the disk fills up while the metadata is written.
    async def full_disk(*args: object, **kwargs: object) -> list[str]:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(publish_module, "publish_subdir", full_disk)
        assert publish(site, records(a="m1")).status == "failed"
    served = parse_repodata(site.path(*KEY, "repodata.json").read_bytes(), "linux-64")
    assert set(served.records) == {"a-1-h0_0.conda", "b-1-h0_0.conda"}
    origins = load_origins(site, *KEY)
    assert origins.files == {"a-1-h0_0.conda": "m1", "b-1-h0_0.conda": "m2"}
    assert origins.base_url_of("m2") == "https://m2/"
    # The pull-through fetcher of the channel still knows where b comes from.
    channel = ChannelConfig(
        path="chan",
        filters=FilterSpec(),
        mirrors=(
            MirrorConfig(name="m1", url="https://x/m1", subdirs=("linux-64",)),
            MirrorConfig(name="m2", url="https://x/m2", subdirs=("linux-64",)),
        ),
    )
    found = mirror_of(channel, origins, "b-1-h0_0.conda")
    assert found is not None and found.name == "m2"

    # Published, the map says exactly what is published.
    assert publish(site, records(a="m1")).status == "published"
    origins = load_origins(site, *KEY)
    assert (origins.files, origins.package_bases) == ({"a-1-h0_0.conda": "m1"}, {})


def test_the_state_is_widened_before_publishing_and_narrowed_after(tmp_path: Path) -> None:
    site = Site(tmp_path)
    before = records(a="m1", b="m1", c="m1")
    kept_before = {"k-1-h0_0.conda": Record("k-1-h0_0.conda", "linux-64", raw("k"), "m1")}
    narrow_state(site, *KEY, before, {"m1": "https://m1/"}, kept_before)
    # c moves from m1 to m2, b goes, d arrives; k is no longer kept, b is from now on.
    after = records(a="m1", c="m2", d="m2")
    kept_after = {"b-1-h0_0.conda": before["b-1-h0_0.conda"]}
    assert widen_state(site, *KEY, after, {"m2": "https://m2/"}, kept_after, before.keys())
    # What a kill before repodata.json is renamed in leaves: both states described (b with
    # where m1 serves it from), the new mirror where both name a file.
    origins = load_origins(site, *KEY)
    assert origins.files == {
        "a-1-h0_0.conda": "m1",
        "b-1-h0_0.conda": "m1",
        "c-1-h0_0.conda": "m2",
        "d-1-h0_0.conda": "m2",
    }
    assert origins.package_bases == {"m1": "https://m1/", "m2": "https://m2/"}
    assert set(read_kept(tmp_path, *KEY) or {}) == {"k-1-h0_0.conda", "b-1-h0_0.conda"}
    narrow_state(site, *KEY, after, {"m2": "https://m2/"}, kept_after)
    origins = load_origins(site, *KEY)
    assert origins.files == {"a-1-h0_0.conda": "m1", "c-1-h0_0.conda": "m2", "d-1-h0_0.conda": "m2"}
    assert origins.package_bases == {"m2": "https://m2/"}
    assert set(read_kept(tmp_path, *KEY) or {}) == {"b-1-h0_0.conda"}
    # Nothing the new state lacks: widening writes it exactly, and nothing follows.
    assert not widen_state(site, *KEY, after, {"m2": "https://m2/"}, kept_after, after.keys())


def test_a_file_listed_again_is_not_kept_while_the_states_are_widened(tmp_path: Path) -> None:
    """Upstream lists a kept file again, with other bytes; the run publishes it, and the
    narrowing after never comes (a full disk, a kill): `verify --repair` must not judge the
    listed file by its old kept record (and delete it), nor count it twice."""
    site = Site(tmp_path)
    directory = site.path(*KEY)
    directory.mkdir(parents=True)
    (kept,) = records(a="m1").values()
    narrow_state(site, *KEY, {}, {}, {kept.fn: kept})  # an earlier run kept a
    listed = records(a="m1")
    listed[kept.fn].raw["sha256"] = hashlib.sha256(b"new bytes").hexdigest()
    listed[kept.fn].raw["size"] = len(b"new bytes")
    (directory / kept.fn).write_bytes(b"new bytes")
    widen_state(site, *KEY, listed, {}, {}, [])
    assert read_kept(site.root, *KEY) == {}
    channel = ChannelConfig(
        path=KEY[0],
        filters=FilterSpec(),
        keep_removed=True,
        mirrors=(MirrorConfig(name="m1", url="https://x/m1", subdirs=(KEY[1],)),),
    )
    checked = Checked()
    assert kept_problems(site, channel, KEY[1], checked, repair=True) == []
    assert (directory / kept.fn).read_bytes() == b"new bytes"
