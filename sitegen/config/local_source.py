"""The ``local`` source kind: a folder of package files that sitegen indexes itself.

``path: /srv/conda/incoming`` holds ``.conda`` and ``.tar.bz2`` files, either flat or in
``<subdir>/`` folders (both at once too); see :mod:`sitegen.sync.local_index`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from sitegen.config.model import LINK_LOOP, ChannelConfig, MirrorConfig, real_path
from sitegen.config.yaml_nodes import YamlNode, shown_value

KIND = "local"


def parse_path(node: YamlNode) -> str:
    """The folder as written: absolute, so that it means the same to cron, systemd and a
    shell (the site's ``output`` is resolved against channels.yaml, a source is not)."""
    path = node.path_text()
    if not PurePosixPath(path).is_absolute():
        raise node.error(f"path must be absolute, got {shown_value(path)}")
    if "\x00" in path:
        raise node.error("path holds a NUL character")
    return path.rstrip("/") or "/"


def folder_in_site(mirror: MirrorConfig, output: Path) -> str | None:
    """Why a local source's folder cannot be where it is, the site being at ``output``; None
    when it can. The web server serves the site directory whole, so a folder inside it would
    have every file dropped there served as it is: a package refused as broken or hostile,
    and those of a private channel without a token."""
    if mirror.kind != KIND:
        return None
    folder = real_path(Path(mirror.url))
    if folder is None:
        return f"its folder {mirror.url} cannot be resolved: {LINK_LOOP}"
    site = real_path(output)
    if site is None or not folder.is_relative_to(site):
        return None
    return (
        f"its folder {mirror.url} is inside the site directory {output}, which the web server"
        " serves whole (a file dropped there would be served unchecked); keep it outside"
    )


def folders_moved_from(
    channels: Iterable[ChannelConfig],
) -> list[tuple[ChannelConfig, MirrorConfig, str]]:
    """The ``move: true`` local sources whose folder another local source reads too (the
    same folder, one inside it or one holding it), each with why that cannot be. The files
    such a source moves into its own store leave the folder for every reader: another channel
    would lose each package moved. Each pair is reported once, on the mover
    listed last when both move."""
    mirrors = [(c, m) for c in channels for m in c.mirrors if m.kind == KIND]
    found = []
    for index, (channel, mirror) in enumerate(mirrors):
        for other_channel, other in mirrors[:index]:
            if mirror.move:
                why = _shared(mirror, other, other_channel)
                at = (channel, mirror)
            elif other.move:
                why = _shared(other, mirror, channel)
                at = (other_channel, other)
            else:
                continue
            if why is not None:
                found.append((*at, why))
    return found


def _shared(mover: MirrorConfig, reader: MirrorConfig, channel: ChannelConfig) -> str | None:
    # Resolved, as a link can give one folder two names; scan_folder reads a folder's top and
    # its <subdir>/ folders, so only folders nested one in the other can share files.
    moving, reading = real_path(Path(mover.url)), real_path(Path(reader.url))
    if moving is None or reading is None:  # a loop: refused on its own (folder_in_site)
        return None
    if moving == reading:
        where = "the same folder"
    elif reading.is_relative_to(moving):
        where = f"{reader.url}, inside it"
    elif moving.is_relative_to(reading):
        where = f"{reader.url}, which holds it"
    else:
        return None
    return (
        f"move: true takes the packages it publishes out of its folder {mover.url}, and mirror"
        f" {reader.name!r} of channel {channel.path!r} (line {reader.line}) reads {where}:"
        " each package moved would be gone from that mirror too; keep a moving source's"
        " folder apart from every other source's"
    )
