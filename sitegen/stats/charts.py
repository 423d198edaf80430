"""Inline SVG charts, generated as text: no JavaScript, no CDN, no external file.

Shapes are painted with ``currentColor`` (the text colour of the page, so light and dark themes
both read) and a page may restyle them through the CSS variables ``--chart-bar`` and
``--chart-grid``. Each chart scales to the width of its container (``viewBox`` with
``width="100%"``), so it fits a phone, and carries a ``<title>`` and an ``aria-label`` for
screen readers. Every piece of text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

BAR = "var(--chart-bar, currentColor)"
GRID = "var(--chart-grid, currentColor)"


def _number(value: float) -> str:
    """Coordinates with at most two decimals, without trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def human_count(value: int) -> str:
    for limit, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if value >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return str(value)


def _open(width: int, height: int, label: str, css_class: str) -> str:
    text = escape(label)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" role="img"'
        f' viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet"'
        f' aria-label="{text}"><title>{text}</title>'
    )


def bar_chart(series: Sequence[tuple[str, int]], label: str) -> str:
    """Vertical bars, one per (day, value), oldest first; the first and last day and the
    maximum are written on the axis, each bar has a tooltip ``<title>``."""
    width, height, top, bottom, left = 600, 160, 14, 20, 4
    plot_height = height - top - bottom
    peak = max((value for _, value in series), default=0)
    parts = [_open(width, height, label, "chart chart-bars")]
    parts.append(
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}"'
        f' stroke="{GRID}" stroke-opacity="0.4" stroke-width="1"/>'
    )
    if series:
        step = (width - left) / len(series)
        bar_width = max(step * 0.8, 1.0)
        for index, (day, value) in enumerate(series):
            bar_height = plot_height * value / peak if peak else 0.0
            x = left + index * step + (step - bar_width) / 2
            y = height - bottom - bar_height
            parts.append(
                f'<rect x="{_number(x)}" y="{_number(y)}" width="{_number(bar_width)}"'
                f' height="{_number(bar_height)}" fill="{BAR}">'
                f"<title>{escape(day)}: {value}</title></rect>"
            )
        parts.append(
            f'<text x="{left}" y="{height - 5}" font-size="11" fill="currentColor">'
            f"{escape(series[0][0])}</text>"
        )
        parts.append(
            f'<text x="{width}" y="{height - 5}" font-size="11" fill="currentColor"'
            f' text-anchor="end">{escape(series[-1][0])}</text>'
        )
    parts.append(
        f'<text x="{left}" y="11" font-size="11" fill="currentColor">max {human_count(peak)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(rows: Sequence[tuple[str, int]], label: str) -> str:
    """Horizontal bars with their label and value, largest first as given. Narrow (its text
    about the size of the page's on a phone and on a desktop alike, at a width of 20-25rem)."""
    row_height, width, label_width, value_width = 22, 320, 96, 40
    height = max(len(rows), 1) * row_height
    peak = max((value for _, value in rows), default=0)
    parts = [_open(width, height, label, "chart chart-hbars")]
    for index, (name, value) in enumerate(rows):
        y = index * row_height
        bar = (width - label_width - value_width) * value / peak if peak else 0.0
        parts.append(
            f'<text x="0" y="{y + 15}" font-size="12" fill="currentColor">{escape(name)}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{_number(bar)}" height="14"'
            f' fill="{BAR}"><title>{escape(name)}: {value}</title></rect>'
            f'<text x="{_number(label_width + bar + 6)}" y="{y + 15}" font-size="12"'
            f' fill="currentColor">{human_count(value)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def sparkline(values: Sequence[int], label: str) -> str:
    """A small trend line (a package's downloads per day), oldest first."""
    width, height, pad = 120, 28, 2
    peak = max(values, default=0)
    parts = [_open(width, height, label, "chart chart-spark")]
    if len(values) >= 2:
        step = (width - 2 * pad) / (len(values) - 1)
        points = " ".join(
            f"{_number(pad + i * step)},"
            f"{_number(height - pad - ((height - 2 * pad) * v / peak if peak else 0))}"
            for i, v in enumerate(values)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{BAR}" stroke-width="1.5"'
            ' stroke-linejoin="round"/>'
        )
    parts.append("</svg>")
    return "".join(parts)
