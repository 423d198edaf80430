"""Page models: the formatting of links, times, sizes and file names (pure functions)."""

from __future__ import annotations

import time

import pytest

from sitegen.web.format import (
    clip,
    dependency_name,
    format_date_ms,
    format_duration,
    format_time,
    iso_time,
    relative_href,
    root_prefix,
    safe_link,
    split_filename,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "url",
    [
        "https://numpy.org",
        "http://example.org/a?b=1&c=2",
        "  https://example.org/with-space-around  ",
    ],
)
def test_safe_link_keeps_http_urls(url: str) -> None:
    assert safe_link(url) == url.strip()


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java\nscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/x",
        "http://",
        'https://example.org/"onmouseover="alert(1)',
        "https://example.org/<script>",
        "ftp://example.org/file",
        "vbscript:msgbox",
        None,
        42,
        ["https://example.org"],
    ],
)
def test_safe_link_rejects_everything_else(url: object) -> None:
    assert safe_link(url) is None


def test_relative_href_and_root_prefix() -> None:
    page = "cloud/conda-forge/packages/numpy.html"
    assert relative_href("index.html", page) == "../../../index.html"
    assert relative_href("cloud/conda-forge/linux-64/a-1-0.conda", page) == (
        "../linux-64/a-1-0.conda"
    )
    assert relative_href("cloud/conda-forge/packages/six.html", page) == "six.html"
    assert relative_href("history/x.html#deps-a b", "index.html") == "history/x.html#deps-a%20b"
    assert relative_href("c/x/linux-64/a-1!2-0.conda", "c/x/index.html") == (
        "linux-64/a-1%212-0.conda"
    )
    assert root_prefix("index.html") == "."
    assert root_prefix(page) == "../../.."


def test_formatting() -> None:
    assert format_time(0) == ""
    assert format_time(1_700_000_000) == "2023-11-14 22:13 UTC"
    assert iso_time(1_700_000_000) == "2023-11-14T22:13:20Z"
    assert format_date_ms(1_700_000_000_000) == "2023-11-14"
    assert format_duration(None) == ""
    assert format_duration(5.4) == "5 s"
    assert format_duration(65) == "1 min 5 s"
    assert format_duration(3 * 3600 + 120) == "3 h 2 min"
    assert clip("  a\n b  ", 10) == "a b"
    assert clip("x" * 20, 10) == "x" * 9 + "…"
    assert clip(None, 10) == ""


def test_split_filename_and_dependency_name() -> None:
    assert split_filename("numpy-2.1.0-py312h_0.conda") == ("numpy", "2.1.0", "py312h_0")
    assert split_filename("ca-certificates-2024.2.2-hbcca054_0.tar.bz2") == (
        "ca-certificates",
        "2024.2.2",
        "hbcca054_0",
    )
    assert dependency_name("python >=3.8,<3.9.0a0") == "python"
    assert dependency_name("conda-forge::NumPy 1.*") == "numpy"
    assert dependency_name("__glibc >=2.17") == "__glibc"
    assert dependency_name(">=1") is None
    assert dependency_name("g++ >=12") == "g++"
    assert dependency_name("libstdcxx-ng>=12") == "libstdcxx-ng"
    assert dependency_name("foo!=1.0") == "foo"


def test_format_date_ms_agrees_with_gmtime() -> None:
    for ms in (1, 999, 86_399_999, 86_400_000, 1_700_000_000_000, 1_700_006_399_999, 2**45 + 7):
        assert format_date_ms(ms) == time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))
    assert format_date_ms(1_700_000_000_000.5) == "2023-11-14"
    assert format_date_ms(0) == format_date_ms(None) == ""
