"""An installer folder's index page, read with the HTML parser: the rows of a listing like
repo.anaconda.com's become files; hostile and odd rows are skipped each with its reason while
the good rows stand; include, exclude and newest choose among them."""

from __future__ import annotations

import hashlib
import tracemalloc
from datetime import UTC, datetime

import pytest

from sitegen.config import InstallerConfig
from sitegen.sync.installer_listing import (
    MAX_INSTALLER_BYTES,
    listed_size,
    parse_listing,
    select,
)
from sitegen.sync.report import SKIPPED_EXAMPLES
from testkit.installers import Row, index_page

pytestmark = pytest.mark.unit

SHA = hashlib.sha256(b"x").hexdigest()
GOOD = Row("Miniconda3-latest-Linux-x86_64.sh", "148.7M", "2025-06-26 13:03:13", SHA.upper())


def stamp(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_a_listing_like_repo_anaconda_com_reads_as_its_files() -> None:
    rows = [
        GOOD,
        Row("Miniconda3-py312_25.5.1-0-Windows-x86_64.exe", "87.4M", "2025-06-26 13:03:10", SHA),
        Row("Miniconda3-4.5.4-MacOSX-x86_64.pkg", "1.2G", "2018-06-07 14:13:46", SHA),
        Row("tiny.sh", "512", "2020-01-01 00:00:00", SHA),
    ]
    listing = parse_listing(index_page(rows))
    assert listing.found and not listing.skipped and not listing.unreadable
    assert list(listing.files) == [r.name for r in rows]
    latest = listing.files[GOOD.name]
    assert latest.sha256 == SHA  # lower-cased
    assert latest.modified == stamp("2025-06-26T13:03:13")
    # 148.7M stands for 148.65 to 148.75 of either unit.
    assert (latest.low, latest.high) == (148_650_000, 155_975_680)
    assert latest.fits(155_923_456) and not latest.exact
    assert listing.files["tiny.sh"].exact and listing.files["tiny.sh"].fits(512)


@pytest.mark.parametrize(
    ("row", "why"),
    [
        (Row("../evil.sh", "1.0K", "2025-01-01 00:00:00", SHA), "not a plain file name"),
        (Row("a/b.sh", "1.0K", "2025-01-01 00:00:00", SHA), "not a plain file name"),
        (Row(".hidden.sh", "1.0K", "2025-01-01 00:00:00", SHA), "not a plain file name"),
        (Row("/etc/passwd", "1.0K", "2025-01-01 00:00:00", SHA), "not a plain file name"),
        (Row("a b.sh", "1.0K", "2025-01-01 00:00:00", SHA), "not a plain file name"),
        (Row("x" * 201, "1.0K", "2025-01-01 00:00:00", SHA), "not a plain file name"),
        (Row("index.html", "1.0K", "2025-01-01 00:00:00", SHA), "the folder's own page"),
        # Stored on a case-insensitive file system, it would replace the folder's page.
        (Row("Index.HTML", "1.0K", "2025-01-01 00:00:00", SHA), "the folder's own page"),
        (
            Row("ok.sh", "1.0K", "2025-01-01 00:00:00", SHA, href="../../etc/evil.sh"),
            "its link names another file",
        ),
        (Row("huge.sh", "900000G", "2025-01-01 00:00:00", SHA), "more than an installer may be"),
        (Row("empty.sh", "0", "2025-01-01 00:00:00", SHA), "its size is 0"),
        (Row("nosize.sh", "big", "2025-01-01 00:00:00", SHA), "is not a size"),
        (Row("decimals.sh", "12.5", "2025-01-01 00:00:00", SHA), "decimals but no unit"),
        (Row("date.sh", "1.0K", "yesterday", SHA), "does not read as one"),
        (Row("short.sh", "1.0K", "2025-01-01 00:00:00", SHA[:63]), "not 64 hexadecimal"),
        (Row("nothex.sh", "1.0K", "2025-01-01 00:00:00", "g" * 64), "not 64 hexadecimal"),
    ],
    ids=lambda value: value.name[:12] if isinstance(value, Row) else "",
)
def test_a_hostile_or_odd_row_is_skipped_with_its_reason(row: Row, why: str) -> None:
    listing = parse_listing(index_page([GOOD, row]))
    assert list(listing.files) == [GOOD.name]  # the good row stands
    ((what, reason),) = listing.skipped
    assert why in reason
    assert row.name[:20] in what
    # A plain name stays known: a file stored under it is not deleted for a row gone odd.
    plain = row.name in {"index.html", "Index.HTML", "ok.sh", "huge.sh", "empty.sh", "nosize.sh"}
    plain = plain or row.name in {"decimals.sh", "date.sh", "short.sh", "nothex.sh"}
    assert listing.unreadable == ({row.name} if plain else set())


def test_a_file_listed_twice_with_different_checksums_is_neither() -> None:
    other = Row(GOOD.name, GOOD.size, GOOD.modified, "0" * 64)
    same = Row("b.sh", "1.0K", "2025-01-01 00:00:00", SHA)
    listing = parse_listing(index_page([GOOD, same, other, same]))
    assert list(listing.files) == ["b.sh"]
    assert listing.skipped == [(repr(GOOD.name), "listed twice, with different checksums")]
    assert listing.unreadable == {GOOD.name}


def test_rows_outside_the_listing_table_and_short_rows() -> None:
    page = index_page([GOOD]).replace(
        "<body>",
        "<body><table><tr><td>menu</td><td>x</td></tr></table>",
    )
    page = page.replace("</table>\n</body>", "<tr><td>Parent Directory</td></tr></table>\n</body>")
    listing = parse_listing(page)
    assert list(listing.files) == [GOOD.name]
    assert listing.skipped == [("row 4", "1 cells, not 4")]


@pytest.mark.parametrize("flood", ["<td>", "<tr><td>"])
def test_a_flood_of_cells_or_rows_is_read_in_memory_bounded_by_the_page(flood: str) -> None:
    """Cells without end (one row of tens of thousands) or rows of one cell each, after a
    good row: the page's rows are judged as they end and a row's cells past a listing's few
    are passed over, so reading takes memory of the order of the page, not tens of times it
    (an 8 MB page took half a gigabyte). 256 KiB is enough: a row's every cell kept, or every
    row held until the page ends, takes 11 MiB or more of it, well past the bound."""
    page = index_page([GOOD]).replace("</table>", "") + flood * ((256 << 10) // len(flood))
    tracemalloc.start()
    try:
        listing = parse_listing(page)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    assert list(listing.files) == [GOOD.name]
    assert len(listing.skipped) == min(listing.skipped_total, SKIPPED_EXAMPLES)


def test_columns_are_found_by_their_headers_in_any_order() -> None:
    page = (
        "<table><tr><th>SHA256</th><th>Last Modified</th><th>Size</th><th>Filename</th></tr>"
        f"<tr><td>{SHA}</td><td>2024-02-03 04:05</td><td>2.0 MiB</td>"
        "<td><a href='https://repo.example.org/miniconda/a.sh'>a.sh</a></td></tr></table>"
    )
    listing = parse_listing(page)
    assert listing.files["a.sh"].modified == stamp("2024-02-03T04:05:00")
    assert listing.files["a.sh"].fits(2 * 1024 * 1024)


def test_a_page_without_the_table_lists_nothing() -> None:
    listing = parse_listing("<html><body><p>Service unavailable</p></body></html>")
    assert not listing.found and not listing.files and not listing.skipped


def test_markup_in_a_name_cell_is_read_as_its_text() -> None:
    page = index_page([GOOD]).replace(
        f">{GOOD.name}</a>", f">{GOOD.name}<script>alert(1)</script></a>"
    )
    listing = parse_listing(page)
    assert not listing.files
    ((what, why),) = listing.skipped
    assert "alert(1)" in what and "not a plain file name" in why


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("155469432", 155469432, 155469432),
        ("1024 B", 1024, 1024),
        ("2.9K", 2850, 3021),
        ("1G", 500_000_000, 1_610_612_736),
        ("1.25 GB", 1_245_000_000, 1_347_545_990),
    ],
)
def test_listed_sizes(text: str, low: int, high: int) -> None:
    assert listed_size(text) == (low, high)
    assert listed_size("15G")[1] <= MAX_INSTALLER_BYTES


def test_include_exclude_and_newest_choose_the_files() -> None:
    def row(name: str, day: int) -> Row:
        return Row(name, "1.0K", f"2025-01-{day:02d} 00:00:00", SHA)

    files = parse_listing(
        index_page(
            [
                row("Miniconda3-latest-Linux-x86_64.sh", 9),
                row("Miniconda3-latest-MacOSX-arm64.pkg", 9),
                row("Miniconda3-py312_1-Linux-x86_64.sh", 1),
                row("Miniconda3-py312_2-Linux-x86_64.sh", 2),
                row("Miniconda3-py312_3-Linux-x86_64.sh", 3),
                row("Miniconda3-py311_3-Linux-x86_64.sh", 4),
            ]
        )
    ).files
    config = InstallerConfig(path="miniconda", url="https://repo.anaconda.com/miniconda")
    assert len(select(files, config)) == 6
    config = InstallerConfig(
        path="miniconda",
        url="https://repo.anaconda.com/miniconda",
        include=("Miniconda3-latest-*", "Miniconda3-py312_*"),
        exclude=("*.pkg",),
        newest=2,
    )
    assert list(select(files, config)) == [
        "Miniconda3-latest-Linux-x86_64.sh",
        "Miniconda3-py312_2-Linux-x86_64.sh",
        "Miniconda3-py312_3-Linux-x86_64.sh",
    ]
