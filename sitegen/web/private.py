"""Private channels on the pages (the rule is :mod:`sitegen.access.pages`).

The site-wide pages (landing, history, run pages, ``history.json``, the Atom feed) are public:
they are rendered from run reports with every trace of private channels taken out
(:func:`public_reports`): of those private now and of those private when the run started (the
run record notes which), and, when a record is too old to say, of those no longer configured.
The landing page names a private channel with a lock and the label "private", nothing else
(no counts, mirrors or search index). A private channel's own pages live under its path,
behind the same token check as its files; there, and on the landing page, its "use this
mirror" snippets show the token forms with ``<TOKEN>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import msgspec

from sitegen.access.pages import PRIVATE_LABEL, TOKEN_PLACEHOLDER, token_snippets
from sitegen.config import ChannelConfig, SiteConfig
from sitegen.store.site import Site
from sitegen.sync.closure import CONSTRAINT
from sitegen.sync.history import History
from sitegen.sync.report import (
    PRIVATE,
    PUBLIC,
    MirrorReport,
    RunAccess,
    RunReport,
)
from sitegen.web.snippets import BASE_PLACEHOLDER


def private_paths(config: SiteConfig) -> frozenset[str]:
    return frozenset(c.path for c in config.channels if c.private)


# Said on the public pages of a run that failed only in private channels: "failed" with no
# reason at all would look like a fault of the pages. No channel or mirror is named.
PRIVATE_ERRORS_ONLY = "the errors of this run concern private channels (not shown here)"


def hidden_channels(report: RunReport, now: RunAccess) -> frozenset[str]:
    """The channels of ``report`` the public pages leave out: those private now (``now``, of
    the configuration), those private when the run started, and those configured no more whose
    access then is unknown (a record from before runs noted it): when unsure, hide."""
    then = report.access.channels if report.access is not None else {}
    named = {m.channel for m in report.mirrors} | {c.channel for c in report.channels}
    named |= {a.channel for a in report.approvals if a.channel}
    named |= then.keys() | now.channels.keys()
    return frozenset(
        path
        for path in named
        if PRIVATE in (now.channels.get(path), then.get(path))
        or (path not in now.channels and then.get(path) != PUBLIC)
    )


# Why a file was added as a dependency, in place of the file that needed it when that file is
# of a channel the page leaves out (or, in a record from before runs noted whose it was, when
# the page leaves any channel out). The file added stays listed: its channel publishes it.
NEEDED_BY_HIDDEN = "needed by a package not shown here"
CONSTRAINED_BY_HIDDEN = f"{CONSTRAINT} a package not shown here"


def _public_needs(mirror: MirrorReport, hidden: frozenset[str]) -> MirrorReport:
    """``mirror`` with the reason of each dependency it added for a record of a ``hidden``
    channel (one of another channel's mirrors, resolved here) replaced by a word about it."""
    if not hidden:
        return mirror
    rows = []
    for row in mirror.dependencies_added:
        # A row written before runs noted the channel may name any file: when unsure, hide.
        channel = row.needed_by_channel
        if channel is not None and channel not in hidden:
            rows.append(row)
            continue
        why = CONSTRAINED_BY_HIDDEN if row.why.startswith(CONSTRAINT) else NEEDED_BY_HIDDEN
        rows.append(msgspec.structs.replace(row, why=why, needed_by_channel=None))
    return dataclasses.replace(mirror, dependencies_added=rows)


def public_report(report: RunReport, now: RunAccess) -> RunReport:
    """``report`` without the mirrors, subdirs and approvals of the channels it must not show
    (:func:`hidden_channels`), nor the run-level errors and ``--only`` names that name one of
    them or their mirrors, nor the path of a removal (``sitegen remove``) inside one, nor the
    name of a file of one that needed a dependency another mirror served (a failed run left
    with no error says why in a note that names none of them)."""
    hidden = hidden_channels(report, now)
    then = report.access.mirrors if report.access is not None else {}
    hidden_mirrors = {m.name for m in report.mirrors if m.channel in hidden}
    hidden_mirrors |= {
        name for name, access in [*then.items(), *now.mirrors.items()] if access == PRIVATE
    }
    words = hidden | hidden_mirrors
    options = dict(report.options)
    if isinstance(options.get("only"), list):
        options["only"] = [name for name in options["only"] if name not in words]
    removed = options.get("remove")
    if isinstance(removed, str) and any(f"{removed}/".startswith(f"{c}/") for c in hidden):
        options["remove"] = ""  # still a removal (see RunReport.removal), of no path shown
    public = dataclasses.replace(
        report,
        options=options,
        mirrors=[_public_needs(m, hidden) for m in report.mirrors if m.channel not in hidden],
        channels=[c for c in report.channels if c.channel not in hidden],
        approvals=[a for a in report.approvals if a.channel not in hidden],
        errors=[e for e in report.errors if not any(word in e for word in words)],
    )
    if report.failed and not public.failed:
        public.errors.append(PRIVATE_ERRORS_ONLY)
    return public


def public_reports(reports: Iterable[RunReport], config: SiteConfig) -> list[RunReport]:
    now = RunAccess.of(config)
    return [public_report(report, now) for report in reports]


def ledger_hides(config: SiteConfig) -> bool:
    """Whether some run record of the site names a channel the public pages leave out of it
    (:func:`hidden_channels`): then the records themselves are no file for everyone."""
    now = RunAccess.of(config)
    try:
        runs = History(Site(config.output)).runs(strict=True)
    except OSError:
        return True  # a ledger, or a record, that cannot be read may name anything
    return any(hidden_channels(report, now) for report in runs)


def token_snippet(base_url: str | None, channel: str) -> str:
    """Client set-up for a private channel: path token, Bearer and Basic, with ``<TOKEN>``."""
    s = token_snippets(base_url or BASE_PLACEHOLDER, channel)
    lines = [
        "# conda (~/.condarc): the token in the channel URL",
        "channels:",
        f"  - {s.conda_url}",
        "# or Bearer (pixi, rattler): log in once ...",
        s.pixi_login,
        "# ... or, in CI, RATTLER_AUTH_FILE=auth.json holding",
        s.rattler_auth_file,
        "# or Bearer (mamba, micromamba 2.x): ~/.mamba/auth/authentication.json holding",
        s.mamba_auth_file,
        f"# and the channel by its plain URL: {s.channel_url}",
        "# or Basic (~/.netrc, read by conda, mamba and pixi); any login, the token as password",
        s.netrc,
    ]
    return "\n".join(lines)


def private_channel_extras(
    channel: ChannelConfig, base_url: str | None, site_private: bool = False
) -> dict[str, Any]:
    """What a channel's own page adds when it answers only to a token (it is private, or the
    whole site is): its token snippet (None otherwise)."""
    if not (channel.private or site_private):
        return {"token_snippet": None}
    return {
        "token_snippet": token_snippet(base_url, channel.path),
        "token_placeholder": TOKEN_PLACEHOLDER,
        "base_placeholder": None if base_url else BASE_PLACEHOLDER,
    }


def landing_private(model: dict[str, Any], config: SiteConfig) -> dict[str, Any]:
    """The landing page model with private channels reduced to their path, page and label,
    and their token snippets in the "use this mirror" section (every channel's on a private
    site, where the plain URLs of a public channel answer only to a token too)."""
    private = private_paths(config)
    site_private = config.access.site_private  # every channel answers only to a token
    channels = [
        {"path": ch["path"], "page": ch["page"], "private": PRIVATE_LABEL}
        if ch["path"] in private
        else {**ch, "private": None}
        for ch in model["channels"]
    ]
    snippets = [
        {"channel": c.path, "text": token_snippet(config.base_url, c.path)}
        for c in config.channels
        if c.private or site_private
    ]
    return {**model, "channels": channels, "private_snippets": snippets}
