"""Read and validate ``channels.yaml`` into typed, immutable settings.

Every error names the offending key path and its line in the file, and the whole file is
checked before anything touches the network or the disk.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from sitegen.conda.version import InvalidSpecError, parse_matchspec
from sitegen.config import schedule

KNOWN_SUBDIRS = frozenset(
    [
        "noarch",
        "linux-32",
        "linux-64",
        "linux-aarch64",
        "linux-armv6l",
        "linux-armv7l",
        "linux-ppc64le",
        "linux-ppc64",
        "linux-riscv64",
        "linux-s390x",
        "osx-64",
        "osx-arm64",
        "win-32",
        "win-64",
        "win-arm64",
        "emscripten-wasm32",
        "wasi-wasm32",
        "zos-z",
    ]
)
SUBDIR_RE = re.compile(r"^(noarch|[a-z0-9]+-[a-z0-9_]+)$")
CHANNEL_SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ENV_REF_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# A literal anaconda.org token in a URL: /t/<token>/ where <token> is not an ${ENV} reference.
LITERAL_TOKEN_RE = re.compile(r"/t/(?!\$\{)[^/]+(/|$)")
# Top-level directories of the site that hold pages or private state, never a channel.
RESERVED_TOP = {"history", "assets", ".sitegen", "index.html", "search"}
FORMATS = ("both", "conda", "prefer-conda", "tar.bz2")
MODES = ("active", "passive")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}


class ConfigError(Exception):
    """A problem in channels.yaml; the message names the file, line and key path."""


@dataclass(frozen=True)
class FilterSpec:
    """One level of filters (site defaults, channel or mirror); every level must pass."""

    include_names: tuple[str, ...] = ()
    exclude_names: tuple[str, ...] = ()
    include_specs: tuple[str, ...] = ()
    exclude_specs: tuple[str, ...] = ()
    include_builds: tuple[str, ...] = ()
    exclude_builds: tuple[str, ...] = ()
    include_licenses: tuple[str, ...] = ()
    exclude_licenses: tuple[str, ...] = ()
    exclude_license_families: tuple[str, ...] = ()
    allow_missing_license: bool = True
    subdirs: tuple[str, ...] | None = None
    after_ms: int | None = None
    before_ms: int | None = None
    newest_versions: int | None = None
    max_size: int | None = None
    formats: str = "both"
    include_dependencies: bool | None = None

    @property
    def has_allowlist(self) -> bool:
        return bool(self.include_names or self.include_specs)


@dataclass(frozen=True)
class MirrorConfig:
    """One upstream source feeding a channel."""

    name: str
    url: str  # may hold ${ENV} references; use source_url() / display_url()
    subdirs: tuple[str, ...]
    mode: str = "active"
    verify_tls: bool = True
    filters: FilterSpec = field(default_factory=FilterSpec)
    schedule: str | None = None  # cron expression; None means the default (daily)
    line: int = 0

    def source_url(self, environ: dict[str, str] | None = None) -> str:
        """The URL with ${ENV} references filled in (contains secrets: never log it)."""
        env = os.environ if environ is None else environ
        return ENV_REF_RE.sub(lambda m: env[m.group(1)], self.url).rstrip("/")

    def display_url(self) -> str:
        """The URL safe to show anywhere: tokens and ${ENV} values replaced by ***."""
        return redact_url(self.url).rstrip("/")

    @property
    def secret_env(self) -> tuple[str, ...]:
        return tuple(ENV_REF_RE.findall(self.url))


@dataclass(frozen=True)
class ChannelConfig:
    """A destination channel in the site, fed by one or more mirrors."""

    path: str
    filters: FilterSpec
    mirrors: tuple[MirrorConfig, ...]
    line: int = 0

    @property
    def subdirs(self) -> tuple[str, ...]:
        seen = dict.fromkeys(s for m in self.mirrors for s in m.subdirs)
        seen.setdefault("noarch")
        return tuple(seen)


@dataclass(frozen=True)
class DownloadSettings:
    concurrency: int = 32
    per_host: int = 32
    retries: int = 4
    timeout: float = 60.0


@dataclass(frozen=True)
class StatsSettings:
    """``stats:``: the web server's access logs to count downloads from (``sitegen stats``)."""

    logs: tuple[Path, ...]
    retention_days: int = 90  # daily rows older than this are rolled into monthly ones


@dataclass(frozen=True)
class SiteConfig:
    output: Path
    channels: tuple[ChannelConfig, ...]
    filters: FilterSpec = field(default_factory=FilterSpec)
    base_url: str | None = None
    title: str = "conda mirror"
    download: DownloadSettings = field(default_factory=DownloadSettings)
    max_delete_fraction: float = 0.5
    source: Path | None = None
    stats: StatsSettings | None = None

    @property
    def mirrors(self) -> list[tuple[ChannelConfig, MirrorConfig]]:
        return [(c, m) for c in self.channels for m in c.mirrors]

    def filter_levels(self, channel: ChannelConfig, mirror: MirrorConfig) -> tuple[FilterSpec, ...]:
        return (self.filters, channel.filters, mirror.filters)


def redact_url(url: str) -> str:
    """Hide anaconda.org-style tokens, ${ENV} references and user:password parts."""
    url = ENV_REF_RE.sub("***", url)
    url = re.sub(r"/t/[^/]+", "/t/***", url)
    return re.sub(r"//[^/@]+@", "//***@", url)


# --------------------------------------------------------------------------- YAML walking


class _Node:
    """A YAML node plus the key path that led to it, for precise error messages."""

    def __init__(self, node: yaml.Node, path: str, filename: str) -> None:
        self.node = node
        self.path = path
        self.filename = filename

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    def error(self, message: str) -> ConfigError:
        where = self.path or "(top level)"
        return ConfigError(f"{self.filename}:{self.line}: {where}: {message}")

    def child(self, node: yaml.Node, key: str | int) -> _Node:
        if isinstance(key, int):
            path = f"{self.path}[{key}]"
        else:
            path = f"{self.path}.{key}" if self.path else key
        return _Node(node, path, self.filename)

    def mapping(self, allowed: tuple[str, ...]) -> dict[str, _Node]:
        if not isinstance(self.node, yaml.MappingNode):
            raise self.error("expected a mapping of keys to values")
        out: dict[str, _Node] = {}
        for key_node, value_node in self.node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise _Node(key_node, self.path, self.filename).error("keys must be strings")
            child = self.child(value_node, key)
            if key in out:
                raise _Node(key_node, child.path, self.filename).error("duplicate key")
            if allowed and key not in allowed:
                raise _Node(key_node, child.path, self.filename).error(
                    f"unknown key {key!r}; expected one of: {', '.join(allowed)}"
                )
            out[key] = child
        return out

    def items(self) -> list[_Node]:
        if isinstance(self.node, yaml.ScalarNode) and self.node.tag.endswith(":str"):
            return [self]  # a single string where a list is expected reads as a one-item list
        if not isinstance(self.node, yaml.SequenceNode):
            raise self.error("expected a list")
        return [self.child(n, i) for i, n in enumerate(self.node.value)]

    def scalar(self) -> str:
        if not isinstance(self.node, yaml.ScalarNode):
            raise self.error("expected a single value")
        return self.node.value

    def string(self) -> str:
        value = self.scalar()
        if self.node.tag.endswith(":null") or value == "":
            raise self.error("expected a non-empty string")
        return value

    def boolean(self) -> bool:
        value = self.scalar().lower()
        if value in ("true", "yes", "on"):
            return True
        if value in ("false", "no", "off"):
            return False
        raise self.error(f"expected true or false, got {self.scalar()!r}")

    def integer(self, minimum: int = 0) -> int:
        try:
            value = int(self.scalar())
        except ValueError:
            raise self.error(f"expected a whole number, got {self.scalar()!r}") from None
        if value < minimum:
            raise self.error(f"must be at least {minimum}")
        return value

    def number(self, minimum: float = 0.0, maximum: float | None = None) -> float:
        try:
            value = float(self.scalar())
        except ValueError:
            raise self.error(f"expected a number, got {self.scalar()!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise self.error(f"must be between {minimum} and {maximum}")
        return value

    def strings(self) -> tuple[str, ...]:
        return tuple(item.string() for item in self.items())


def _globs(node: _Node, *, lower: bool = False) -> tuple[str, ...]:
    out = []
    for item in node.items():
        pattern = item.string()
        if pattern.count("[") != pattern.count("]"):
            raise item.error(f"invalid glob {pattern!r}: unbalanced brackets")
        try:
            re.compile(fnmatch.translate(pattern))
        except re.error as exc:
            raise item.error(f"invalid glob {pattern!r}: {exc}") from None
        out.append(pattern.lower() if lower else pattern)
    return tuple(out)


def _specs(node: _Node) -> tuple[str, ...]:
    out = []
    for item in node.items():
        text = item.string()
        try:
            spec = parse_matchspec(text)
        except InvalidSpecError as exc:
            raise item.error(f"invalid MatchSpec {text!r}: {exc}") from None
        if spec.channel is not None or spec.subdir is not None:
            raise item.error(
                f"MatchSpec {text!r}: channel:: and [subdir=...] are not supported in filters;"
                " use the mirror's url and the subdirs filter"
            )
        out.append(text)
    return tuple(out)


def _subdirs(node: _Node) -> tuple[str, ...]:
    out = []
    for item in node.items():
        subdir = item.string()
        if not SUBDIR_RE.match(subdir):
            raise item.error(
                f"invalid subdir {subdir!r} (expected e.g. linux-64, osx-arm64, noarch)"
            )
        out.append(subdir)
    return tuple(dict.fromkeys(out))


def _timestamp_ms(node: _Node) -> int:
    text = node.string()
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise node.error(f"expected a date like 2024-01-31, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_size(text: str) -> int:
    """'500MB', '1.5 GiB', '1024' -> bytes."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"expected a size like 500MB or 2GiB, got {text!r}")
    number, unit = match.groups()
    unit = (unit or "").upper()
    base = unit[:1] if unit not in ("", "B") else unit
    factor = _SIZE_UNITS[base]
    if "I" in unit:
        factor = 1024 ** {"K": 1, "M": 2, "G": 3, "T": 4}[base]
    return int(float(number) * factor)


_FILTER_KEYS = (
    "names",
    "specs",
    "builds",
    "licenses",
    "subdirs",
    "dates",
    "newest_versions",
    "max_size",
    "formats",
    "include_dependencies",
)


def _include_exclude(node: _Node, *, lower: bool = False, spec: bool = False):
    keys = node.mapping(("include", "exclude"))
    parse = _specs if spec else (lambda n: _globs(n, lower=lower))
    include = parse(keys["include"]) if "include" in keys else ()
    exclude = parse(keys["exclude"]) if "exclude" in keys else ()
    return include, exclude


def _filters(node: _Node | None) -> FilterSpec:
    if node is None or node.node.tag.endswith(":null"):
        return FilterSpec()
    keys = node.mapping(_FILTER_KEYS)
    values: dict[str, Any] = {}
    if "names" in keys:
        values["include_names"], values["exclude_names"] = _include_exclude(
            keys["names"], lower=True
        )
    if "specs" in keys:
        values["include_specs"], values["exclude_specs"] = _include_exclude(
            keys["specs"], spec=True
        )
    if "builds" in keys:
        values["include_builds"], values["exclude_builds"] = _include_exclude(keys["builds"])
    if "licenses" in keys:
        lic = keys["licenses"].mapping(("include", "exclude", "exclude_families", "allow_missing"))
        if "include" in lic:
            values["include_licenses"] = _globs(lic["include"], lower=True)
        if "exclude" in lic:
            values["exclude_licenses"] = _globs(lic["exclude"], lower=True)
        if "exclude_families" in lic:
            values["exclude_license_families"] = _globs(lic["exclude_families"], lower=True)
        if "allow_missing" in lic:
            values["allow_missing_license"] = lic["allow_missing"].boolean()
    if "subdirs" in keys:
        values["subdirs"] = _subdirs(keys["subdirs"])
        if not values["subdirs"]:
            raise keys["subdirs"].error("an empty subdir list would exclude everything")
    if "dates" in keys:
        dates = keys["dates"].mapping(("after", "before"))
        if "after" in dates:
            values["after_ms"] = _timestamp_ms(dates["after"])
        if "before" in dates:
            values["before_ms"] = _timestamp_ms(dates["before"])
        after, before = values.get("after_ms"), values.get("before_ms")
        if after is not None and before is not None and after >= before:
            raise keys["dates"].error("'after' must be earlier than 'before'")
    if "newest_versions" in keys:
        values["newest_versions"] = keys["newest_versions"].integer(minimum=1)
    if "max_size" in keys:
        try:
            values["max_size"] = parse_size(keys["max_size"].scalar())
        except ValueError as exc:
            raise keys["max_size"].error(str(exc)) from None
        if values["max_size"] <= 0:
            raise keys["max_size"].error("must be larger than zero")
    if "formats" in keys:
        fmt = keys["formats"].string()
        if fmt not in FORMATS:
            raise keys["formats"].error(f"expected one of {', '.join(FORMATS)}, got {fmt!r}")
        values["formats"] = fmt
    if "include_dependencies" in keys:
        values["include_dependencies"] = keys["include_dependencies"].boolean()
    spec = FilterSpec(**values)
    _check_not_empty(spec, node)
    return spec


def _check_not_empty(spec: FilterSpec, node: _Node) -> None:
    """Reject one level whose filters contradict each other, so it could mirror nothing."""
    if "*" in spec.exclude_names:
        raise node.error("names.exclude '*' excludes every package")
    for pattern in spec.include_names:
        literal = not any(ch in pattern for ch in "*?[")
        if literal and any(fnmatch.fnmatchcase(pattern, ex) for ex in spec.exclude_names):
            raise node.error(
                f"names.include {pattern!r} is also excluded by names.exclude,"
                " so nothing it names can be mirrored"
            )
    if "*" in spec.exclude_builds:
        raise node.error("builds.exclude '*' excludes every package")
    if "*" in spec.exclude_licenses and not spec.allow_missing_license:
        raise node.error(
            "licenses.exclude '*' together with allow_missing: false excludes everything"
        )


def _check_levels(levels: tuple[FilterSpec, ...], mirror: MirrorConfig, node: _Node) -> None:
    """Reject filters of different levels that together leave a mirror with nothing."""
    subdirs = set(mirror.subdirs)
    for level in levels:
        if level.subdirs is not None:
            subdirs &= set(level.subdirs)
    if not subdirs:
        raise node.error(
            f"mirror {mirror.name!r}: the subdirs filters of the site, channel and mirror"
            " leave no subdir to mirror"
        )
    after = max((lv.after_ms for lv in levels if lv.after_ms is not None), default=None)
    before = min((lv.before_ms for lv in levels if lv.before_ms is not None), default=None)
    if after is not None and before is not None and after >= before:
        raise node.error(f"mirror {mirror.name!r}: the date ranges of its levels do not overlap")
    formats = {lv.formats for lv in levels} - {"both", "prefer-conda"}
    if len(formats) > 1:
        raise node.error(
            f"mirror {mirror.name!r}: formats 'conda' and 'tar.bz2' exclude each other"
        )
    allow_names = [lv.include_names for lv in levels if lv.include_names and not lv.include_specs]
    exclude_names = {p for lv in levels for p in lv.exclude_names}
    for names in allow_names:
        literal = [n for n in names if not any(ch in n for ch in "*?[")]
        all_literal = bool(literal) and len(literal) == len(names)
        if all_literal and all(
            any(fnmatch.fnmatchcase(n, ex) for ex in exclude_names) for n in literal
        ):
            raise node.error(
                f"mirror {mirror.name!r}: every name in an allowlist is excluded at another level"
            )


def _validate_url(node: _Node) -> str:
    url = node.string()
    parts = urlsplit(ENV_REF_RE.sub("x", url))
    if parts.scheme not in ("http", "https", "file"):
        raise node.error(
            f"URL must start with https://, http:// or file://, got {redact_url(url)!r}"
        )
    if parts.scheme != "file" and not parts.netloc:
        raise node.error(f"URL has no host: {redact_url(url)!r}")
    if parts.scheme == "file" and not parts.path:
        raise node.error("file:// URL has no path")
    if LITERAL_TOKEN_RE.search(url):
        raise node.error(
            "the URL holds a literal token (/t/<token>/); write /t/${ENV_VAR}/ and set the"
            " token in that environment variable"
        )
    if parts.query or parts.fragment:
        raise node.error("URL must not have a query string or fragment")
    return url


_MIRROR_KEYS = ("name", "url", "subdirs", "mode", "verify_tls", "filters", "schedule")


def _mirror(keys: dict[str, _Node], node: _Node, default_name: str) -> MirrorConfig:
    if "url" not in keys:
        raise node.error("missing required key 'url'")
    name = keys["name"].string() if "name" in keys else default_name
    if not NAME_RE.match(name):
        raise (keys.get("name") or node).error(f"invalid mirror name {name!r}")
    if "subdirs" not in keys:
        raise node.error("missing required key 'subdirs' (e.g. [linux-64, noarch])")
    subdirs = list(_subdirs(keys["subdirs"]))
    if "noarch" not in subdirs:
        subdirs.append("noarch")  # a channel must always serve noarch/repodata.json
    mode = keys["mode"].string() if "mode" in keys else "active"
    if mode not in MODES:
        raise keys["mode"].error(f"expected 'active' or 'passive', got {mode!r}")
    return MirrorConfig(
        name=name,
        url=_validate_url(keys["url"]),
        subdirs=tuple(subdirs),
        mode=mode,
        verify_tls=keys["verify_tls"].boolean() if "verify_tls" in keys else True,
        filters=_filters(keys.get("filters")),
        schedule=_schedule(keys["schedule"]) if "schedule" in keys else None,
        line=node.line,
    )


def _schedule(node: _Node) -> str:
    expression = node.string()
    if not schedule.is_valid(expression):
        raise node.error(f"invalid cron expression {expression!r} (e.g. '0 2 * * *' or '@daily')")
    return expression


def _channel_path(node: _Node, path: str) -> str:
    segments = path.strip("/").split("/")
    if not path.strip("/") or any(not CHANNEL_SEGMENT_RE.match(s) for s in segments):
        raise node.error(
            f"invalid channel path {path!r}: use segments of letters, digits, '.', '_', '-'"
            " such as cloud/conda-forge or pkgs/main"
        )
    if segments[0] in RESERVED_TOP:
        raise node.error(f"channel path {path!r} collides with the site's own {segments[0]!r}")
    if any(s in KNOWN_SUBDIRS for s in segments):
        raise node.error(f"channel path {path!r} has a subdir name as a segment")
    return "/".join(segments)


def _channel(path: str, node: _Node) -> ChannelConfig:
    path = _channel_path(node, path)
    if "url" in _raw_keys(node):  # short form: the channel is its own single mirror
        keys = node.mapping(_MIRROR_KEYS)
        mirror = _mirror(keys, node, default_name=path.replace("/", "-"))
        return ChannelConfig(path=path, filters=FilterSpec(), mirrors=(mirror,), line=node.line)
    keys = node.mapping(("filters", "mirrors"))
    if "mirrors" not in keys:
        raise node.error("a channel needs either 'url' (one mirror) or a 'mirrors' list")
    mirrors = []
    for item in keys["mirrors"].items():
        mirror_keys = item.mapping(_MIRROR_KEYS)
        mirrors.append(_mirror(mirror_keys, item, default_name=f"{path.replace('/', '-')}"))
    if not mirrors:
        raise keys["mirrors"].error("a channel needs at least one mirror")
    return ChannelConfig(
        path=path, filters=_filters(keys.get("filters")), mirrors=tuple(mirrors), line=node.line
    )


def _raw_keys(node: _Node) -> set[str]:
    if isinstance(node.node, yaml.MappingNode):
        return {k.value for k, _ in node.node.value if isinstance(k, yaml.ScalarNode)}
    return set()


_TOP_KEYS = ("output", "base_url", "title", "download", "prune", "filters", "channels", "stats")


def _stats(node: _Node, base_dir: Path | None) -> StatsSettings:
    keys = node.mapping(("logs", "retention_days"))
    if "logs" not in keys:
        raise node.error("missing required key 'logs' (the web server's access log files)")
    logs = []
    for item in keys["logs"].items():
        path = Path(item.string())
        logs.append(base_dir / path if not path.is_absolute() and base_dir else path)
    if not logs:
        raise keys["logs"].error("name at least one access log")
    # At least 30: the 7- and 30-day figures are summed from daily rows.
    retention = keys["retention_days"].integer(30) if "retention_days" in keys else 90
    return StatsSettings(logs=tuple(logs), retention_days=retention)


def parse_config(text: str, filename: str = "channels.yaml", base_dir: Path | None = None):
    """Parse the text of a channels.yaml; relative paths resolve against base_dir."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{filename}:{line}: not valid YAML: {problem}") from None
    if root is None:
        raise ConfigError(f"{filename}:1: the file is empty")
    top = _Node(root, "", filename)
    keys = top.mapping(_TOP_KEYS)
    if "output" not in keys:
        raise top.error("missing required key 'output' (the site directory)")
    output = Path(keys["output"].string())
    if not output.is_absolute() and base_dir is not None:
        output = base_dir / output
    base_url = None
    if "base_url" in keys:
        base_url = keys["base_url"].string().rstrip("/")
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise keys["base_url"].error("base_url must be an http(s) URL")
    download = DownloadSettings()
    if "download" in keys:
        dl = keys["download"].mapping(("concurrency", "per_host", "retries", "timeout"))
        download = DownloadSettings(
            concurrency=dl["concurrency"].integer(1) if "concurrency" in dl else 32,
            per_host=dl["per_host"].integer(1) if "per_host" in dl else 32,
            retries=dl["retries"].integer(0) if "retries" in dl else 4,
            timeout=dl["timeout"].number(0.1) if "timeout" in dl else 60.0,
        )
    max_delete = 0.5
    if "prune" in keys:
        prune = keys["prune"].mapping(("max_fraction",))
        if "max_fraction" in prune:
            max_delete = prune["max_fraction"].number(0.0, 1.0)
    site_filters = _filters(keys.get("filters"))
    if "channels" not in keys:
        raise top.error("missing required key 'channels'")
    channels_node = keys["channels"]
    channels = [_channel(path, child) for path, child in channels_node.mapping(()).items()]
    if not channels:
        raise channels_node.error("no channels configured")
    _check_unique(channels, channels_node)
    config = SiteConfig(
        output=output,
        channels=tuple(channels),
        filters=site_filters,
        base_url=base_url,
        title=keys["title"].string() if "title" in keys else "conda mirror",
        download=download,
        max_delete_fraction=max_delete,
        source=(base_dir / filename) if base_dir else None,
        stats=_stats(keys["stats"], base_dir) if "stats" in keys else None,
    )
    for channel, child in zip(channels, channels_node.mapping(()).values(), strict=True):
        for mirror in channel.mirrors:
            _check_levels(config.filter_levels(channel, mirror), mirror, child)
    return config


def _check_unique(channels: list[ChannelConfig], node: _Node) -> None:
    # `cloud/x` and `/cloud/x/` name one directory: two channels there would prune each other.
    paths: dict[str, int] = {}
    for channel in channels:
        if channel.path in paths:
            raise ConfigError(
                f"{node.filename}:{channel.line}: channels.{channel.path}: channel path"
                f" {channel.path!r} is already used (line {paths[channel.path]})"
            )
        paths[channel.path] = channel.line
    names: dict[str, int] = {}
    for channel in channels:
        for mirror in channel.mirrors:
            if mirror.name in names:
                raise ConfigError(
                    f"{node.filename}:{mirror.line}: channels.{channel.path}: mirror name"
                    f" {mirror.name!r} is already used (line {names[mirror.name]}); names must be"
                    " unique"
                )
            names[mirror.name] = mirror.line


def load_config(path: str | Path) -> SiteConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_config(text, filename=path.name, base_dir=path.parent.resolve())
