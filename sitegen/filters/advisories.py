"""``advisories``: leave out records that a security advisory (OSV format) names.

```yaml
filters:
  advisories:
    files: [advisories/, extra/GHSA-xxxx.json]   # OSV files, or directory trees of them
    feeds: [https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip]   # fetched each run
    identities: [conda-purls.json]   # conda name -> package URLs, for other ecosystems
    min_score: 7.0         # block advisories scoring at least this (CVSS base score)
    allow: [GHSA-xxxx, CVE-2024-1234]   # accepted as mitigated (an id or alias, in any case)
```

An ``affected`` entry names a conda package directly (ecosystem ``conda``, ``pkg:conda/``) or
through its upstream identity: an entry for ``pkg:pypi/requests`` applies to every conda name
the ``identities`` files map to that purl, and to records whose own ``purls`` (CEP draft #63)
name it. A package without an identity is checked only against conda entries.

A blocked record is excluded with the reason ``advisory <id>``. An advisory without a CVSS
score blocks whatever the threshold: unknown severity is not taken for harmless (allow it by
id). Withdrawn advisories block nothing. The files are read and validated when the
configuration is loaded, and their content is part of the configuration, so an edited advisory
file makes the next run redo the selection.

A feed is a zip archive of OSV files at a URL (OSV's ``<ecosystem>/all.zip``): a run fetches
it (see :mod:`sitegen.sync.advisory_feeds`) and its advisories join the files' in
:attr:`AdvisoryPolicy.fed` (:mod:`sitegen.filters.feeds`), read by the same code
(:mod:`sitegen.filters.osv_archive`); a changed feed, too, makes the next run redo the
selection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, partial

from sitegen.conda.records import Record
from sitegen.config.channel_source import parse_url
from sitegen.config.model import FilterSpec
from sitegen.config.urls import ENV_REF_RE, redact_url
from sitegen.config.yaml_nodes import YamlNode
from sitegen.filters.identities import NameKeys, read_mapping, record_purls
from sitegen.filters.json_nodes import JsonFileError
from sitegen.filters.kind import Check, FilterContext, FilterKind
from sitegen.filters.osv import Advisory, Affected, id_problem, load_files
from sitegen.filters.osv_versions import FirstNaming

log = logging.getLogger("sitegen")

KEY = "advisories"
REASON_PREFIX = "advisory "


@dataclass(frozen=True)
class AdvisoryPolicy:
    """One level's advisory filter: the advisories read, the threshold and the allow list, and
    the upstream identities of conda names. The advisories of its feeds are in ``fed`` once a
    run (or the renderer) has read the feeds' copies; until then only the files' count."""

    files: tuple[str, ...]
    min_score: float
    allow: tuple[str, ...]
    advisories: tuple[Advisory, ...]
    identities: tuple[str, ...] = ()  # the mapping files
    # Conda name -> the keys of its upstream packages (sorted, for a stable inputs digest).
    mapped: tuple[tuple[str, tuple[str, ...]], ...] = ()
    feeds: tuple[str, ...] = ()  # URLs of OSV zip archives, as written (${ENV} unfilled)
    fed: tuple[Advisory, ...] = ()  # the advisories of the feeds' copies (see filters.feeds)

    @property
    def in_force(self) -> tuple[Advisory, ...]:
        """Every advisory the policy applies: its files' and its feeds'."""
        return self.advisories + self.fed if self.fed else self.advisories

    @property
    def secret_env(self) -> tuple[str, ...]:
        """The ${ENV} names its feed URLs use (see FilterSpec.secret_env)."""
        return tuple(name for url in self.feeds for name in ENV_REF_RE.findall(url))

    @cached_property
    def identity_keys(self) -> dict[str, tuple[str, ...]]:
        return dict(self.mapped)

    def keys_for(self, name: str) -> tuple[str, ...]:
        """The package keys a conda name (lower-cased) goes by: itself and its identities."""
        return (name, *self.identity_keys.get(name, ()))

    def blocks(self, advisory: Advisory, entry: Affected) -> bool:
        if advisory.withdrawn:
            return False
        if self.allowed and not self.allowed.isdisjoint(advisory.folded_ids):
            return False
        score = advisory.score_for(entry)
        return score is None or score >= self.min_score

    @cached_property
    def allowed(self) -> frozenset[str]:
        """``allow`` case-folded (ids match in any case), asked for every entry judged."""
        return frozenset(i.casefold() for i in self.allow)

    @property
    def unmatched_allow(self) -> tuple[str, ...]:
        """The ids of ``allow`` that no advisory in force bears as its id or an alias: they
        allow nothing (a typo, or an id of another level's advisories)."""
        if not self.allow:
            return ()
        borne = {i for advisory in self.in_force for i in advisory.folded_ids}
        return tuple(i for i in self.allow if i.casefold() not in borne)

    @cached_property
    def by_id(self) -> dict[str, list[Advisory]]:
        """The advisories in force by id, in the order read: two files or feeds may each hold
        one of an id, and each blocks what it names (see :attr:`blocking`)."""
        index: dict[str, list[Advisory]] = {}
        for advisory in self.in_force:
            index.setdefault(advisory.id, []).append(advisory)
        return index

    @cached_property
    def naming(self) -> dict[str, list[Advisory]]:
        """Per package key, the advisories in force with an entry naming it, in the order
        read: a package page meets only the advisories of its package."""
        index: dict[str, list[Advisory]] = {}
        for advisory in self.in_force:
            for key in advisory.names:
                index.setdefault(key, []).append(advisory)
        return index

    @cached_property
    def blocking(self) -> dict[str, list[tuple[Advisory, Affected]]]:
        """Per package key (a lower-cased conda name, or ``<purl type>/<name>``), the affected
        entries that block, by advisory id."""
        index: dict[str, list[tuple[Advisory, Affected]]] = {}
        for advisory in sorted(self.in_force, key=lambda a: a.id):
            for entry in advisory.affected:
                if self.blocks(advisory, entry):
                    index.setdefault(entry.name, []).append((advisory, entry))
        return index

    @cached_property
    def upstream(self) -> bool:
        """Whether an entry that blocks names a package of another ecosystem (which records'
        own purls may name, whatever their conda name)."""
        return any("/" in key for key in self.blocking)

    def reason(
        self, keys: tuple[tuple[str, str], ...], indexes: dict[str, FirstNaming]
    ) -> str | None:
        """The reason for the first advisory (by id) that blocks any of these (key, version)
        pairs: a record's keys with its version, or a version its own purls name. ``indexes``
        holds the index of each key's blocking entries, made when a record first needs it (the
        caller keeps them for one pass of the filter): a version costs one look-up per key
        however many entries name it, and keys the site does not have cost nothing."""
        found = []
        for key, version in keys:
            entries = self.blocking.get(key)
            if not entries:
                continue
            if key not in indexes:
                indexes[key] = FirstNaming(entry.compared_events for _a, entry in entries)
            # The entries of one key compare versions alike (the key decides how).
            position = indexes[key].first(entries[0][1].compared(version))
            if position is not None:
                found.append(entries[position][0].id)
        return REASON_PREFIX + min(found) if found else None


def parse(node: YamlNode) -> Mapping[str, object]:
    keys = node.mapping(("files", "feeds", "identities", "min_score", "allow"))
    if "files" not in keys and "feeds" not in keys:
        raise node.error(
            "missing required key 'files' (OSV advisory files or directories) or 'feeds'"
            " (URLs of OSV zip archives)"
        )
    state = node.state
    start = len(state.errors)
    paths = []
    advisories: list[Advisory] = []
    for item in keys["files"].items() if "files" in keys else ():
        path = item.file_path()
        try:
            if not path.exists():
                state.add(item.error(f"no such file or directory: {path}"))
                continue
            found = load_files([path])
            if not found and path.is_dir():
                # Likely the wrong directory: a filter that blocks nothing should not look fine.
                log.warning(
                    "%s:%d: %s: no advisories in the *.json files below %s",
                    state.filename,
                    item.line,
                    item.path,
                    path,
                )
            advisories.extend(found)
            _warn_skipped(state.filename, item, found)
        except JsonFileError as exc:
            state.add(item.error(f"bad advisory file: {exc}"))
        except OSError as exc:
            state.add(item.error(f"cannot read {path}: {exc.strerror or exc}"))
        paths.append(str(path))
    feeds = [
        url
        for item in (keys["feeds"].items() if "feeds" in keys else ())
        if (url := state.attempt(partial(parse_url, item, ("https", "http"), query=True)))
    ]
    identities, mapped = _identities(keys["identities"]) if "identities" in keys else ((), {})
    min_score = (
        state.attempt(lambda: keys["min_score"].number(0.0, 10.0)) if "min_score" in keys else 0.0
    )
    allow_items = state.attempt(keys["allow"].items) if "allow" in keys else []
    reads = (partial(_allow_id, item) for item in allow_items or ())
    allow = tuple(i for read in reads if (i := state.attempt(read)) is not None)
    state.settle(start)
    assert min_score is not None
    policy = AdvisoryPolicy(
        tuple(paths),
        min_score,
        allow,
        tuple(advisories),
        identities,
        tuple((name, tuple(sorted(k))) for name, k in sorted(mapped.items()) if k),
        tuple(dict.fromkeys(feeds)),
    )
    if not policy.feeds:  # a feed's advisories are known only to a run (see unmatched_allow)
        unmatched = set(policy.unmatched_allow)
        for item, allow_id in zip(allow_items or (), allow, strict=True):
            if allow_id in unmatched:
                log.warning(
                    "%s:%d: %s: %r is neither the id nor an alias of any advisory of these files:"
                    " it allows nothing",
                    state.filename,
                    item.line,
                    item.path,
                    allow_id,
                )
    return {KEY: policy}


def _allow_id(item: YamlNode) -> str:
    """An id of ``allow``, as an advisory's id must be (:func:`~sitegen.filters.osv.id_problem`):
    a control or format character or blanks there are a paste gone wrong to point at, not an
    id that allows nothing."""
    text = item.string()
    if (why := id_problem(text)) is not None:
        raise item.error(why)
    return text


def _identities(node: YamlNode) -> tuple[tuple[str, ...], NameKeys]:
    """The mapping files' paths and what they map, merged (a name in two files has the
    identities of both)."""
    state = node.state
    paths, mapped = [], {}
    for item in node.items():
        path = item.file_path()
        try:
            if not path.exists():
                state.add(item.error(f"no such file: {path}"))
                continue
            for name, keys in read_mapping(path).items():
                mapped.setdefault(name, set()).update(keys)
        except JsonFileError as exc:
            state.add(item.error(f"bad identity mapping: {exc}"))
        except OSError as exc:
            state.add(item.error(f"cannot read {path}: {exc.strerror or exc}"))
        paths.append(str(path))
    return tuple(paths), mapped


def _warn_skipped(filename: str, item: YamlNode, advisories: tuple[Advisory, ...]) -> None:
    """One warning per files: entry for the entries of other ecosystems left out as malformed
    (a dump may hold many; each affects only its own package)."""
    skipped = [(a.id, where) for a in advisories for where in a.skipped]
    if skipped:
        first_id, first = skipped[0]
        log.warning(
            "%s:%d: %s: %d affected entries of other ecosystems skipped as unusable, the first"
            " in %s at %s",
            filename,
            item.line,
            item.path,
            len(skipped),
            first_id,
            first,
        )


def policy_of(spec: FilterSpec) -> AdvisoryPolicy | None:
    policy = spec.setting(KEY)
    return policy if isinstance(policy, AdvisoryPolicy) else None


def show(spec: FilterSpec) -> object:
    """The files (advisories, identity mappings), feeds, threshold and allow list as
    channels.yaml writes them (the advisories and identities read from the files are not
    settings: the files name them); a feed's URL with its secrets hidden."""
    policy = policy_of(spec)
    if policy is None:
        return None
    shown: dict[str, object] = {}
    if policy.files or not policy.feeds:
        shown["files"] = list(policy.files)
    if policy.feeds:
        shown["feeds"] = [redact_url(url) for url in policy.feeds]
    if policy.identities:
        shown["identities"] = list(policy.identities)
    return {**shown, "min_score": policy.min_score, "allow": list(policy.allow)}


def predicate(spec: FilterSpec, context: FilterContext) -> Check | None:
    policy = policy_of(spec)
    if policy is None:
        return None
    blocking = policy.blocking
    named = {
        name
        for name in context.distinct_names()
        if any(key in blocking for key in policy.keys_for(name))
    }
    if not named and not policy.upstream:
        return None
    # Builds of one version share the verdict: decide once per (name, version, own purls).
    verdicts: dict[tuple[str, str, tuple[tuple[str, str | None], ...]], str | None] = {}
    indexes: dict[str, FirstNaming] = {}

    def check(record: Record, name: str) -> str | None:
        own = record_purls(record.raw) if policy.upstream else ()
        if name not in named and not any(key in blocking for key, _ in own):
            return None
        version = record.raw["version"]
        verdict_key = (name, version, own)
        if verdict_key not in verdicts:
            keys = [(key, version) for key in policy.keys_for(name)]
            # A version in the record's purl is the upstream one, which may differ from conda's.
            keys += [(key, purl_version or version) for key, purl_version in own]
            verdicts[verdict_key] = policy.reason(tuple(keys), indexes)
        return verdicts[verdict_key]

    return check


KIND = FilterKind(KEY, parse, show=show, predicate=predicate)
