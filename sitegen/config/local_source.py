"""The ``local`` source kind: a folder of package files that sitegen indexes itself.

``path: /srv/conda/incoming`` holds ``.conda`` and ``.tar.bz2`` files, either flat or in
``<subdir>/`` folders (both at once too); see :mod:`sitegen.sync.local_index`.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from sitegen.config.model import MirrorConfig
from sitegen.config.yaml_nodes import YamlNode

KIND = "local"


def parse_path(node: YamlNode) -> str:
    """The folder as written: absolute, so that it means the same to cron, systemd and a
    shell (the site's ``output`` is resolved against channels.yaml, a source is not)."""
    path = node.string()
    if not PurePosixPath(path).is_absolute():
        raise node.error(f"path must be absolute, got {path!r}")
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
    site = output.resolve()
    if not Path(mirror.url).resolve().is_relative_to(site):
        return None
    return (
        f"its folder {mirror.url} is inside the site directory {output}, which the web server"
        " serves whole (a file dropped there would be served unchecked); keep it outside"
    )
