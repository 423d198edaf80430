"""An OSV advisory for the example channel's zlib, as an operator would write one, and the
feed archives that carry such advisories."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sitegen.filters.osv import Advisory, Affected
from testkit.site import CHANNEL

# The example channel's zlib builds that zlib_advisory() blocks.
OLD_ZLIB = {"zlib-1.2.13-h446ffa6_0.conda", "zlib-1.2.13-h446ffa6_0.tar.bz2"}
# The example channel's newest zlib builds, which zlib_advisory() lets through by default.
NEW_ZLIB = {"zlib-1.3.1-hecd8fb3_0.conda", "zlib-1.3.1-hecd8fb3_0.tar.bz2"}
# Where a test's feed server serves the feed written to ``<its root>/conda/all.zip``.
FEED_PATH = "/conda/all.zip"
# Advisory files in the OSV format, as advisory databases publish them (tests/data/osv).
DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "osv"
# The CVSS v3 vector of the requests advisory in DATA (GHSA-j8r2-6x86-q33q), scoring 6.1.
V3_REQUESTS = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"


def zlib_advisory(fixed: str = "1.3.1") -> dict[str, Any]:
    """A critical (CVSS 9.8) advisory affecting zlib below ``fixed``."""
    return {
        "id": "TEST-ZLIB-1",
        "aliases": ["CVE-2022-37434"],
        "summary": "heap overflow in inflateGetHeader",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [
            {
                "package": {"purl": "pkg:conda/zlib"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
    }


def advisory(affected: list[dict], **fields: object) -> dict:
    """An OSV advisory TEST-1 with ``affected`` entries and any other ``fields``."""
    return {"id": "TEST-1", "affected": affected, **fields}


def conda(name: str, *ranges: dict, versions: tuple[str, ...] = ()) -> dict:
    """An affected entry for conda package ``name`` with these ranges and listed versions."""
    entry: dict = {"package": {"purl": f"pkg:conda/{name}"}, "ranges": list(ranges)}
    if versions:
        entry["versions"] = list(versions)
    return entry


def ecosystem(*events: dict, kind: str = "ECOSYSTEM") -> dict:
    """A range of ``kind`` made of these events (``{"introduced": "1.0"}``...)."""
    return {"type": kind, "events": list(events)}


def write_zlib_advisory(path: Path, fixed: str = "1.3.1") -> None:
    path.write_text(json.dumps(zlib_advisory(fixed)))


def write_feed(
    path: Path, advisories: list[dict[str, Any]], extra: dict[str, bytes] | None = None
) -> bytes:
    """An OSV feed as OSV publishes one (``all.zip``: one ``<id>.json`` member per advisory),
    with ``extra`` members (name -> bytes) after them; returns the archive's bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for advisory in advisories:
            archive.writestr(f"{advisory['id']}.json", json.dumps(advisory))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def write_zip(members: dict[str, bytes | str]) -> bytes:
    """A zip archive holding ``members`` (name -> content), as bytes: a feed whatever it holds."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def affected_entry(advisory: Advisory, name: str | Iterable[str], version: str) -> Affected | None:
    """The entry of ``advisory`` naming this package version, or None: the first of those naming
    the package (:meth:`~sitegen.filters.osv.Advisory.entries_for`) that holds the version."""
    return next((e for e in advisory.entries_for(name) if e.contains(version)), None)


def feed_site(
    tmp_path: Path, feed_url: str, upstream_url: str, *, retries: int = 1
) -> tuple[Path, Path]:
    """The site and the channels.yaml of the example channel (``CHANNEL`` of testkit.site, from
    ``upstream_url``) filtered by the advisory feed at ``feed_url``, a request tried ``retries``
    more times."""
    site = tmp_path / "site"
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"""\
output: {site}
download: {{retries: {retries}, timeout: 5}}
filters:
  advisories: {{feeds: ['{feed_url}']}}
channels:
  {CHANNEL}:
    url: {upstream_url}
    subdirs: [linux-64]
"""
    )
    return site, config
