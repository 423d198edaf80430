"""Package identities across ecosystems: package URLs (https://github.com/package-url/purl-spec)
and OSV ecosystem names, reduced to one comparable key per package.

A key is the conda package name itself (lower-cased) for conda packages, and
``<purl type>/<namespace>/<name>`` for packages of other ecosystems (``pypi/requests``,
``npm/@babel/core``, ``maven/org.yaml/snakeyaml``). Conda names hold no ``/``, so the two never
meet. Names are normalised as their ecosystem compares them: PyPI's by PEP 503 (case-insensitive,
``-``, ``_`` and ``.`` alike), those of the case-insensitive registries lower-cased, the rest as
written. A key never holds a version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from packageurl import PackageURL

from sitegen.config.yaml_nodes import shown_reason, shown_value

# OSV ecosystem (https://ossf.github.io/osv-schema/#affectedpackage-field) -> purl type, for
# those with a registered purl type. Advisories of the others (Linux distributions, whose
# versions are no conda versions, among them) cannot be joined with a purl mapping.
ECOSYSTEM_TYPES = {
    "PyPI": "pypi",
    "npm": "npm",
    "crates.io": "cargo",
    "Go": "golang",
    "Maven": "maven",
    "NuGet": "nuget",
    "RubyGems": "gem",
    "Packagist": "composer",
    "Hex": "hex",
    "Pub": "pub",
    "CRAN": "cran",
    "Hackage": "hackage",
    "SwiftURL": "swift",
}
PURL_TYPES = frozenset(ECOSYSTEM_TYPES.values())
# The schema spells each ecosystem one way, but no two differ only in case: an advisory written
# by hand with "pypi" or "NPM" names those packages, where left unread it would block nothing.
_ECOSYSTEM_TYPES_FOLDED = {name.casefold(): kind for name, kind in ECOSYSTEM_TYPES.items()}

# Registries whose names are case-insensitive (the purl spec lower-cases them).
_CASE_INSENSITIVE = frozenset(
    {"conda", "npm", "github", "bitbucket", "cargo", "nuget", "composer", "hex", "pub"}
)
_PEP503 = re.compile(r"[-_.]+")


class PurlError(ValueError):
    """Text that is not a package URL."""


@dataclass(frozen=True)
class Purl:
    type: str
    key: str  # see the module docstring
    version: str | None


def parse_purl(text: str) -> Purl:
    """The type, key and version of a package URL (qualifiers and subpath dropped)."""
    # The spec lower-cases the scheme before comparing it with "pkg" (URL schemes are
    # case-insensitive); packageurl-python compares it as written, so it is given "pkg:".
    if text[:4].lower() != "pkg:":
        raise PurlError(f"not a package URL: {shown_value(text)}")
    try:
        purl = PackageURL.from_string("pkg:" + text[4:])
    except ValueError as exc:
        # The library's reason quotes the text: cut, as a long one would flood the message.
        raise PurlError(f"invalid package URL: {shown_reason(str(exc))}") from None
    path = f"{purl.namespace}/{purl.name}" if purl.namespace else purl.name
    return Purl(purl.type, package_key(purl.type, path), purl.version)


def package_key(kind: str, name: str) -> str:
    """The key of package ``name`` (with its namespace, ``/``-separated) of purl type
    ``kind``."""
    if kind == "conda":
        # pkg:conda/<channel>/<name> has been written too: the name is the last part.
        return name.rsplit("/", 1)[-1].lower()
    if kind == "pypi":
        name = _PEP503.sub("-", name).lower()
    elif kind in _CASE_INSENSITIVE:
        name = name.lower()
    return f"{kind}/{name}"


def ecosystem_key(ecosystem: str, name: str) -> str | None:
    """The key of an OSV ``{ecosystem, name}`` package (the ecosystem in any case); None for an
    ecosystem without a purl type."""
    kind = _ECOSYSTEM_TYPES_FOLDED.get(ecosystem.split(":")[0].casefold())
    if kind is None:
        return None
    if kind == "maven":
        name = name.replace(":", "/")  # OSV writes group:artifact, purl group/artifact
    return package_key(kind, name)


def may_name_conda(package: Any) -> bool:
    """Whether an OSV entry's ``package`` whose identity could not be read may still name a
    conda package, read as leniently as can be: its ecosystem says conda, its purl is of type
    conda, of no type or no purl at all, or either is no text (or the package no object)."""
    if type(package) is not dict:
        return True
    ecosystem, purl = package.get("ecosystem"), package.get("purl")
    if ecosystem is not None and (
        type(ecosystem) is not str or ecosystem.lower().startswith("conda")
    ):
        return True
    if purl is None:
        return False
    if type(purl) is not str or purl[:4].lower() != "pkg:":
        return True
    return purl[4:].lstrip("/").split("/")[0].lower() in ("conda", "")
