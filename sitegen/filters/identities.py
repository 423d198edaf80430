"""Which upstream packages a conda package is: a mapping of conda names to package URLs, read
offline, so that advisories of other ecosystems (PyPI, npm...) can name conda packages.

A mapping file is one of:

- ``{"<conda name>": ["pkg:pypi/<name>", ...], ...}``: written by hand or reduced from another
  source;
- prefix-dev/purl-associator's records, as a JSON list (``[{"name": ..., "purl": ...,
  "alternative_purls": [...], "identities": [...]}, ...]``) or as its published bundle
  (``{"schema_version": 4, "packages": {"<conda name>": {record}, ...}}``). A record's
  primary ``purl`` (unless ``unmapped`` is true), its ``alternative_purls`` (strings or objects
  with a ``purl``) and the ``purl`` entries of its ``identities`` all count; CPEs are not
  package URLs and are passed over.

A version in a mapping's purl is ignored: a mapping names packages, the record names the
version. Files are validated when the configuration is loaded, like advisory files: a bad one is
a :class:`~sitegen.filters.json_nodes.JsonFileError` naming the file and JSON path.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from sitegen.conda.version import InvalidVersionError, parse_version
from sitegen.filters.json_nodes import JsonNode, load_json, read_json_bytes
from sitegen.filters.purls import PurlError, parse_purl

# purl-associator's bundle of all of conda-forge, identities with their provenance, is tens of
# megabytes; a mapping reduced to names and purls is a few.
MAX_MAPPING_BYTES = 128 * 1024 * 1024

NameKeys = dict[str, set[str]]  # conda name (lower-cased) -> package keys


def read_mapping(file: Path) -> NameKeys:
    """Conda name -> the keys (:func:`sitegen.filters.purls.package_key`) of its purls."""
    data = read_json_bytes(file, MAX_MAPPING_BYTES)
    return parse_mapping(JsonNode(load_json(data, file), "", file))


def parse_mapping(node: JsonNode) -> NameKeys:
    out: NameKeys = {}
    if isinstance(node.value, list):
        for item in node.items():
            _record(item, item.require("name").string(), out)
        return out
    node.object()
    packages = node.get("packages")
    if packages is not None and isinstance(packages.value, dict):
        # purl-associator's bundle: records by name (a record may repeat its name).
        for name, record in packages.entries():
            _record(record, name, out)
        return out
    for name, purls in node.entries():
        if not name:
            raise node.error("a conda package name is a non-empty string")
        _add(out, name, purls.items())
    return out


def _record(node: JsonNode, name: str, out: NameKeys) -> None:
    """One purl-associator record."""
    node.object()
    purls: list[JsonNode] = []
    primary = node.get("purl")
    unmapped = node.get("unmapped")
    if unmapped is not None and not isinstance(unmapped.value, bool):
        raise unmapped.error("expected true or false")
    if primary is not None and not (unmapped is not None and unmapped.value):
        purls.append(primary)
    alternatives = node.get("alternative_purls")
    for item in alternatives.items() if alternatives else ():
        purls.append(item.require("purl") if isinstance(item.value, dict) else item)
    identities = node.get("identities")
    for item in identities.items() if identities else ():
        if item.require("kind").string() == "purl":
            purls.append(item.require("value"))
    _add(out, name, purls)


def _add(out: NameKeys, name: str, purls: Iterable[JsonNode]) -> None:
    keys = out.setdefault(name.lower(), set())
    for purl in purls:
        try:
            keys.add(parse_purl(purl.string()).key)
        except PurlError as exc:
            raise purl.error(str(exc)) from None


def record_purls(raw: dict[str, object]) -> tuple[tuple[str, str | None], ...]:
    """(key, version) of the package URLs a repodata record carries itself (CEP draft #63
    ``purls``); upstream metadata, so what is not a package URL is passed over, and a version
    conda cannot read is dropped (the record's own version stands in)."""
    purls = raw.get("purls")
    if not isinstance(purls, list):
        return ()
    found = (_record_purl(text) for text in purls if isinstance(text, str))
    return tuple(purl for purl in found if purl is not None)


@lru_cache(maxsize=1 << 16)
def _record_purl(text: str) -> tuple[str, str | None] | None:
    # Builds of one package repeat the same purls: parse each text once.
    try:
        purl = parse_purl(text)
    except PurlError:
        return None
    if purl.version is not None:
        try:
            parse_version(purl.version)
        except InvalidVersionError:
            # Not comparable with an advisory's ranges: the purl still names the package,
            # and the record's own version is compared, as for a purl without one.
            return purl.key, None
    return purl.key, purl.version
