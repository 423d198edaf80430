"""The ``local`` source kind: a folder of package files that sitegen indexes itself.

``path: /srv/conda/incoming`` holds ``.conda`` and ``.tar.bz2`` files, either flat or in
``<subdir>/`` folders (both at once too); see :mod:`sitegen.sync.local_index`.
"""

from __future__ import annotations

from pathlib import PurePosixPath

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
