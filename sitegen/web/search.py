"""The search index of a channel: the JSON its page's search box filters."""

from __future__ import annotations

from typing import Any


def search_index(channel: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The compact JSON the channel page's search filters: one [name, version, summary] each.

    Package pages are at ``packages/<name>.html`` next to the channel's index.html.
    """
    return {
        "v": 1,
        "channel": channel,
        "pages": "packages/{name}.html",
        "packages": [[r["name"], r["version"], r["summary"]] for r in rows],
    }
