"""Conda version ordering and MatchSpec matching over plain repodata records.

py-rattler supplies the semantics (the implementation pixi and rattler-build use), so
``1.0a1 < 1.0 < 1.0.post1``, ``1.2.*``, ``>=1.2,<2``, ``|`` and build-string globs behave
exactly as conda clients expect. This module adapts it to records kept as plain dicts, and
matches a spec's ``license`` and ``license_family`` itself, as conda does (rattler compares
them exactly).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import cache, lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sitegen.conda import spec_licenses
from sitegen.conda.spec_licenses import licences_match, split_canonical, unreadable_licence

if TYPE_CHECKING:
    from rattler import MatchSpec, PackageRecord, Version, VersionSpec

    # A spec without its license keys, for rattler, and those keys as (key, pattern).
    _Split = tuple[MatchSpec, tuple[tuple[str, str], ...]]


class InvalidSpecError(ValueError):
    """A MatchSpec or version string that conda would not accept."""


class InvalidVersionError(ValueError):
    """A record version that does not parse as a conda version."""


@cache
def rattler() -> ModuleType:
    """py-rattler, imported when a spec, version or record is first parsed: importing it takes
    ~0.2 s, which a command that loads channels.yaml without specs (``sitegen status``,
    ``sitegen mirror --due`` with nothing due) would otherwise spend at every start. A call
    here costs far less than an import statement in a function that runs once per record."""
    import rattler as module

    return module


# Timestamps above this are milliseconds (year 9999 in seconds), as conda-index decides it.
MAX_SECONDS = 253402300799


# A build number of 20 digits or more in a spec's brackets: rattler panics on one beyond 64 bits
# (an exception outside Exception, after printing the panic), so it is refused beforehand.
_HUGE_BUILD_NUMBER = re.compile(r"build_number[^\],]*\d{20}")


@lru_cache(maxsize=1 << 20)
def parse_matchspec(text: str) -> MatchSpec:
    return read_matchspec(text)


def read_matchspec(text: str) -> MatchSpec:
    """:func:`parse_matchspec` without its cache, for a spec used once: a MatchSpec holds
    native memory, and one kept among a run's records keeps their pages from going back."""
    if _HUGE_BUILD_NUMBER.search(text):
        raise InvalidSpecError(f"{text!r}: build number beyond 64 bits")
    module = rattler()  # outside the try: a failed import is no invalid spec
    try:
        return module.MatchSpec(text, strict=False)
    except Exception as exc:  # rattler raises its own exception classes
        raise InvalidSpecError(str(exc)) from None
    except BaseException as exc:  # a panic in rattler (pyo3's PanicException) is an error too
        if type(exc).__name__ != "PanicException":
            raise
        raise InvalidSpecError(f"{text!r}: rattler could not parse it ({exc})") from None


# The dependency spec strings rattler has read, and those it refused, in records checked so far.
# Records share their specs (~50,000 distinct strings among conda-forge's 800,000 records):
# each is parsed once, and a record whose specs were all met before is judged by one C-level
# set look-up. Truth values only, no MatchSpec kept: 50,000 of those would hold native memory
# for nothing.
_readable_specs: set[str] = set()
_unreadable_specs: set[str] = set()
# The same for record versions (~4,000 distinct among conda-forge's 800,000 records).
_readable_versions: set[str] = set()


def readable_specs(specs: Collection[str]) -> bool:
    """Whether rattler reads each of the dependency specs of a record or several (``depends``
    or ``constrains``, text) as a MatchSpec, leniently, as clients read repodata
    (``numpy 1.2 py3*_0`` is ``numpy ==1.2 py3*_0``). One it cannot read makes mamba fail to
    load the whole subdir (or shard), rattler fail the solve, and conda fail on the record."""
    if _readable_specs.issuperset(specs):
        return True
    for text in set(specs).difference(_readable_specs):
        if text in _unreadable_specs:
            return False
        try:
            read_matchspec(text)
        except InvalidSpecError:
            _unreadable_specs.add(text)
            return False
        _readable_specs.add(text)
    return True


def readable_versions(texts: Collection[str]) -> bool:
    """Whether rattler reads each of these record versions (remembered for those it does)."""
    if _readable_versions.issuperset(texts):
        return True
    for text in set(texts).difference(_readable_versions):
        try:
            parse_version(text)
        except InvalidVersionError:
            return False
        _readable_versions.add(text)
    return True


@lru_cache(maxsize=1 << 16)
def parse_version_spec(text: str) -> VersionSpec | None:
    """A version constraint such as ``>=1.2,<2``; None when rattler does not accept it."""
    return read_version_spec(text)


def read_version_spec(text: str) -> VersionSpec | None:
    """:func:`parse_version_spec` without its cache, for a constraint used once."""
    module = rattler()
    try:
        return module.VersionSpec(text)
    except Exception:  # rattler raises its own exception classes
        return None


@lru_cache(maxsize=1 << 20)
def parse_version(text: str) -> Version:
    module = rattler()
    try:
        return module.Version(text)
    except Exception as exc:
        raise InvalidVersionError(str(exc)) from None


def clear_caches() -> None:
    """Forget the parsed versions and specs. Their objects were made among a run's records,
    one or two per page of memory: while they live, CPython can hand back none of the
    records' memory once the run is over (~0.6 GB at 800,000 records)."""
    parse_matchspec.cache_clear()
    _readable_specs.clear()
    _unreadable_specs.clear()
    _readable_versions.clear()
    parse_version_spec.cache_clear()
    parse_version.cache_clear()
    spec_licenses.clear_caches()


def spec_exact_name(spec: MatchSpec) -> str | None:
    """The normalized package name of a spec, or None when its name is a pattern or absent."""
    matcher = getattr(spec, "name", None)
    if matcher is None:
        return None
    exact = matcher.as_package_name() if hasattr(matcher, "as_package_name") else matcher
    return None if exact is None else exact.normalized


def spec_name(text: str) -> str:
    """The package name a dependency spec refers to (``'numpy >=1.2'`` -> ``'numpy'``)."""
    return parse_matchspec(text).name.normalized


# How much of a record a dependency spec looks at, which decides how its matches are found.
SPEC_ANY = "any"  # a bare name: every record of that name matches
SPEC_VERSION = "version"  # name and version only: records of one version match alike
SPEC_FULL = "full"  # anything else (build, build_number, channel...): test each record


def spec_kind(spec: MatchSpec, name: str) -> str:
    """:data:`SPEC_ANY`, :data:`SPEC_VERSION` or :data:`SPEC_FULL` for ``spec`` of the package
    ``name`` (normalized), from its canonical form."""
    canonical = spec.to_canonical_string()
    if canonical == name:
        return SPEC_ANY
    if canonical == f'{name}[version="{spec.version}"]':
        return SPEC_VERSION
    return SPEC_FULL


# A build string pattern of literal characters and ``*`` wildcards only (``*_cp312``,
# ``py312*``, ``h0_0``): matched here as rattler matches it, without building a record.
_PLAIN_BUILD = re.compile(r"[A-Za-z0-9_.+*]+")


def plain_build_pattern(spec: MatchSpec, name: str) -> str | None:
    """The build string pattern of ``spec`` when it constrains nothing but the package
    ``name`` (normalized), at most a version, and a build string of literal characters and
    ``*`` (see :func:`build_matches`); None for any other spec."""
    build = spec.build
    if not build or not _PLAIN_BUILD.fullmatch(build):
        return None
    canonical = spec.to_canonical_string()
    if canonical == f'{name}[build="{build}"]' or (
        canonical == f'{name}[version="{spec.version}",build="{build}"]'
    ):
        return build
    return None


def build_matches(pattern: str, build: str) -> bool:
    """Whether a record's build string matches a pattern of :func:`plain_build_pattern` as
    rattler matches it: the whole string, ignoring case, each ``*`` standing for any run of
    characters (none included). A build string rattler refuses (CEP-26: too long, or a
    character beyond ASCII letters, digits, ``_``, ``.`` and ``+``) matches nothing, as its
    record cannot be built."""
    if not readable_build(build):
        return False
    pattern, build = pattern.lower(), build.lower()
    if "*" not in pattern:
        return build == pattern
    first, *middle, last = pattern.split("*")
    end = len(build) - len(last)
    if end < len(first) or not build.startswith(first) or not build.endswith(last):
        return False
    position = len(first)
    for part in middle:  # leftmost first: a later part then has the most room
        found = build.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


def readable_build(build: str) -> bool:
    """Whether rattler accepts a record's build string (CEP-26). A record whose build string it
    refuses cannot be built as a rattler record, and so matches no spec that needs one."""
    module = rattler()
    try:
        module.BuildString(build)
    except Exception:  # rattler raises its own exception classes
        return False
    return True


def timestamp_ms(record: dict[str, Any]) -> int:
    """The record's timestamp in milliseconds (old records store seconds); 0 when absent."""
    return milliseconds(record.get("timestamp"))


def milliseconds(value: Any) -> int:
    """A record's time field in milliseconds (seconds are read as such); 0 when it is not a
    positive number."""
    kind = type(value)  # called for every record, several times a run: exact types first
    number = kind is int or kind is float or (isinstance(value, int | float) and kind is not bool)
    if not number or value <= 0:
        return 0
    return int(value if value > MAX_SECONDS else value * 1000)


class RecordMatcher:
    """Matches MatchSpecs against raw records, building rattler records once per record."""

    def __init__(self, remember: bool = True) -> None:
        # Keyed by id() for speed; the record itself is kept in the value so that its id
        # cannot be reused by another record while this matcher lives. ``remember=False``:
        # nothing kept, for a pass that tests each record about once (a rattler record holds
        # ~1.5 KB of native memory: 100,000 of them for current_repodata at conda-forge scale).
        self.remember = remember
        self._cache: dict[int, tuple[dict[str, Any], PackageRecord | None]] = {}
        # spec -> (the spec without its license keys, those keys): see _split_text_keys.
        self._splits: dict[int, tuple[MatchSpec, _Split]] = {}

    def _package_record(self, record: dict[str, Any]) -> PackageRecord | None:
        key = id(record)
        try:
            return self._cache[key][1]
        except KeyError:
            pass
        module = rattler()
        try:
            built: PackageRecord | None = module.PackageRecord(
                name=record["name"],
                version=record["version"],
                build=module.BuildString(record.get("build", "")),
                build_number=int(record.get("build_number", 0)),
                subdir=record.get("subdir") or "noarch",
                license=_text(record.get("license")),
                # A spec may constrain these too (``foo[md5=...]``, ``[license_family=GPL]``):
                # a record built without them would match no such spec, and an exclude
                # naming one would silently let everything through.
                license_family=_text(record.get("license_family")),
                md5=_digest(record.get("md5"), 16),
                sha256=_digest(record.get("sha256"), 32),
            )
            built.track_features = _features(record.get("track_features"))
        except Exception:
            built = None  # an unparseable record matches no spec
        if self.remember:
            self._cache[key] = (record, built)
        return built

    def matches(self, spec: str | MatchSpec, record: dict[str, Any]) -> bool:
        """Whether ``spec`` selects the record; never a record rattler cannot build (a build
        string CEP-26 refuses: over 64 characters, or ``-``, ``!``, ``=``, ``,`` in it), as
        nothing is known of it beyond its name."""
        match_spec = parse_matchspec(spec) if isinstance(spec, str) else spec
        built = self._package_record(record)
        if built is None:
            return False
        rest, texts = self._split(match_spec)
        return rest.matches(built) and licences_match(texts, record)

    def _split(self, spec: MatchSpec) -> _Split:
        # Keyed by id() like the records; the spec is kept in the value for the same reason.
        key = id(spec)
        try:
            return self._splits[key][1]
        except KeyError:
            pass
        split = _split_text_keys(spec)
        self._splits[key] = (spec, split)
        return split

    def excludes(self, spec: str | MatchSpec, record: dict[str, Any]) -> bool:
        """Whether an exclude of ``spec`` leaves the record out: it matches, or rattler cannot
        build the record and the spec names its package. Such a record cannot be told apart
        from the builds the exclude is after, so it is left out with them rather than let
        through (check_record, which runs on every upstream record, does not ask rattler).
        So is a record whose licence field the spec reads is not text when the rest matches:
        the licenses filter drops it as malformed, and no pattern can tell what it names."""
        match_spec = parse_matchspec(spec) if isinstance(spec, str) else spec
        if self.matches(match_spec, record):
            return True
        if (built := self._package_record(record)) is not None:
            rest, texts = self._split(match_spec)
            return (
                unreadable_licence(texts, record)
                and licences_match(texts, record, unreadable=True)
                and rest.matches(built)
            )
        name = spec_exact_name(match_spec)
        return name is None or name == str(record.get("name", "")).lower()


def _split_text_keys(spec: MatchSpec) -> _Split:
    """The spec without its ``license`` and ``license_family`` keys, for rattler, and those
    keys as (key, pattern), matched by :func:`licences_match` as conda matches them."""
    canonical = spec.to_canonical_string()
    rest, texts = split_canonical(canonical)
    if not texts:
        return spec, ()
    return rattler().MatchSpec(rest, strict=False), texts


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _digest(value: Any, size: int) -> bytes | None:
    """A checksum field as rattler takes it; None when it is not ``size`` bytes of hex."""
    if not isinstance(value, str) or len(value) != 2 * size:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _features(value: Any) -> list[str]:
    """``track_features`` as a list: repodata writes it as one string, separated by spaces or
    commas as conda reads it, sometimes as a list."""
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str) and item]
    return []


# Keys a MatchSpec may carry that rattler does not test against a record (it matches
# ``foo[fn=...]`` and a package URL spec against every ``foo``): refused where specs select.
_UNTESTED_KEY = re.compile(r'[\[,](fn|url)="')


def untested_keys(spec: MatchSpec) -> str | None:
    """Why ``spec`` would select more than it says (a key matching ignores), or None."""
    keys = sorted(set(_UNTESTED_KEY.findall(spec.to_canonical_string())))
    if not keys:
        return None
    named = " and ".join(f"[{key}=...]" for key in keys)
    return f"{named} (or a package URL) is not matched against records; use name version build"
