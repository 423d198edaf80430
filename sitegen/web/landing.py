"""The landing page: every channel with its mirrors' state, the last run, the snippets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sitegen.config import SiteConfig
from sitegen.config.local_source import KIND as LOCAL_KIND
from sitegen.layout import channel_index_path, run_page_path, search_index_path
from sitegen.sync.report import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    RUNNING,
    STOPPED,
    MirrorReport,
    RunReport,
)
from sitegen.web.channel import ChannelSummary
from sitegen.web.format import format_time, iso_time
from sitegen.web.run import STATUS_WORDS, Scrub, mirror_row, run_summary, same
from sitegen.web.snippets import BASE_PLACEHOLDER, usage_snippets


def mirror_state(reports: list[RunReport], mirror: str) -> dict[str, Any]:
    """The last run that involved a mirror, its status there and its last successful sync."""
    state: dict[str, Any] = {
        "last_status": None,
        "last_run": None,
        "last_success": None,
        "last_success_iso": "",
        "last_success_text": "",
        "read": None,  # the newest report of the mirror that read upstream
        "read_run": None,  # the run it is part of
    }
    for report in reports:  # newest first
        found = next((m for m in report.mirrors if m.name == mirror), None)
        if found is None:
            continue
        if state["last_run"] is None:
            state["last_run"] = report.id
            if report.status in (RUNNING, STOPPED, INTERRUPTED):
                state["last_status"] = report.status
            else:
                state["last_status"] = FAILED if found.errors else found.status
        # A run that could not read upstream (down) counts nothing: the page shows the counts
        # of the last that could.
        if state["read"] is None and found.read_upstream() and report.status != RUNNING:
            state["read"] = found
            state["read_run"] = report.id
        if (
            state["last_success"] is None
            and report.status in (COMPLETED, FAILED)
            and found.status == COMPLETED
            and not found.errors
        ):
            state["last_success"] = report.ended
            state["last_success_iso"] = iso_time(report.ended)
            state["last_success_text"] = format_time(report.ended)
        if state["last_success"] is not None and state["read"] is not None:
            break
    return state


def source_kinds(config: SiteConfig) -> str:
    """What feeds the site's channels, for the page's opening line: "upstream" channels,
    "local" folders or "both". An approval-gated channel reads another channel of the site,
    which says it already."""
    kinds = {m.kind for _c, m in config.mirrors if m.kind != "site"}
    if kinds == {LOCAL_KIND}:
        return "local"
    return "both" if LOCAL_KIND in kinds else "upstream"


def landing_model(
    config: SiteConfig,
    summaries: Mapping[str, ChannelSummary],
    reports: list[RunReport],
    scrub: Scrub = same,
) -> dict[str, Any]:
    channels = []
    for channel in config.channels:
        summary = summaries.get(channel.path) or ChannelSummary(path=channel.path)
        mirrors = []
        for mirror in channel.mirrors:
            state = mirror_state(reports, mirror.name)
            read: MirrorReport | None = state.pop("read")
            read_run: str | None = state.pop("read_run")
            mirrors.append(
                {
                    "name": mirror.name,
                    "source": scrub(mirror.display_url()),
                    "subdirs": list(mirror.subdirs),
                    "mode": mirror.mode,
                    **state,
                    "last_status_words": STATUS_WORDS.get(state["last_status"] or "", "never run"),
                    "last_run_page": run_page_path(state["last_run"])
                    if state["last_run"]
                    else None,
                    "filtered": mirror_row(read, scrub) if read is not None else None,
                    # The run page whose dependency report "filtered" counts (the last run
                    # may be one still running, or one that never read upstream).
                    "filtered_page": run_page_path(read_run) if read_run else None,
                }
            )
        channels.append(
            {
                "path": channel.path,
                "page": channel_index_path(channel.path),
                "search_index": search_index_path(channel.path),
                "summary": summary.to_json(),
                "mirrors": mirrors,
            }
        )
    # The last mirror run: a `sitegen remove` since then is no run of the mirrors.
    last = next((run_summary(r, scrub) for r in reports if not r.removal), None)
    return {
        "channels": channels,
        "sources": source_kinds(config),
        "last_run": last,
        "base_url": config.base_url,
        "base_placeholder": None if config.base_url else BASE_PLACEHOLDER,
        "snippets": usage_snippets(config, config.base_url or BASE_PLACEHOLDER),
    }
