"""Download statistics on the pages, their models: the statistics page (private channels
named only, installer folders configured), the downloads of package pages and their keys."""

from __future__ import annotations

import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest

from sitegen import layout
from sitegen.config import SiteConfig, parse_config
from sitegen.stats.counter import line_counter
from sitegen.stats.report import StatsDoc, build_doc
from sitegen.stats.tally import Tally
from sitegen.web.downloads import (
    NONE_COUNTED,
    PackageDownloads,
    landing_stats,
    site_stats,
    stats_page_model,
)
from sitegen.web.environment import make_environment
from sitegen.web.facts import PackageFacts
from sitegen.web.manifest import KnownPackage, package_key
from sitegen.web.package import package_model
from sitegen.web.render import TEMPLATES_DIR
from sitegen.web.writer import render_page
from testkit.records import rec
from testkit.stats_pages import PUBLIC, TODAY, line

PRIVATE = "internal/secret"


def doc_of(lines: list[str], today: date = TODAY) -> StatsDoc:
    tally = Tally()
    line_counter(tally, [PUBLIC, PRIVATE], today).add([text.encode() for text in lines])
    return build_doc(tally, [PUBLIC, PRIVATE], [], today)


def two_channels(tmp_path: Path) -> SiteConfig:
    return parse_config(
        textwrap.dedent(f"""\
        output: {tmp_path / "site"}
        channels:
          {PUBLIC}: {{url: https://example.org/pub, subdirs: [linux-64]}}
          {PRIVATE}:
            url: https://example.org/secret
            subdirs: [linux-64]
            access: private
        """)
    )


def sample_lines() -> list[str]:
    return [
        line(f"/{PUBLIC}/linux-64/numpy-2.1.0-py312_0.conda", TODAY),
        line(f"/{PUBLIC}/linux-64/numpy-2.1.0-py312_0.conda", TODAY, ip="192.0.2.2"),
        line(f"/{PUBLIC}/linux-64/zlib-1.3.1-h0_0.conda", TODAY - timedelta(days=60)),
        line(f"/{PRIVATE}/linux-64/topsecret-1.0-0.conda", TODAY),
        line(f"/{PRIVATE}/linux-64/topsecret-1.0-0.conda", TODAY, ip="192.0.2.3"),
        line(f"/{PRIVATE}/linux-64/topsecret-1.0-0.conda", TODAY, ip="192.0.2.4"),
        line(f"/{PRIVATE}/linux-64/hiddenlib-2.0-0.conda", TODAY, 404),
        line(f"/{PUBLIC}/linux-64/pandas-2.2-py312_0.conda", TODAY, 404),
    ]


# --------------------------------------------------------------------------- page models


@pytest.mark.unit
def test_statistics_page_names_a_private_channel_only(tmp_path: Path) -> None:
    stats = site_stats(doc_of(sample_lines()), two_channels(tmp_path))
    model = stats_page_model(stats, {PUBLIC: {"numpy"}, PRIVATE: {"topsecret"}}, ())
    all_time = model["top"][2]["rows"]
    assert [(r["channel"], r["name"], r["downloads"]) for r in all_time] == [
        (PUBLIC, "numpy", 2),
        (PUBLIC, "zlib", 1),
    ]
    # A package page exists for numpy only: zlib left the channel.
    assert [r["page"] for r in all_time] == [layout.package_page_path(PUBLIC, "numpy"), None]
    assert [(r["name"], r["downloads"]) for r in model["top"][0]["rows"]] == [("numpy", 2)]
    assert [m["name"] for m in model["missing"]] == ["pandas"]
    public, private = model["channels"]
    assert (public["path"], public["downloads"], public["private"]) == (PUBLIC, 3, False)
    assert private == {
        "path": PRIVATE,
        "page": layout.channel_index_path(PRIVATE),
        "private": True,
    }
    # Site-wide totals add up every channel; the private channel's own pages show its counts.
    assert model["downloads"] == 6 and model["downloads_30d"] == 5
    assert stats.downloads(PRIVATE)["topsecret"].downloads == 3
    assert landing_stats(stats) == {
        "page": layout.STATS_PAGE,
        "today": "2026-12-05",
        "downloads": 6,
        "downloads_30d": 5,
    }
    assert landing_stats(None) is None
    html = render_page(
        make_environment(TEMPLATES_DIR), "t", "stats.html", layout.STATS_PAGE, model=model
    ).decode()
    assert "topsecret" not in html and "hiddenlib" not in html
    assert f'{PRIVATE}</a> <span class="tag">private</span>' in html
    assert html.count("<svg") == 2 and '<a href="cloud/example/packages/numpy.html">' in html
    # A site without installer folders has no table of them.
    assert model["installers"] == [] and "installers-table" not in html


@pytest.mark.unit
def test_channels_no_longer_configured_are_left_out(tmp_path: Path) -> None:
    config = parse_config(
        f"output: {tmp_path}\nchannels:\n  {PRIVATE}: {{url: https://e.org/x, subdirs: [noarch]}}\n"
    )
    model = stats_page_model(site_stats(doc_of(sample_lines()), config), {}, ())
    assert [c["path"] for c in model["channels"]] == [PRIVATE]
    assert {r["name"] for top in model["top"] for r in top["rows"]} == {"topsecret"}


FOLDER = "miniconda"
LATEST = "Miniconda3-latest-Linux-x86_64.sh"


@pytest.mark.unit
def test_statistics_page_shows_each_installer_folder_configured(tmp_path: Path) -> None:
    folders = [FOLDER, "installers/anaconda", "gone", "linked"]
    installer = f"/{FOLDER}/{LATEST}"
    lines = [
        line(installer, TODAY, size=5000),
        line(installer, TODAY, size=5000, ip="192.0.2.2"),
        line(installer, TODAY - timedelta(days=60), size=5000),
        line(f"/{FOLDER}/Miniconda3-latest-MacOSX-arm64.pkg", TODAY, size=70),
        *(line(f"/{FOLDER}/old-{n}.sh", TODAY - timedelta(days=40), size=1) for n in range(6)),
        line("/gone/Anaconda3-2024.10-1-Linux-x86_64.sh", TODAY, size=9),
        line(f"/{PUBLIC}/linux-64/numpy-2.1.0-py312_0.conda", TODAY),
    ]
    tally = Tally()
    line_counter(tally, [PUBLIC], TODAY, folders).add([text.encode() for text in lines])
    doc = build_doc(tally, [PUBLIC], [], TODAY, installers=folders)
    config = parse_config(
        f"output: {tmp_path / 'site'}\n"
        f"channels:\n  {PUBLIC}: {{url: https://example.org/pub, subdirs: [linux-64]}}\n"
        "installers:\n"
        + "".join(
            f"  {folder}: {{url: https://repo.example.org/{folder}/}}\n"
            for folder in (FOLDER, "installers/anaconda", "linked", "new")
        )
    )
    stats = site_stats(doc, config)
    model = stats_page_model(stats, {}, {FOLDER, "installers/anaconda", "new"})
    # Configured folders only ("gone" no longer is; "new" is, and has no counts yet), by path;
    # a folder without a page of its own is named without a link.
    assert [(f["path"], f["page"]) for f in model["installers"]] == [
        ("installers/anaconda", "installers/anaconda/index.html"),
        ("linked", None),
        (FOLDER, "miniconda/index.html"),
        ("new", "new/index.html"),
    ]
    shown = model["installers"][2]
    assert (shown["downloads"], shown["downloads_30d"], shown["bytes"]) == (10, 3, 15076)
    # The most downloaded files first (ties by name), at most five.
    assert shown["files"] == [
        {"file": LATEST, "downloads": 3},
        {"file": "Miniconda3-latest-MacOSX-arm64.pkg", "downloads": 1},
        *({"file": f"old-{n}.sh", "downloads": 1} for n in range(3)),
    ]
    assert [f["files"] for f in model["installers"] if f["path"] != FOLDER] == [[], [], []]
    # The channels' totals leave the installers out.
    assert (model["downloads"], model["bytes_total"]) == (1, 1000)
    html = render_page(
        make_environment(TEMPLATES_DIR), "t", "stats.html", layout.STATS_PAGE, model=model
    ).decode()
    table = html[html.index('id="installers-table"') : html.index("</table>", html.index(
        'id="installers-table"'))]  # fmt: skip
    assert '<a href="miniconda/index.html">miniconda</a>' in table
    assert '<td class="n" data-label="Downloads">10</td>' in table
    assert '<td class="n" data-label="Last 30 days">3</td>' in table
    assert f'<code>{LATEST}</code></span> <span class="num">3</span>' in table
    assert "<td>linked</td>" in table and "gone" not in table and "old-3.sh" not in table
    assert "the installer folders' downloads" in html


@pytest.mark.unit
def test_package_downloads_move_with_the_days_only_while_recent(tmp_path: Path) -> None:
    config = two_channels(tmp_path)
    lines = sample_lines()
    today = site_stats(doc_of(lines), config).downloads(PUBLIC)
    tomorrow = site_stats(doc_of(lines, TODAY + timedelta(days=1)), config).downloads(PUBLIC)
    zlib = today["zlib"]  # downloaded 60 days ago only: no trend, the same page tomorrow
    assert zlib == PackageDownloads(1, 0, None) == tomorrow["zlib"]
    numpy = today["numpy"]
    assert (numpy.downloads, numpy.downloads_30d) == (2, 2)
    assert numpy.trend is not None and numpy.trend.per_day[-1] == ("2026-12-05", 2)
    assert tomorrow["numpy"] != numpy  # its trend moved on by a day
    assert "<polyline" in numpy.trend.trend_chart

    known = KnownPackage("fp", PackageFacts("1.0", ["linux-64"], "", []))

    def key(downloads: PackageDownloads | None = None) -> str:
        return package_key("g", PUBLIC, "zlib", known, None, {}, None, downloads)

    # Without statistics the key is what it was before they existed.
    assert key() == package_key("g", PUBLIC, "zlib", known, None, {})
    assert len({key(), key(NONE_COUNTED), key(zlib), key(numpy)}) == 4


@pytest.mark.unit
def test_package_page_shows_downloads_and_a_trend(tmp_path: Path) -> None:
    stats = site_stats(doc_of(sample_lines()), two_channels(tmp_path))
    records = [rec("numpy", "2.1.0", "py312_0")]
    env = make_environment(TEMPLATES_DIR)
    relpath = layout.package_page_path(PUBLIC, "numpy")

    def page(downloads: PackageDownloads | None) -> str:
        model = package_model(PUBLIC, "numpy", records, downloads=downloads)
        return render_page(env, "t", "package.html", relpath, model=model).decode()

    shown = page(stats.downloads(PUBLIC)["numpy"])
    assert "<b>2</b> in all, <b>2</b> in the last 30 days" in shown
    assert 'class="chart chart-spark"' in shown and "2026-11-06 to 2026-12-05" in shown
    assert '<a href="../../../stats.html">statistics</a>' in shown
    none = page(NONE_COUNTED)
    assert "none counted yet" in none and "<svg" not in none
    assert "<dt>Downloads</dt>" not in page(None)
