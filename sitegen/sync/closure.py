"""Pull the dependencies of allowlisted packages back in, so a mirror installs offline.

The walk starts from the kept records of mirrors with ``include_dependencies`` and follows
``depends`` transitively. A dependency resolves like conda's strict channel priority, for
one platform: among the platform's subdir and noarch, in the needing record's own mirror when
that mirror has the name there at all, otherwise in the first of the other mirrors of its
channel that has it there (a client sees a channel's mirrors as one channel), otherwise in the
first mirror in config order that has it there. There, every kept record matching the spec satisfies it, and the matching closure
candidates (records dropped only by an allowlist or newest_versions) are added to the mirror,
limited to the mirror's newest N versions when it sets newest_versions. A platform record's
dependencies resolve for its own platform; a noarch record's for each platform of its channel,
each on its own (a client of that platform decides as much), and a dependency missing for some
of them only is reported for each. A ``constrains`` entry adds nothing by itself, but the
records it allows are added as a dependency's are, so that the constraining record installs
beside its name, in each mirror a walked record's dependency on the name resolves in for the
platform (the client of that record takes the name from there, whichever mirror holds the
constraining record), and in the mirror the name resolves in for the constraining record when
that mirror keeps it (an allowlist keeping both names).

Pure over plain data: the FilterResults are updated in place and a report says what was added
and what no mirror could satisfy.
"""

from __future__ import annotations

from collections import deque

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher, parse_version
from sitegen.filters.apply import FilterResult
from sitegen.sync.closure_agree import Agreement
from sitegen.sync.closure_model import Addition, DependencyReport, MirrorSelection
from sitegen.sync.closure_reasons import Question, asked_by, explain, looked_in, reason_text
from sitegen.sync.closure_specs import (
    NOARCH,
    DependencySpec,
    SpecCache,
    SpecMatch,
    dependency_scope,
)

# How an addition's report names the record it was added for: one depending on it, or one
# constraining its name (the constraint's builds, added so that the two install together).
NEEDED = "needed by"
CONSTRAINT = "for a constraint of"


# (mirror index, subdir, record): one node of the walk.
_Node = tuple[int, str, Record]


class _Closure:
    def __init__(self, selections: list[MirrorSelection], matcher: RecordMatcher) -> None:
        self.selections = selections
        self.matcher = matcher
        self.report = DependencyReport()
        run_platforms = sorted({s for sel in selections for s in sel.results} - {NOARCH})
        # A run of noarch subdirs alone: noarch records resolve within noarch (NOARCH standing
        # in for the platform).
        self.run_platforms = tuple(run_platforms) or (NOARCH,)
        # Per mirror: name -> subdir -> {fn: record}. Adding moves a record from `candidates`
        # to `kept`; their union, and so every name lookup below, never changes.
        self.kept = [_index(sel.results, kept=True) for sel in selections]
        self.candidates = [_index(sel.results, kept=False) for sel in selections]
        # (mirror resolved in, platform, spec text) -> satisfied; platform records and noarch
        # ones share it.
        self.resolved: dict[tuple[int, str, str], bool] = {}
        self.specs = SpecCache()
        # The (mirror resolved in, platform, spec text)s where newest_versions left older
        # matching records out; see _fit.
        self.trimmed: set[tuple[int, str, str]] = set()
        # (mirror, platform, name) -> the mirror the name resolves in.
        self.chosen: dict[tuple[int, str, str], int | None] = {}
        # Per mirror, where its records' dependencies are looked for: itself, the other mirrors
        # of its channel, then every other mirror in config order. Strict priority ranks
        # channels, and a client sees a channel's mirrors as one.
        self.order = [
            [
                index,
                *(i for i, s in enumerate(selections) if s.channel == sel.channel and i != index),
                *(i for i, s in enumerate(selections) if s.channel != sel.channel),
            ]
            for index, sel in enumerate(selections)
        ]
        # Whether two records install together, judged where the names resolve.
        self.agreement = Agreement(
            self.specs, matcher, self.kept, self.candidates, self._choose_mirror
        )
        self.queue: deque[_Node] = deque()
        self.seen: set[tuple[int, str, str]] = set()
        # (platform, name) -> the mirrors walked records' dependencies on it resolve in, and
        # the `constrains` entries of walked records on it: [(mirror, record, spec text)]. A
        # constraint brings nothing in by itself, but wherever the name is installed from
        # beside its record, only the builds it allows can be.
        self.sources: dict[tuple[str, str], set[int]] = {}
        self.constraints: dict[tuple[str, str], list[tuple[int, Record, str]]] = {}
        # (mirror, subdir, dependency) of each unsatisfied entry -> platform -> why to ask.
        self.questions: dict[tuple[str, str, str], dict[str, Question]] = {}

    # ------------------------------------------------------------------ walk

    def run(self) -> DependencyReport:
        for index, sel in enumerate(self.selections):
            if sel.unsatisfied:
                self.report.unsatisfied.setdefault(sel.mirror, []).extend(sel.unsatisfied)
            for where, dep, _fn in sel.unsatisfied:
                # A gated channel's approved files are to install from the channel itself.
                for question in asked_by(where, dep, (index,), self._platforms(index)):
                    self._ask(index, where, question)
        for index, sel in enumerate(self.selections):
            if not sel.include_dependencies:
                continue
            for subdir in sorted(sel.results):
                kept = sel.results[subdir].kept
                for fn in sorted(kept):
                    self._visit(index, subdir, kept[fn])
        while self.queue:
            index, subdir, record = self.queue.popleft()
            platforms = self._platforms(index) if subdir == NOARCH else (subdir,)
            for constraint in record.raw.get("constrains") or ():
                for platform in platforms:
                    self._constrain(index, platform, record, constraint)
            for dep in record.raw.get("depends") or ():
                missing = [p for p in platforms if not self._depend(index, p, record, dep)]
                if not missing:
                    continue
                unsatisfied = self.report.unsatisfied.setdefault(self.selections[index].mirror, [])
                every = len(missing) == len(platforms)
                if every:
                    unsatisfied.append((subdir, dep, record.fn))
                else:
                    unsatisfied.extend((f"{subdir} ({p})", dep, record.fn) for p in missing)
                for p in missing:
                    where = subdir if every else f"{subdir} ({p})"
                    self._ask(index, where, self._question(index, p, dep))
        for entries in self.report.added.values():
            entries.sort()
        for mirror, missing in self.report.unsatisfied.items():
            # A gated mirror's own finding may be found again by another mirror's walk.
            self.report.unsatisfied[mirror] = sorted(set(missing))
        self._explain()
        return self.report

    def _question(self, index: int, platform: str, dep: str) -> Question:
        parsed = self.specs.parse(dep)
        target = None if parsed is None else self._choose_mirror(index, platform, parsed.name)
        return Question(looked_in(self.order[index], target), platform, dep)

    def _ask(self, index: int, where: str, question: Question) -> None:
        """Note why (subdir `where`, dependency) of mirror `index` is to be explained: each
        needing record there asks the same, so the first to ask stands for them."""
        key = (self.selections[index].mirror, where, question.dep)
        self.questions.setdefault(key, {}).setdefault(question.platform, question)

    def _explain(self) -> None:
        everything = (q for asked in self.questions.values() for q in asked.values())
        answers = explain(self.selections, self.matcher, self.specs, everything)
        for (mirror, where, dep), asked in self.questions.items():
            why = reason_text(r for q in asked.values() for r in answers[q])
            self.report.reasons.setdefault(mirror, {})[(where, dep)] = why

    def _platforms(self, index: int) -> tuple[str, ...]:
        return self.selections[index].platforms or self.run_platforms

    def _depend(self, index: int, platform: str, record: Record, dep: str) -> bool:
        parsed = self.specs.parse(dep)
        if parsed is None or parsed.name.startswith("__"):
            return self._resolved(index, platform, record, dep)
        target = self._choose_mirror(index, platform, parsed.name)
        if target is None:
            return False  # no mirror has the name: nothing to resolve, nor to constrain
        satisfied = self._resolved(index, platform, record, dep, NEEDED, target)
        key = (platform, parsed.name)
        sources = self.sources.setdefault(key, set())
        if target not in sources:
            sources.add(target)
            for other, constrained, constraint in self.constraints.get(key, ()):
                self._resolved(other, platform, constrained, constraint, CONSTRAINT, target)
        return satisfied

    def _constrain(self, index: int, platform: str, record: Record, constraint: str) -> None:
        """Add the builds `constraint` allows of a name some record needs or a mirror keeps,
        so that `record` can be installed beside it; one nothing matches only rules the pair
        out."""
        parsed = self.specs.parse(constraint)
        if parsed is None or parsed.name.startswith("__"):
            return
        key = (platform, parsed.name)
        self.constraints.setdefault(key, []).append((index, record, constraint))
        targets = set(self.sources.get(key, ()))
        kept_in = self._keeps(index, platform, parsed.name)
        if kept_in is not None:
            targets.add(kept_in)
        for target in sorted(targets):
            self._resolved(index, platform, record, constraint, CONSTRAINT, target)

    def _keeps(self, index: int, platform: str, name: str) -> int | None:
        """The mirror `name` resolves in, for mirror `index`'s records, when it keeps a record
        of it: a client may then ask for it beside a record constraining it."""
        target = self._choose_mirror(index, platform, name)
        if target is None:
            return None
        kept = self.kept[target].get(name, {})
        return target if any(kept.get(s) for s in dependency_scope(platform)) else None

    def _resolved(
        self,
        index: int,
        platform: str,
        record: Record,
        dep: str,
        role: str = NEEDED,
        target: int | None = None,
    ) -> bool:
        """Satisfy `dep` of `record` (of mirror `index`) for `platform` in mirror `target`,
        by default the one the name resolves in for `index`, adding candidates; False when
        nothing matches it. `role`: how the report names `record`, needing `dep` or
        constraining."""
        if dep.lstrip().startswith("__"):
            return True  # virtual packages (__glibc, __cuda, ...) come from the system
        parsed = self.specs.parse(dep)
        if parsed is None:
            return False
        if parsed.name.startswith("__"):
            return True
        if target is None:
            target = self._choose_mirror(index, platform, parsed.name)
            if target is None:
                return False
        # Resolving is idempotent because the kept/candidate union is fixed, so each
        # (mirror, platform, spec text) is resolved once; the first needing record is named.
        key = (target, platform, dep)
        scope = dependency_scope(platform)
        satisfied = self.resolved.get(key)
        if satisfied is None:
            why = f"{role} {record.fn} ({dep})"
            mirror = self.selections[index].mirror
            satisfied, trimmed = self._satisfy(target, scope, parsed, why, mirror)
            self.resolved[key] = satisfied
            if trimmed:
                self.trimmed.add(key)
        if key in self.trimmed:
            self._fit(index, platform, record, role, target, scope, parsed)
        return satisfied

    def _visit(self, index: int, subdir: str, record: Record) -> None:
        key = (index, subdir, record.fn)
        if key not in self.seen:
            self.seen.add(key)
            self.queue.append((index, subdir, record))

    # ------------------------------------------------------------------ one dependency

    def _choose_mirror(self, index: int, platform: str, name: str) -> int | None:
        key = (index, platform, name)
        try:
            return self.chosen[key]
        except KeyError:
            pass
        scope = dependency_scope(platform)
        target = next((i for i in self.order[index] if self._has_name(i, scope, name)), None)
        self.chosen[key] = target
        return target

    def _has_name(self, index: int, scope: list[str], name: str) -> bool:
        kept = self.kept[index].get(name, {})
        candidates = self.candidates[index].get(name, {})
        return any(s in kept or s in candidates for s in scope)

    def _satisfy(
        self, index: int, scope: list[str], parsed: DependencySpec, why: str, needed_by: str
    ) -> tuple[bool, bool]:
        """Whether `parsed` is satisfied, and whether newest_versions left some matching
        candidates out."""
        name = parsed.name
        match = SpecMatch(parsed, self.matcher)
        kept_in = self.kept[index].get(name, {})
        candidates_in = self.candidates[index].get(name, {})
        candidates = [
            (subdir, record)
            for subdir in scope
            if subdir in candidates_in
            for record in candidates_in[subdir].values()
            if match(record)
        ]
        in_scope = [(s, r) for s in scope if s in kept_in for r in kept_in[s].values()]
        selection = self.selections[index]
        newest = selection.newest_versions
        kept: list[tuple[str, Record]] = []
        trimmed = False
        if selection.include_dependencies and (newest is None or not candidates):
            # All kept records of this mirror are walked anyway: only ask whether one matches.
            satisfied = bool(candidates) or any(match(r) for _, r in in_scope)
        else:
            kept = [(s, r) for s, r in in_scope if match(r)]
            satisfied = bool(kept or candidates)
        if newest is not None and candidates:
            # The N newest over everything matching, kept included: a spec already served by
            # the mirror's newest versions adds nothing, however many specs name the package.
            versions = {parse_version(r.version) for _, r in (*kept, *candidates)}
            top = set(sorted(versions, reverse=True)[:newest])
            matching = len(candidates)
            candidates = [(s, r) for s, r in candidates if parse_version(r.version) in top]
            trimmed = len(candidates) < matching
        self._take(index, candidates, kept, name, why, needed_by)
        return satisfied, trimmed

    def _take(
        self,
        index: int,
        candidates: list[tuple[str, Record]],
        kept: list[tuple[str, Record]],
        name: str,
        why: str,
        needed_by: str,
    ) -> None:
        for subdir, record in candidates:
            self._add(index, subdir, name, record, why, needed_by)
        for subdir, record in (*kept, *candidates):
            self._visit(index, subdir, record)

    # ------------------------------------------------------------------ co-installable

    def _fit(
        self,
        index: int,
        platform: str,
        record: Record,
        role: str,
        target: int,
        scope: list[str],
        parsed: DependencySpec,
    ) -> None:
        """With newest_versions, the newest records matching a dependency may all need what
        `record` itself rules out (ignite for python 3.5 needs `pytorch`: the newest pytorch
        builds are for python 3.8 and later), so a client could not install `record`. Then
        the newest versions among the matching candidates whose dependencies can agree with
        `record`'s are added too."""
        name = parsed.name
        match = SpecMatch(parsed, self.matcher)
        kept_in = self.kept[target].get(name, {})
        # Lazily: the first kept build that agrees settles it, as it mostly does.
        kept = (r for s in scope for r in kept_in.get(s, {}).values() if match(r))
        if any(self.agreement.agree(index, platform, record, other) for other in kept):
            return
        candidates_in = self.candidates[target].get(name, {})
        fitting = [
            (s, r)
            for s in scope
            for r in candidates_in.get(s, {}).values()
            if match(r) and self.agreement.agree(index, platform, record, r)
        ]
        newest = self.selections[target].newest_versions or len(fitting)
        top = set(sorted({parse_version(r.version) for _, r in fitting}, reverse=True)[:newest])
        fitting = [(s, r) for s, r in fitting if parse_version(r.version) in top]
        why = f"{role} {record.fn} (with its other dependencies)"
        self._take(target, fitting, [], name, why, self.selections[index].mirror)

    def _add(
        self, index: int, subdir: str, name: str, record: Record, why: str, needed_by: str
    ) -> None:
        sel = self.selections[index]
        result = sel.results[subdir]
        del self.candidates[index][name][subdir][record.fn]
        self.kept[index].setdefault(name, {}).setdefault(subdir, {})[record.fn] = record
        result.candidates.pop(record.fn, None)
        result.excluded.pop(record.fn, None)
        result.kept[record.fn] = record
        added = Addition(subdir, record.fn, why, needed_by)
        self.report.added.setdefault(sel.mirror, []).append(added)


def _index(results: dict[str, FilterResult], kept: bool) -> dict[str, dict[str, dict[str, Record]]]:
    """name -> subdir -> {fn: record}, in subdir and filename order."""
    out: dict[str, dict[str, dict[str, Record]]] = {}
    for subdir in sorted(results):
        records = results[subdir].kept if kept else results[subdir].candidates
        for fn in sorted(records):
            record = records[fn]
            out.setdefault(record.name.lower(), {}).setdefault(subdir, {})[fn] = record
    return out


def close_dependencies(
    selections: list[MirrorSelection], matcher: RecordMatcher
) -> DependencyReport:
    """Add the dependencies of include_dependencies mirrors' records, transitively.

    `selections` are in config order, which is also mirror priority. Kept records that satisfy
    a dependency are walked as added ones, so a package served by a mirror without
    include_dependencies still has its own dependencies checked and, where possible, added.
    """
    return _Closure(selections, matcher).run()
