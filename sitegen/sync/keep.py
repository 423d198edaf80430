"""The package files a ``keep_removed`` channel keeps once its upstream stops listing them.

By default a run deletes every package file the published metadata no longer names. A channel
with ``keep_removed: true`` keeps a file whose record the *upstream* dropped (yanked, marked
broken, cleaned up): it stays downloadable at its URL, as explicit lock files name it, though
no metadata lists it any more (what the TUNA mirror script does without ``--delete``). What the
channel's filters forbid still goes at once: a kept file goes as soon as a filter of a mirror
feeding its subdir would refuse its record (an exclude added, a licence rule, an advisory
published), once no such mirror is left, when the setting is turned off, and with
``sitegen remove``. Allowlists and ``newest_versions`` decide what is listed, not what is
forbidden, so a record they alone leave out is kept. Nor is a record kept that holds a
credential of a mirror's URL (see sitegen.conda.record_secrets): an earlier sitegen published
and kept such records before the parse refused them, and kept, one would stay under the site.

Nothing published names a kept file, so its record is kept in the state
(:func:`sitegen.layout.kept_records_path`), saved before the metadata that stops listing it
and so before the prune that spares it (with the records kept until then, as long as the
previous state may be served: see sitegen.sync.publish_state).
:func:`kept_files` is pure; :func:`judge_kept` reads the state and the disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec

from sitegen.conda.record_check import REASON_SECRET
from sitegen.conda.records import Record, Repodata
from sitegen.conda.schema import CONDA_SUFFIX, TAR_BZ2_SUFFIX
from sitegen.conda.version import RecordMatcher
from sitegen.config import ChannelConfig, SiteConfig
from sitegen.filters.apply import apply_filters
from sitegen.layout import kept_records_path
from sitegen.net.upstream_secrets import UpstreamSecrets
from sitegen.store.origins import load_origins
from sitegen.store.site import Site
from sitegen.sync.prune import package_files

log = logging.getLogger("sitegen")

Allowed = Callable[[dict[str, Record]], Collection[str]]
UNREADABLE_KEPT = (
    "the records of its kept files (keep_removed) cannot be read (see the log); delete that"
    " file to publish it again (the files it kept go then)"
)


def kept_files(
    before: Mapping[str, Record],
    previous: Mapping[str, Record],
    listed: Sequence[Mapping[str, Record]],
    published: Mapping[str, Record],
    present: Collection[str],
    allowed: Allowed,
) -> dict[str, Record]:
    """The files to keep: of those kept ``before`` and those ``previous``ly published, the
    ones no upstream listing (``listed``) names, that are not ``published`` now, are
    ``present`` on disk and that the filters ``allowed`` (names out of the records given)."""
    candidates = {
        fn: record
        # A record kept before is taken as saved (with the mirror it came from, which the
        # origins map no longer says once it has been written without it).
        for fn, record in {**previous, **before}.items()
        if fn not in published and fn in present and not any(fn in names for names in listed)
    }
    if not candidates:
        return {}
    allowed_names = allowed(dict(candidates))
    return {fn: record for fn, record in candidates.items() if fn in allowed_names}


def filters_allow(
    config: SiteConfig,
    channel: ChannelConfig,
    subdir: str,
    matcher: RecordMatcher,
    published: Mapping[str, Record],
) -> Allowed:
    """What the filters of the mirror each record came from (``Record.origin``) do not forbid:
    kept, or left out only by an allowlist or ``newest_versions``. A record of a mirror that
    no longer feeds ``subdir`` is forbidden; one whose mirror is unknown (an origins map lost)
    is judged by each feeding mirror, any of which may allow it. The ``published`` ``.conda``
    twin of a kept ``.tar.bz2`` is judged beside it, so ``formats: prefer-conda`` drops it."""
    feeding = {m.name: m for m in channel.mirrors if subdir in m.subdirs}

    def allowed(records: dict[str, Record]) -> set[str]:
        names: set[str] = set()
        for name, mirror in feeding.items():
            mine = {fn: r for fn, r in records.items() if r.origin in (name, "")}
            if not mine:
                continue
            twins = {
                twin: published[twin]
                for fn in mine
                if fn.endswith(TAR_BZ2_SUFFIX)
                and (twin := fn[: -len(TAR_BZ2_SUFFIX)] + CONDA_SUFFIX) in published
            }
            levels = config.filter_levels(channel, mirror)
            result = apply_filters({**twins, **mine}, subdir, levels, matcher)
            names.update(fn for fn in (*result.kept, *result.candidates) if fn in mine)
        return names

    return allowed


def judge_kept(
    site: Site,
    config: SiteConfig,
    channel: ChannelConfig,
    subdir: str,
    previous: Repodata | None,
    upstream: Sequence[Repodata | None],
    published: Mapping[str, Record],
    matcher: RecordMatcher,
) -> dict[str, Record] | None:
    """The files a subdir of a ``keep_removed`` channel keeps (none for another) when it
    publishes ``published`` in place of ``previous``, its mirrors' upstreams listing
    ``upstream``; None when the kept records cannot be read (then the subdir is held)."""
    if not channel.keep_removed:
        return {}
    directory = site.path(channel.path, subdir)
    before = read_kept(site.root, channel.path, subdir)
    if before is None:
        return None
    # A record read back from the publication does not say which mirror it came from: the
    # origins map written with it does.
    origins = load_origins(site, channel.path, subdir)
    dropped = {
        fn: replace(record, origin=origins.mirror_of(fn) or "")
        for fn, record in (previous.records if previous is not None else {}).items()
        if fn not in published
    }
    kept = kept_files(
        before,
        dropped,
        [repodata.records for repodata in upstream if repodata is not None],
        published,
        package_files(directory).keys(),
        filters_allow(config, channel, subdir, matcher, published),
    )
    kept = _without_credentials(channel, subdir, kept)
    log_kept(channel.path, subdir, len(kept))
    return kept


def _without_credentials(
    channel: ChannelConfig, subdir: str, kept: Mapping[str, Record]
) -> dict[str, Record]:
    """``kept`` but the records holding a credential of the URL of a mirror of ``channel``,
    each named in the log (the credential hidden); their files go."""
    searches = [search for m in channel.mirrors if (search := UpstreamSecrets.of(m).in_records)]
    clean = {}
    for fn, record in kept.items():
        holding = next((s for s in searches if s.in_record(fn, None, record.raw)), None)
        if holding is None:
            clean[fn] = record
        else:
            shown = holding.hide(fn)
            log.warning("%s/%s: %s is not kept: %s", channel.path, subdir, shown, REASON_SECRET)
    return clean


def log_kept(channel: str, subdir: str, count: int) -> None:
    """Say how many files a subdir keeps unlisted, when it keeps any."""
    if count:
        log.info(
            "%s/%s: keeps %d files its upstream no longer lists (keep_removed)",
            channel,
            subdir,
            count,
        )


def still_kept(site: Site, channel: ChannelConfig, subdir: str) -> dict[str, Record]:
    """The files a subdir keeps as the state says now: for the report of one not published
    this run (frozen, held, failed) and for ``sitegen status`` (none when they cannot be
    read)."""
    if not channel.keep_removed:
        return {}
    return read_kept(site.root, channel.path, subdir) or {}


class _Kept(msgspec.Struct, array_like=True):
    fn: str
    origin: str
    record: dict[str, Any]


_DECODER = msgspec.msgpack.Decoder(list[_Kept])


def read_kept(root: Path, channel_path: str, subdir: str) -> dict[str, Record] | None:
    """The records a channel subdir of the site at ``root`` keeps (none when it has no such
    file); None when they cannot be read: which unlisted files it keeps is then unknown."""
    path = kept_records_path(root, channel_path, subdir)
    try:
        entries = _DECODER.decode(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, msgspec.DecodeError) as exc:
        log.error("%s: unreadable (%s)", path, exc)
        return None
    return {e.fn: Record(e.fn, subdir, e.record, e.origin) for e in entries}


def save_kept(site: Site, channel_path: str, subdir: str, kept: Mapping[str, Record]) -> None:
    """Save (durably: a crash must not lose what a later prune spares) or remove the state."""
    path = kept_records_path(site.root, channel_path, subdir)
    if not kept:
        site.remove(path)
        return
    entries = [_Kept(fn, r.origin, r.raw) for fn, r in sorted(kept.items())]
    site.ensure_dir(path.parent)
    site.write_bytes(path, msgspec.msgpack.encode(entries))
