"""``sitegen verify`` over a published subdir's origins map (:mod:`sitegen.store.origins`):
which mirror supplied each file its ``repodata.json`` lists.

The pull-through fetcher fetches a missing file of a passive mirror from the mirror the map
names for it (any file of a channel with one mirror from that mirror), and ``--repair`` fetches
a missing or corrupt file from there too. A map that cannot be read, or that names no mirror
of the channel for a listed file (lost, an entry dropped, a mirror channels.yaml no longer
gives the channel), leaves such a file with nowhere to come from. A lost map of a channel with
one mirror leaves every file its mirror, but not where that mirror's packages live (CEP-15's
``base_url``, which the map keeps): every run writes a map, so one missing is reported too.
Which mirror supplied what is upstream's to say, and a run writes the map again, so the report
names the run. The maps ``--repair`` writes are those of a channel fed by one mirror: every
file is that mirror's, and where it keeps its packages is known without upstream. A local
source's folder has no ``base_url``: its map is written again whatever is wrong with it. A remote
mirror's map is written again when it is lost or unreadable (one that names another mirror may be
that of a channel fed by more mirrors before); its ``base_url`` is in the copy of its
repodata the last run that fetched it kept (:mod:`sitegen.net.upstream_cache`), read as that run
read it. Without a sound copy the map is left to the run. A map wider than the publication (a
run killed while it published) is sound: only the listed files are judged.
"""

from __future__ import annotations

import os
from collections.abc import Collection

import msgspec

from sitegen.conda.schema import UPSTREAM_INFO_DECODER
from sitegen.config import ChannelConfig, MirrorConfig
from sitegen.layout import origins_path, upstream_cache_dir
from sitegen.net.failures import UpstreamError
from sitegen.net.upstream_cache import HIDDEN, UNESCAPED, UpstreamCache
from sitegen.net.upstream_secrets import UpstreamSecrets
from sitegen.net.zstd_body import decode_body
from sitegen.store.interface import SiteStorage
from sitegen.store.origins import Origins, read_origins, write_origins
from sitegen.sync.local import is_local
from sitegen.tools.verify_channel import Found, run_command


def origins_problems(
    site: SiteStorage,
    channel: ChannelConfig,
    subdir: str,
    listed: Collection[str],
    frozen: bool,
    repair: bool,
) -> tuple[Origins, list[Found]]:
    """The subdir's origins map (empty when it is lost or cannot be read) and what is wrong
    with it for the files ``listed``; with ``repair``, a map that can be known without
    upstream is written again."""
    path = origins_path(site.root, channel.path, subdir)
    relative = path.relative_to(site.root).as_posix()
    unreadable = ""
    try:
        origins = read_origins(path)
    except FileNotFoundError:
        origins, unreadable = Origins(), "missing"
    except (OSError, msgspec.DecodeError) as exc:
        origins, unreadable = Origins(), f"cannot be read ({exc})"
    mirrors = {mirror.name for mirror in channel.mirrors}
    # As the fetcher resolves a file: the mirror named, or a channel's only one.
    only = channel.mirrors[0].name if len(channel.mirrors) == 1 else None
    named = origins.files.get
    nowhere = sorted(fn for fn in listed if (named(fn) or only) not in mirrors)
    if not nowhere and not unreadable:
        return origins, []
    why = [unreadable] if unreadable else []
    if nowhere:
        some = f"{len(nowhere)} files, e.g. {nowhere[0]}" if len(nowhere) > 1 else nowhere[0]
        why.append(f"names no mirror of the channel for {some} (listed in repodata.json)")
    elif only is not None:
        why.append("where the mirror keeps its packages (CEP-15 base_url) is lost with it")
    detail = (
        "; ".join(why) + "; the pull-through fetcher and --repair fetch each file from the"
        f" mirror it names: run {run_command(channel, frozen)}"
    )
    if not repair or only is None or (nowhere and not is_local(channel.mirrors[0])):
        # Reported only. A remote mirror's readable map that names another mirror for a
        # listed file is that of a channel fed by more mirrors before: which of them supplied
        # the file is not known here.
        return origins, [(relative, "metadata", detail, False)]
    mirror = channel.mirrors[0]
    if is_local(mirror):
        # Every file is the local source's, and a folder has no base_url: nothing upstream
        # knows better.
        bases: dict[str, str] = {}
    else:
        sound, base_url = kept_base_url(site, mirror, subdir)
        if not sound:
            return origins, [(relative, "metadata", detail, False)]
        bases = {} if base_url is None else {mirror.name: base_url}
        copy = upstream_cache_dir(site.root, mirror.name, subdir).relative_to(site.root)
        said = "sets a CEP-15 base_url" if base_url is not None else "sets no base_url"
        why.append(f"written again from the copy of upstream's repodata in {copy} (it {said})")
    # As a run writes it, the map names each file's mirror.
    origins = Origins(dict.fromkeys(listed, mirror.name), bases)
    write_origins(site, channel.path, subdir, origins.files, origins.package_bases)
    return origins, [(relative, "metadata", "; ".join(why), True)]


def kept_base_url(site: SiteStorage, mirror: MirrorConfig, subdir: str) -> tuple[bool, str | None]:
    """Where upstream keeps the packages of ``mirror``'s ``subdir`` (CEP-15's base_url, None
    when it sets none) as a run writes it in the origins map, from the copy of upstream's
    repodata the run kept: (True, it), or (False, None) without a copy that says it soundly."""
    cache = UpstreamCache(site)
    validators = cache.validators(mirror.name, subdir)
    body = cache.body(mirror.name, subdir)
    if validators is None or body is None:
        return False, None
    if any(name not in os.environ for name in mirror.secret_env):
        return False, None  # the secrets of its URL could be neither filled in nor hidden
    secrets = UpstreamSecrets.of(mirror)
    form = cache.hidden_form(mirror.name, subdir)
    if form == UNESCAPED and secrets:
        # The references an earlier sitegen wrote are not told apart from upstream's own
        # text (see upstream_secrets): the next run fetches it whole again.
        return False, None
    try:
        data = decode_body(validators.variant, body)
        del body
        info = UPSTREAM_INFO_DECODER.decode(secrets.reveal(data) if form == HIDDEN else data).info
    except (UpstreamError, msgspec.DecodeError):
        return False, None
    info = info or {}
    if not isinstance(info, dict):  # repodata no run parses
        return False, None
    # As a run keeps it (see sitegen.sync.fetch): a string, the secrets as their references.
    base_url = info.get("base_url")
    return True, secrets.hide_text(base_url) if isinstance(base_url, str) else None
