"""The search index of a channel: the JSON its page's search box filters."""

from __future__ import annotations

from typing import Any

from sitegen.web.format import shown_text


def search_index(channel: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The compact JSON the searches of the channel page and of the landing page filter: one
    [name, version, summary] each, then the license when known (searched, not shown).

    Package pages are at ``packages/<name>.html`` next to the channel's index.html. The landing
    page loads one such file per channel, when its search is first used.
    """
    return {
        "v": 1,
        "channel": channel,
        "pages": "packages/{name}.html",
        "packages": [
            [
                r["name"],
                r["version"],
                shown_text(r["summary"]),
                *([shown_text(r["license"])] if r["license"] else []),
            ]
            for r in rows
        ],
    }
