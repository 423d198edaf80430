"""``repodata: {bz2: true}``: ``repodata.json.bz2`` is published only on request.

Off (the default), no subdir gets one, and one an earlier run published goes before the next
``repodata.json`` is renamed in; on, it holds exactly ``repodata.json``. (Whole runs and
``verify``: test_repodata_bz2_runs.)
"""

from __future__ import annotations

import bz2
from pathlib import Path

import pytest

from sitegen.conda.records import Record
from sitegen.config import ConfigError, parse_config
from sitegen.layout import METADATA_FILES, REPODATA_BZ2, metadata_files
from sitegen.store.site import Site
from sitegen.sync.publish import publish_subdir
from sitegen.sync.subdir_metadata import SubdirMetadata
from testkit.records import rec

pytestmark = pytest.mark.unit

BODY = "output: site\nchannels:\n  c: {url: 'https://example.org/c', subdirs: [noarch]}\n"


# --------------------------------------------------------------------------- configuration


def test_the_setting_is_off_unless_turned_on() -> None:
    assert parse_config(BODY).repodata_bz2 is False
    assert parse_config("repodata: {bz2: true}\n" + BODY).repodata_bz2 is True
    assert parse_config("repodata: {bz2: false}\n" + BODY).repodata_bz2 is False
    assert parse_config("repodata: {}\n" + BODY).repodata_bz2 is False


@pytest.mark.parametrize(
    ("setting", "line", "message"),
    [
        ("repodata: {bz2: maybe}\n", 1, "repodata.bz2: expected true or false, got 'maybe'"),
        ("repodata: {zst: true}\n", 1, "repodata.zst: unknown key 'zst'; expected one of: bz2"),
        ("repodata: true\n", 1, "repodata: expected a mapping"),
        ("title: t\nrepodata:\n  bz2: [yes]\n", 3, "repodata.bz2: expected a single value"),
    ],
)
def test_a_bad_setting_names_file_line_and_key(setting: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(setting + BODY)
    assert str(info.value).startswith(f"channels.yaml:{line}: {message}"), str(info.value)


def test_the_layout_lists_the_bz2_only_when_on() -> None:
    assert REPODATA_BZ2 not in METADATA_FILES
    assert metadata_files(False) == METADATA_FILES
    assert metadata_files(True) == (
        "repodata.json",
        "repodata.json.zst",
        REPODATA_BZ2,
        "current_repodata.json",
        "repodata_shards.msgpack.zst",
    )


# --------------------------------------------------------------------------- publishing


class RecordingSite(Site):
    """A Site noting each removal and each file written, in order."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.events: list[str] = []

    def remove(self, target: Path) -> bool:
        removed = super().remove(target)
        if removed:
            self.events.append(f"remove {target.name}")
        return removed

    def write_many(self, items: list[tuple[Path, bytes]]) -> list[Path]:
        written = super().write_many(items)
        self.events.extend(p.name for p in written)
        return written


def _records(*names: str) -> dict[str, Record]:
    return {r.fn: r for r in (rec(name) for name in names)}


async def _publish(site: Site, records: dict[str, Record], repodata_bz2: bool) -> list[str]:
    meta = SubdirMetadata("linux-64", records, extra={"repodata_version": 1})
    return await publish_subdir(site, "chan", meta, repodata_bz2=repodata_bz2)


async def test_by_default_no_bz2_is_published(tmp_path: Path) -> None:
    site = Site(tmp_path)
    meta = SubdirMetadata("linux-64", _records("zlib"), extra={"repodata_version": 1})
    written = await publish_subdir(site, "chan", meta)
    assert set(written) == set(METADATA_FILES)
    assert not (tmp_path / "chan" / "linux-64" / REPODATA_BZ2).exists()


async def test_when_on_the_bz2_holds_exactly_repodata_json(tmp_path: Path) -> None:
    site = RecordingSite(tmp_path)
    written = await _publish(site, _records("zlib", "python"), repodata_bz2=True)
    directory = tmp_path / "chan" / "linux-64"
    assert REPODATA_BZ2 in written
    body = (directory / "repodata.json").read_bytes()
    assert bz2.decompress((directory / REPODATA_BZ2).read_bytes()) == body
    # Written before it, like every sibling (then only the publishing marker goes).
    assert [e for e in site.events if not e.startswith("remove ")][-1] == "repodata.json"


async def test_turned_off_the_bz2_goes_before_the_new_repodata_json(tmp_path: Path) -> None:
    site = RecordingSite(tmp_path)
    await _publish(site, _records("zlib"), repodata_bz2=True)
    site.events.clear()
    written = await _publish(site, _records("zlib", "python"), repodata_bz2=False)
    assert not (tmp_path / "chan" / "linux-64" / REPODATA_BZ2).exists()
    assert REPODATA_BZ2 in written and "repodata.json" in written
    assert site.events.index(f"remove {REPODATA_BZ2}") < site.events.index("repodata.json")


async def test_the_setting_alone_changing_publishes_or_withdraws_the_bz2(tmp_path: Path) -> None:
    """Same records, so the same repodata.json: the shortcut for an unchanged subdir must still
    follow the setting."""
    site = Site(tmp_path)
    directory = tmp_path / "chan" / "linux-64"
    records = _records("zlib")
    await _publish(site, records, repodata_bz2=False)
    assert await _publish(site, records, repodata_bz2=False) == []
    body = (directory / "repodata.json").read_bytes()

    assert await _publish(site, records, repodata_bz2=True) == [REPODATA_BZ2]
    assert bz2.decompress((directory / REPODATA_BZ2).read_bytes()) == body
    assert await _publish(site, records, repodata_bz2=True) == []

    assert await _publish(site, records, repodata_bz2=False) == [REPODATA_BZ2]
    assert not (directory / REPODATA_BZ2).exists()
    assert (directory / "repodata.json").read_bytes() == body


def test_the_committed_channels_yaml_documents_the_setting() -> None:
    text = (Path(__file__).parents[1] / "channels.yaml").read_text()
    assert "# repodata: {bz2: true}" in text
    commented = text.replace("# repodata: {bz2: true}", "repodata: {bz2: true}")
    assert parse_config(commented).repodata_bz2 is True
