"""An OSV zip archive read safely: bombs, names that climb out, members no advisories, damage."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from sitegen.filters.osv_archive import ArchiveError, ArchiveLimits, read_archive
from testkit.advisories import write_feed, zlib_advisory

pytestmark = pytest.mark.unit


def zip_of(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def advisory(n: int) -> bytes:
    return json.dumps({**zlib_advisory(), "id": f"TEST-{n}"}).encode()


def test_json_members_are_advisories_and_the_rest_is_passed_over(tmp_path):
    archive = zip_of(
        tmp_path / "all.zip",
        {
            "TEST-1.json": advisory(1),
            "nested/TEST-2.JSON": json.dumps([json.loads(advisory(2))]).encode(),
            "README.md": b"\x00\xff not an advisory",
            "nested/": b"",
            "LICENSE": b"Apache-2.0",
        },
    )
    found = read_archive(archive)
    assert [a.id for a in found] == ["TEST-1", "TEST-2"]
    assert found[0].affected[0].name == "zlib" and found[0].score == 9.8


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../escape.json", "climbs out"),
        ("a/../../escape.json", "climbs out"),
        ("/etc/cron.d/x.json", "absolute"),
        ("C:/x.json", "absolute"),
        ("a\\..\\x.json", "backslash"),
        ("new\nline.json", "control characters"),
        ("esc\x1b[31m.json", "control characters"),
    ],
)
def test_a_member_name_that_climbs_out_refuses_the_archive(tmp_path, name, why):
    archive = zip_of(tmp_path / "all.zip", {"TEST-1.json": advisory(1), name: advisory(2)})
    with pytest.raises(ArchiveError, match="unsafe member name") as caught:
        read_archive(archive)
    assert why in str(caught.value)
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)  # quoted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.zip"]  # nothing extracted


def test_a_member_past_its_cap_is_refused_unread_or_as_it_decompresses(tmp_path):
    # 17 MiB of zeros deflate to a few kilobytes: a bomb by ratio, stopped at the 16 MiB cap.
    bomb = zip_of(tmp_path / "bomb.zip", {"TEST-1.json": advisory(1), "big.json": bytes(17 << 20)})
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ArchiveError, match=r"'big\.json' is larger than 16 MiB"):
        read_archive(bomb)
    # A header stating less than the member holds: zipfile reads no more than it states, and
    # the checksum of that much does not match.
    liar = tmp_path / "liar.zip"
    data = bytearray(zip_of(liar, {"TEST-1.json": advisory(1) + b" " * 4000}).read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.infolist()[0]
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")  # uncompressed size
    local = info.header_offset
    data[local + 22 : local + 26] = (100).to_bytes(4, "little")
    liar.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="not a readable zip archive"):
        read_archive(liar)


def test_member_count_and_total_size_are_capped(tmp_path):
    many = zip_of(tmp_path / "many.zip", {f"TEST-{n}.json": advisory(n) for n in range(30)})
    assert len(read_archive(many)) == 30
    with pytest.raises(ArchiveError, match="more than 20 members"):
        read_archive(many, ArchiveLimits(members=20))
    size = len(advisory(1))
    with pytest.raises(ArchiveError, match="decompress to more than"):
        read_archive(many, ArchiveLimits(total_bytes=size * 10))
    # A zip directory far larger than the members allowed need is refused before it is parsed.
    entries = zip_of(tmp_path / "entries.zip", {f"{n}.txt": b"" for n in range(2000)})
    with pytest.raises(ArchiveError, match="zip directory is larger than"):
        read_archive(entries, ArchiveLimits(directory_bytes=1000, member_bytes=500))


def test_the_versions_and_events_the_advisories_keep_are_capped(tmp_path):
    """What an advisory keeps of a member (its listed versions and range events) takes ten
    times the member's bytes in memory: a member of ``"1",`` repeated deflates a thousandfold,
    so the decompressed cap alone let an archive of a few megabytes hold tens of gigabytes."""
    listed = {**zlib_advisory(), "id": "TEST-LISTED"}
    listed["affected"] = [{**listed["affected"][0], "versions": ["1"] * 3000}]
    archive = zip_of(
        tmp_path / "all.zip", {"TEST-1.json": advisory(1), "L.json": json.dumps(listed).encode()}
    )
    assert archive.stat().st_size < 5000
    assert len(read_archive(archive, ArchiveLimits(versions=3004))) == 2  # 3000 + 2 + 2 events
    with pytest.raises(ArchiveError, match="more than 3,003 versions and range events"):
        read_archive(archive, ArchiveLimits(versions=3003))


def test_a_damaged_or_empty_archive_is_refused(tmp_path):
    good = write_feed(tmp_path / "good.zip", [zlib_advisory()])
    (tmp_path / "cut.zip").write_bytes(good[: len(good) // 2])
    (tmp_path / "html.zip").write_bytes(b"<html>Service Unavailable</html>")
    flipped = bytearray(good)
    start = flipped.index(b"TEST-ZLIB-1.json") + len("TEST-ZLIB-1.json")
    flipped[start + 10] ^= 0xFF  # inside the compressed data: CRC or inflate fails
    (tmp_path / "flipped.zip").write_bytes(bytes(flipped))
    zip_of(tmp_path / "empty.zip", {})
    zip_of(tmp_path / "readme.zip", {"README.md": b"no advisories here"})
    for name in ("cut.zip", "html.zip", "flipped.zip"):
        with pytest.raises(ArchiveError, match="not a readable zip archive"):
            read_archive(tmp_path / name)
    for name in ("empty.zip", "readme.zip"):
        with pytest.raises(ArchiveError, match="holds no advisories"):
            read_archive(tmp_path / name)
    with pytest.raises(ArchiveError, match="cannot read"):
        read_archive(tmp_path / "absent.zip")


def test_a_member_that_is_no_valid_advisory_refuses_the_archive_naming_it(tmp_path):
    bad = json.dumps({**zlib_advisory(), "id": "TEST-2", "aliases": "CVE-1"}).encode()
    archive = zip_of(tmp_path / "all.zip", {"TEST-1.json": advisory(1), "TEST-2.json": bad})
    with pytest.raises(ArchiveError, match=r"member 'TEST-2.json': aliases: expected a list"):
        read_archive(archive)
    zip_of(archive, {"TEST-3.json": b"{not json"})
    with pytest.raises(ArchiveError, match=r"member 'TEST-3.json': line 1: not valid JSON"):
        read_archive(archive)


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("a/" + "x" * 60_000 + "/../../escape.json", advisory(2), "unsafe member name 'a/xxx"),
        ("x" * 60_000 + ".json", b"{not json", "member 'xxx"),
    ],
)
def test_a_long_member_name_is_quoted_clipped(tmp_path, name, data, words):
    """A zip member's name may be 65,535 bytes long: quoted by its start and its length."""
    archive = zip_of(tmp_path / "all.zip", {"TEST-1.json": advisory(1), name: data})
    with pytest.raises(ArchiveError) as caught:
        read_archive(archive)
    message = str(caught.value)
    assert words in message and "... (60,0" in message, message[:300]
    assert len(message) < 300, message[:300]


def test_a_damaged_archive_quoting_long_member_names_is_refused_clipped(tmp_path):
    """zipfile's own reason may quote a member's name twice, as the central directory and the
    member's header each give it (up to 65,535 bytes apiece): cut like any other reason."""
    name = "x" * 60_000 + ".json"
    data = bytearray(zip_of(tmp_path / "all.zip", {name: advisory(1)}).read_bytes())
    at = data.index(name.encode())  # the member's own header comes first
    data[at : at + 60_000] = b"y" * 60_000
    (tmp_path / "all.zip").write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="not a readable zip archive") as caught:
        read_archive(tmp_path / "all.zip")
    message = str(caught.value)
    assert len(message) < 300, message[:300]


def test_an_encrypted_member_refuses_the_archive(tmp_path):
    data = bytearray(zip_of(tmp_path / "all.zip", {"TEST-1.json": advisory(1)}).read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # general purpose flags
        at = data.index(signature) + offset
        data[at] |= 0x1
    (tmp_path / "all.zip").write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="encrypted"):
        read_archive(tmp_path / "all.zip")
