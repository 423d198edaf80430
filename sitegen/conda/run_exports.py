"""CEP-12 ``run_exports.json``: each package file's run_exports, beside ``repodata.json``.

Build tools (rattler-build, conda-build, pixi build) read it to learn what a dependency exports
to the packages built against it without downloading the dependency. Its shape mirrors
repodata's::

    {"info": {"subdir": ..., "version": 1},
     "packages": {"<fn>.tar.bz2": {"run_exports": {...}}},
     "packages.conda": {"<fn>.conda": {"run_exports": {...}}}}

where ``{...}`` holds any of :data:`KINDS`, each a list of match specs, and is ``{}`` for a
package that exports nothing. A client that finds no entry for a file (or no file) reads the
package itself, so an entry left out costs a download, never a wrong build: what upstream
serves is untrusted, and an entry that is not what CEP-12 defines is left out, counted by
reason. Entries are held as their canonical JSON text (one object per distinct text: most
packages of a channel export the same few things), so a channel's worth costs little memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from sitegen.conda.record_secrets import SecretSearch
from sitegen.conda.schema import PACKAGES, PACKAGES_CONDA, RECORD_SECTIONS, section_of

RUN_EXPORTS_FILE = "run_exports.json"
RUN_EXPORTS_VERSION = 1  # CEP-12's info.version, as conda-index writes it
KINDS = frozenset({"weak", "strong", "noarch", "weak_constrains", "strong_constrains"})
MAX_ENTRY = 64 << 10  # bytes of one entry's JSON: a package's run_exports are a few specs
EMPTY = b"{}"
# A run_exports.json (decompressed) larger than this is refused unread: it holds an entry of a
# hundred bytes or so per package file (a fifth of repodata's), so this is several times the
# largest channel's, and far less than a hostile one could make the run hold.
MAX_RUN_EXPORTS_BYTES = 512 << 20

REASON_NOT_OBJECT = "not an object with a run_exports object"
REASON_UNKNOWN_KIND = "a kind of run_exports CEP-12 does not define"
REASON_NOT_SPECS = "not a list of strings"
REASON_WRONG_SECTION = "listed in the other format's section"
REASON_TOO_LARGE = f"more than {MAX_ENTRY} bytes"
REASON_SECRET = "holds a credential of the mirror's URL"

_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder(order="sorted")


class RunExportsError(ValueError):
    """A ``run_exports.json`` that is not one at all (not JSON, not shaped like CEP-12's)."""


class RunExports(msgspec.Struct):
    """What a ``run_exports.json`` says that can be published: file name -> the canonical
    JSON of its run_exports, and how many entries were left out, by reason."""

    entries: dict[str, bytes]
    dropped: dict[str, int]


def parse_run_exports(data: bytes, secrets: SecretSearch | None = None) -> RunExports:
    """The entries of a ``run_exports.json``; raises :class:`RunExportsError` when the document
    itself is broken. ``secrets``: values no published entry may hold (an entry that does is
    left out)."""
    try:
        document = _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise RunExportsError(f"not JSON: {exc}") from None
    if type(document) is not dict:
        raise RunExportsError("not a JSON object")
    sections = [document.get(section, {}) for section in RECORD_SECTIONS]
    if not all(type(section) is dict for section in sections):
        raise RunExportsError(f"{PACKAGES} or {PACKAGES_CONDA} is not a JSON object")
    entries: dict[str, bytes] = {}
    dropped: Counter[str] = Counter()
    shared: dict[bytes, bytes] = {EMPTY: EMPTY}
    for section, listed in zip(RECORD_SECTIONS, sections, strict=True):
        for fn, value in listed.items():
            encoded = _entry(fn, section, value, secrets)
            if isinstance(encoded, str):
                dropped[encoded] += 1
            else:
                entries[fn] = shared.setdefault(encoded, encoded)
    return RunExports(entries, dict(dropped))


def _entry(fn: str, section: str, value: Any, secrets: SecretSearch | None) -> bytes | str:
    """An entry's run_exports as canonical JSON, or why it is left out."""
    if section_of(fn) != section:
        return REASON_WRONG_SECTION
    return _exports(value.get("run_exports") if type(value) is dict else None, secrets)


def _exports(exports: Any, secrets: SecretSearch | None) -> bytes | str:
    """run_exports as canonical JSON, or why they are not what CEP-12 defines."""
    if type(exports) is not dict:
        return REASON_NOT_OBJECT
    for kind, specs in exports.items():
        if kind not in KINDS:
            return REASON_UNKNOWN_KIND
        if type(specs) is not list or not all(type(spec) is str for spec in specs):
            return REASON_NOT_SPECS
    if secrets and secrets.holds(exports):
        return REASON_SECRET
    encoded = _ENCODER.encode(exports)
    return REASON_TOO_LARGE if len(encoded) > MAX_ENTRY else encoded


def entry_of(exports: Any) -> bytes | None:
    """The canonical JSON of run_exports read from a package's ``info/run_exports.json``, or
    None when it is not what CEP-12 defines. conda-build wrote a bare list for the weak ones."""
    if type(exports) is list:
        exports = {"weak": exports}
    encoded = _exports(exports, None)
    return encoded if isinstance(encoded, bytes) else None


def encode_run_exports(subdir: str, entries: Mapping[str, bytes], files: Iterable[str]) -> bytes:
    """The ``run_exports.json`` of ``files`` (those published), with the entries known for
    them, sorted by file name."""
    parts: dict[str, list[bytes]] = {section: [] for section in RECORD_SECTIONS}
    for fn in sorted(files):
        entry = entries.get(fn)
        if entry is not None:
            key = _ENCODER.encode(fn)
            parts[section_of(fn)].append(key + b':{"run_exports":' + entry + b"}")
    info = _ENCODER.encode({"subdir": subdir, "version": RUN_EXPORTS_VERSION})
    return b"".join(
        (
            b'{"info":',
            info,
            b',"packages":{',
            b",".join(parts[PACKAGES]),
            b'},"packages.conda":{',
            b",".join(parts[PACKAGES_CONDA]),
            b"}}",
        )
    )


def listed_files(data: bytes) -> set[str]:
    """The file names a published ``run_exports.json`` has entries for; raises
    :class:`RunExportsError` when it is not one, or when one of its entries is not sound."""
    parsed = parse_run_exports(data)
    if parsed.dropped:
        reason = next(iter(parsed.dropped))
        raise RunExportsError(f"{sum(parsed.dropped.values())} entries are not sound ({reason})")
    return set(parsed.entries)
