"""``lockfiles``: an allowlist of exactly the package files that lockfiles pin.

```yaml
filters:
  lockfiles: [envs/pixi.lock, envs/conda-lock.yml, envs/explicit.txt]
```

A record is listed when a lockfile pins its subdir and file name with the same checksum
(sha256 when both list one, else md5), whatever channel the lockfile's URLs name; so one
lockfile can feed channels mirrored from several upstreams. Like ``names.include``, this is an
allowlist: it joins the other include lists of its level, and records it leaves out stay
candidates for ``include_dependencies``. Pins that upstream no longer has (or has with another
checksum) are listed in the run report by :func:`missing_pins`, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from sitegen.conda.records import Record
from sitegen.config.model import FilterSpec
from sitegen.config.yaml_nodes import YamlNode
from sitegen.filters.kind import Allowed, FilterContext, FilterKind
from sitegen.filters.lockfile_read import LockfileError, Pin, read_lockfile

KEY = "lockfiles"
NOT_UPSTREAM = "not upstream"
CHECKSUM_DIFFERS = "upstream has another file under this name (checksum differs)"


@dataclass(frozen=True)
class LockfilePolicy:
    """The lockfiles of one level: (path, pins) in the order listed."""

    files: tuple[tuple[str, tuple[Pin, ...]], ...]

    @cached_property
    def index(self) -> dict[tuple[str, str], list[Pin]]:
        """Pins by (subdir, file name)."""
        index: dict[tuple[str, str], list[Pin]] = {}
        for _path, pins in self.files:
            for pin in pins:
                index.setdefault((pin.subdir, pin.fn), []).append(pin)
        return index

    def pins(self, record: Record, subdir: str) -> bool:
        return any(pin.matches(record.raw) for pin in self.index.get((subdir, record.fn), ()))


def parse(node: YamlNode) -> Mapping[str, object]:
    state = node.state
    start = len(state.errors)
    files = []
    for item in node.items():
        path = item.file_path()
        try:
            files.append((str(path), read_lockfile(path)))
        except LockfileError as exc:
            state.add(item.error(f"bad lockfile: {exc}"))
    state.settle(start)
    if not files:
        raise node.error("expected at least one lockfile")
    return {KEY: LockfilePolicy(tuple(files))}


def policy_of(spec: FilterSpec) -> LockfilePolicy | None:
    policy = spec.setting(KEY)
    return policy if isinstance(policy, LockfilePolicy) else None


def show(spec: FilterSpec) -> object:
    """The lockfiles by path, as channels.yaml names them."""
    policy = policy_of(spec)
    return None if policy is None else [path for path, _pins in policy.files]


def allow(spec: FilterSpec, context: FilterContext) -> Allowed | None:
    policy = policy_of(spec)
    if policy is None:
        return None
    subdir = context.subdir
    return lambda record, name: policy.pins(record, subdir)


def missing_pins(
    levels: Iterable[FilterSpec],
    subdirs: Iterable[str],
    available: Mapping[tuple[str, str], list[Record]],
) -> list[dict[str, str]]:
    """The pins of these levels' lockfiles, in ``subdirs``, that no record in ``available``
    (by subdir and file name, from every mirror of the channel) satisfies, with why."""
    wanted = set(subdirs)
    missing = []
    for level in levels:
        policy = policy_of(level)
        for path, pins in policy.files if policy else ():
            for pin in pins:
                if pin.subdir not in wanted:
                    continue  # a platform this mirror does not carry
                offered = available.get((pin.subdir, pin.fn), [])
                if any(pin.matches(record.raw) for record in offered):
                    continue
                why = CHECKSUM_DIFFERS if offered else NOT_UPSTREAM
                missing.append({"lockfile": path, "subdir": pin.subdir, "file": pin.fn, "why": why})
    return missing


KIND = FilterKind(KEY, parse, show=show, allow=allow)
