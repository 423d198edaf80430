"""What an incremental render keeps between runs, in ``<site>/.sitegen/render/manifest.json``.

Every page has an *input key*: a hash of exactly the data it shows, the templates and the site
title. A page whose key did not change (and whose file exists) is neither computed nor written.
A channel whose metadata files did not change is skipped as a whole (its ``signature``); the
:class:`PackageFacts` of each of its packages are kept until the package's records change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from sitegen.web.facts import PackageFacts

# Bump when the page models change shape, or what pages make of the same inputs, so every page
# is rendered again (and the facts kept per package are computed again).
RENDER_VERSION = "5"
MANIFEST_VERSION = 4


def digest(*parts: Any) -> str:
    """A hash of ``parts`` (bytes as they are, anything else as JSON), each delimited."""
    hasher = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else msgspec.json.encode(part)
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


def package_key(
    global_key: str,
    channel: str,
    name: str,
    known: KnownPackage,
    entry: Any,
    names: Mapping[str, str],
    stored: list[str] | None = None,
    downloads: Any = None,
) -> str:
    """The input key of a package page: its records (by fingerprint), the pages its
    dependencies link to (``names``: :func:`sitegen.web.package.page_names` of the channel),
    its channeldata.json entry, in a channel fed by
    a passive mirror which of its files are stored (``subdir/fn``; None elsewhere) and, while
    the site has download statistics, its downloads (None without)."""
    # The names of the pages linked to: a dependency's page renamed (``foo`` published as
    # ``Foo`` now) changes the link.
    linked = [names[dep] for dep in known.facts.dependencies if dep in names]
    inputs: list[Any] = ["package.html", channel, name, known.fingerprint, linked, entry]
    if stored is not None:
        inputs.append(stored)
    if downloads is not None:
        inputs.append({"downloads": downloads})
    return digest(global_key, inputs)


class KnownPackage(NamedTuple):
    """A package as the last render saw it: the fingerprint of its records, their facts."""

    fingerprint: str
    facts: PackageFacts


class ChannelState(msgspec.Struct):
    """A channel at the last render: the signature of its inputs (metadata files, channel
    configuration), its summary, its pages and its packages."""

    signature: str
    summary: dict[str, Any]
    pages: list[str]
    names_key: str  # the global key the names were computed under
    names: dict[str, KnownPackage]


class FeedState(msgspec.Struct):
    """The feed groups of a finished run, valid while its record file has this ``stamp`` and
    the public pages show the same channels of it (``shown``: see sitegen.web.private)."""

    stamp: list[int]
    groups: list[tuple[str, str, str, list[str], int]]  # channel, name, version, files, more
    shown: list[str] = []


class Manifest(msgspec.Struct):
    version: int = MANIFEST_VERSION
    pages: dict[str, str] = {}  # relpath -> input key
    channels: dict[str, ChannelState] = {}
    feed: dict[str, FeedState] = {}  # run id -> its feed groups


def load_manifest(path: Path) -> Manifest:
    """The manifest of the last render; an empty one when there is none (or none of this
    version, or a damaged one): everything is rendered then."""
    try:
        manifest = msgspec.json.decode(path.read_bytes(), type=Manifest)
    except (OSError, msgspec.DecodeError):  # also msgspec.ValidationError
        return Manifest()
    return manifest if manifest.version == MANIFEST_VERSION else Manifest()
