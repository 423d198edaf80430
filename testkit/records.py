"""Repodata records built by hand: for the tests of filters and of the dependency closure, and
for the benchmarks' synthetic channels (``bench/synthetic.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sitegen.conda.records import Record
from sitegen.conda.version import timestamp_ms

JAN_2024 = 1_704_067_200_000  # 2024-01-01T00:00Z in ms


def raw_record(
    name: str,
    version: str = "1.0",
    build: str = "0",
    *,
    depends: Iterable[str] = (),
    subdir: str = "linux-64",
    **extra: Any,
) -> dict[str, Any]:
    """The repodata entry of ``name-version-build`` in ``subdir``: 1000 bytes, MIT, built on
    2024-01-01; ``extra`` sets any other repodata field (or overrides these)."""
    raw: dict[str, Any] = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "subdir": subdir,
        "size": 1000,
        "sha256": "0" * 64,
        "license": "MIT",
        "timestamp": JAN_2024,
        "depends": list(depends),
    }
    raw.update(extra)
    return raw


def rec(
    name: str, version: str = "1.0", build: str = "0", *, ext: str = ".conda", **fields: Any
) -> Record:
    """``name-version-build<ext>``: :func:`raw_record` with ``fields`` (``depends``, ``subdir``
    or any other repodata field)."""
    raw = raw_record(name, version, build, **fields)
    return Record(fn=f"{name}-{version}-{build}{ext}", subdir=raw["subdir"], raw=raw)


def as_upstream(record: dict[str, Any]) -> dict[str, Any]:
    """A published record as upstream served it: the mirror adds only its CEP-47
    ``indexed_timestamp`` (an integer, never below the record's ``timestamp``)."""
    published = dict(record)
    stamp = published.pop("indexed_timestamp")
    assert type(stamp) is int and stamp >= timestamp_ms(published), record
    return published


def as_upstream_section(section: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """:func:`as_upstream` of every record of a ``packages`` or ``packages.conda`` map."""
    return {fn: as_upstream(record) for fn, record in section.items()}
