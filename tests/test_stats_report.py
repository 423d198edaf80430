"""Download statistics, what comes of the counts: the stats section of the config,
stats.json, page models, charts and the paths the layout names."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from sitegen import layout
from sitegen.config import ConfigError, parse_config
from sitegen.stats.charts import bar_chart, hbar_chart, sparkline
from sitegen.stats.model import package_stats, stats_page
from sitegen.stats.report import build_doc, decode_doc, encode_doc
from sitegen.stats.tally import Tally
from testkit.stats_lines import CHANNEL, count, line, pkg

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- config


def test_stats_section_is_parsed_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    text = f"""\
        output: site
        channels:
          {CHANNEL}: {{url: "https://conda.example/x", subdirs: [linux-64]}}
        stats:
          logs: [logs/access.log, /var/log/nginx/access.log]
          retention_days: 60
        """
    config = parse_config(textwrap.dedent(text), base_dir=tmp_path)
    assert config.stats is not None
    assert config.stats.logs == (tmp_path / "logs/access.log", Path("/var/log/nginx/access.log"))
    assert config.stats.retention_days == 60
    bad = text.replace("retention_days: 60", "retention_days: 7")
    with pytest.raises(ConfigError, match=r"channels.yaml:6: stats.retention_days: must be at"):
        parse_config(textwrap.dedent(bad), base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r":5: stats: missing required key 'logs'"):
        parse_config(textwrap.dedent(text).split("  logs")[0] + "  retention_days: 40\n")


# --------------------------------------------------------------------------- report, pages


def _doc_tally() -> Tally:
    return count(
        [
            line(pkg(), when="05/Dec/2026:10:00:00 +0000"),
            line(pkg(), when="20/Nov/2026:10:00:00 +0000"),
            line(pkg("scipy-1.14-py312_0.conda"), when="01/Oct/2026:10:00:00 +0000"),
            line(pkg("scipy-1.14-py312_0.conda"), when="02/Oct/2026:10:00:00 +0000"),
            line(pkg("scipy-1.14-py312_0.conda"), when="03/Oct/2026:10:00:00 +0000"),
            line(pkg("<b>x</b>-1-0.conda"), 404),
            line(pkg("pandas-2.2-py312_0.conda"), 404),
            line(pkg("pandas-2.2-py312_0.conda"), 404, agent="pixi/0.39.0"),
            line(pkg(), fetcher="fetched", when="05/Dec/2026:11:00:00 +0000", agent="pixi/0.39.0"),
            line(f"/{CHANNEL}/linux-64/repodata.json", 200, 50),
        ]
    )


def test_stats_json_sums_and_windows() -> None:
    doc = build_doc(_doc_tally(), [CHANNEL], [CHANNEL], date(2026, 12, 5))
    assert decode_doc(encode_doc(doc)) == doc
    assert (doc.totals.downloads, doc.totals.bytes, doc.totals.refreshes) == (6, 6000, 1)
    numpy, scipy = doc.packages
    assert (numpy.name, numpy.downloads, numpy.downloads_7d, numpy.downloads_30d) == (
        "numpy", 3, 2, 3)  # fmt: skip
    assert (scipy.name, scipy.downloads, scipy.downloads_7d, scipy.downloads_30d) == (
        "scipy", 3, 0, 0)  # fmt: skip
    assert [(m.name, m.requests) for m in doc.missing] == [("pandas", 2)]  # markup was skipped
    assert doc.skipped == {"hostile": 1}
    channel = doc.channels[0]
    assert channel.passive is not None
    assert (channel.passive.fetched, channel.passive.disk) == (1, 0)  # combined: unknown
    assert {(t.tool, t.client_days) for t in doc.tools} == {("conda", 5), ("pixi", 1)}
    assert numpy.daily[-1] == 2 and numpy.daily[-16] == 1 and sum(numpy.daily) == 3
    assert len(numpy.daily) == 30 and scipy.daily == [0] * 30


def test_page_models_match_the_document() -> None:
    doc = build_doc(_doc_tally(), [CHANNEL], [], date(2026, 12, 5))
    page = stats_page(doc)
    assert [(p.name, p.downloads) for p in page.top_7d] == [("numpy", 2)]
    assert [(p.name, p.downloads) for p in page.top_all] == [("numpy", 3), ("scipy", 3)]
    assert len(page.per_day) == 30 and page.per_day[-1] == ("2026-12-05", 2)
    assert sum(v for _, v in page.per_day) == 3
    assert page.per_day_chart.count("<rect") == 30
    assert [(t.tool, t.client_days) for t in page.tools] == [("conda", 2), ("pixi", 1)]
    assert page.bytes_30d == 3000 and page.bytes_total == 6000
    assert page.channels[0].passive is None
    numpy = package_stats(doc)[(CHANNEL, "numpy")]
    assert numpy.per_day[-1] == ("2026-12-05", 2) and numpy.downloads_30d == 3
    assert "<polyline" in numpy.trend_chart


def test_charts_escape_text_and_follow_the_text_colour() -> None:
    hostile = '<script>alert("x")</script>'
    for svg in (
        bar_chart([(hostile, 3), ("b", 0)], hostile),
        hbar_chart([(hostile, 5)], hostile),
        sparkline([0, 1, 2], hostile),
    ):
        assert "<script>" not in svg and "&lt;script&gt;" in svg
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        assert "currentColor" in svg and "#" not in svg.replace('"http://www.w3.org', "")
    assert bar_chart([], "empty").count("<rect") == 0
    bars = bar_chart([("a", 1), ("b", 4)], "x")
    assert 'height="126"' in bars and 'height="31.5"' in bars  # proportional to the maximum


def test_layout_names_the_stats_paths(tmp_path: Path) -> None:
    assert layout.STATS_JSON in layout.RESERVED_TOP
    assert layout.stats_state_path(tmp_path).parent == layout.stats_dir(tmp_path)
    assert layout.stats_dir(tmp_path).parent == layout.state_dir(tmp_path)
