"""Whether two records of the dependency closure (:mod:`sitegen.sync.closure`) can be
installed together, judged on the records of the mirrors their names resolve in: directly
(:meth:`Agreement.agree`), and down the dependencies of the one installed for the other
(:meth:`Agreement.installable`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.sync.closure_specs import DependencySpec, SpecCache, SpecMatch, dependency_scope

# Per mirror: name -> subdir -> {fn: record}.
MirrorIndex = list[dict[str, dict[str, dict[str, Record]]]]
# (mirror of the needing record, platform, name) -> the mirror the name resolves in, if any.
ChooseMirror = Callable[[int, str, str], int | None]
# (mirror, subdir, fn) of the record a check is for, platform, (mirror, subdir, fn) checked.
_Pair = tuple[int, str, str, str, int, str, str]


class Agreement:
    """Answers over the kept and candidate records of every mirror, which the closure moves
    between the two but whose union never changes: so each answer is remembered."""

    def __init__(
        self,
        specs: SpecCache,
        matcher: RecordMatcher,
        kept: MirrorIndex,
        candidates: MirrorIndex,
        choose_mirror: ChooseMirror,
    ) -> None:
        self.specs = specs
        self.matcher = matcher
        self.kept = kept
        self.candidates = candidates
        self.choose_mirror = choose_mirror
        # (mirror, platform, spec text, spec text) -> whether one record matches both.
        self.overlaps: dict[tuple[int, str, str, str], bool] = {}
        # spec text -> its matcher; id(record) -> its specs by name (see pins).
        self.matches: dict[str, SpecMatch] = {}
        self.pinned: dict[int, dict[str, list[tuple[DependencySpec, str]]]] = {}
        # What installable found, and the pairs it is judging, down the current path.
        self.installs: dict[_Pair, bool] = {}
        self.judging: set[_Pair] = set()

    def match(self, parsed: DependencySpec, text: str) -> SpecMatch:
        """The matcher of spec `text` (parsed as `parsed`), one per text: it remembers its
        answer per version."""
        found = self.matches.get(text)
        if found is None:
            found = self.matches[text] = SpecMatch(parsed, self.matcher)
        return found

    def pins(self, record: Record) -> dict[str, list[tuple[DependencySpec, str]]]:
        """name -> the specs `record` depends on or constrains it with: installed beside
        `record`, a build of the name has to match them all."""
        key = id(record)  # records live as long as the closure, and two may share a filename
        found = self.pinned.get(key)
        if found is None:
            found = self.pinned[key] = {}
            for text in (*(record.raw.get("depends") or ()), *(record.raw.get("constrains") or ())):
                parsed = self.specs.parse(text)
                if parsed is not None:
                    found.setdefault(parsed.name, []).append((parsed, text))
        return found

    def builds(
        self, target: int, platform: str, record: Record, dep: str
    ) -> list[tuple[str, Record, bool]]:
        """The (subdir, build, kept)s of mirror `target` matching `dep` and what `record`
        asks of its name, kept ones first; [] for a spec naming no single package."""
        parsed = self.specs.parse(dep)
        if parsed is None:
            return []
        matches = [self.match(parsed, dep)]
        matches += [self.match(p, text) for p, text in self.pins(record).get(parsed.name, ())]
        return [
            (s, build, pool is self.kept)
            for pool in (self.kept, self.candidates)
            for s in dependency_scope(platform)
            for build in pool[target].get(parsed.name, {}).get(s, {}).values()
            if all(match(build) for match in matches)
        ]

    def installable(
        self, index: int, platform: str, record: Record, target: int, other: Record
    ) -> bool:
        """Whether `other`, of mirror `target`, installs beside `record`, of mirror `index`:
        they agree, and each dependency of `other` has a build, in the mirror its name
        resolves in, that matches what `record` asks of the name and is installable beside
        `record` in turn, kept or not. Each build is held to `record`'s specs, not to those of
        the builds beside it; a dependency cycle is taken to close."""
        key = (index, record.subdir, record.fn, platform, target, other.subdir, other.fn)
        known = self.installs.get(key)
        if known is not None:
            return known
        if key in self.judging:
            return True
        if not self.agree(index, platform, record, other):
            self.installs[key] = False
            return False
        self.judging.add(key)
        known = all(
            self._served(index, platform, record, target, dep)
            for dep in other.raw.get("depends") or ()
        )
        self.judging.discard(key)
        self.installs[key] = known
        return known

    def _served(self, index: int, platform: str, record: Record, target: int, dep: str) -> bool:
        parsed = self.specs.parse(dep)
        if parsed is None or parsed.name.startswith("__"):
            return True  # a virtual package, from the system, or no single package to hold
        source = self.choose_mirror(target, platform, parsed.name)
        if source is None:
            return True  # the client looks elsewhere, as agree takes it
        return any(
            self.installable(index, platform, record, source, build)
            for _, build, _ in self.builds(source, platform, record, dep)
        )

    def agree(self, index: int, platform: str, record: Record, other: Record) -> bool:
        """Whether each name both records depend on has a record matching both their specs,
        and so has each name one depends on and the other constrains: installed, the name
        is held to the constraint (a name no mirror has for the platform is taken to agree:
        the client looks elsewhere)."""
        needs, limits = record.raw.get("depends") or (), record.raw.get("constrains") or ()
        its_needs, its_limits = other.raw.get("depends") or (), other.raw.get("constrains") or ()
        pairs = ((needs, its_needs), (needs, its_limits), (limits, its_needs))
        return all(self._compatible(index, platform, a, b) for a, b in pairs)

    def _compatible(
        self, index: int, platform: str, specs: Iterable[str], others: Iterable[str]
    ) -> bool:
        """Whether each name both lists of specs write has a record matching both specs."""
        by_name: dict[str, list[str]] = {}
        for text in specs:
            parsed = self.specs.parse(text)
            if parsed is not None:
                by_name.setdefault(parsed.name, []).append(text)
        for text in others:
            parsed = self.specs.parse(text)
            if parsed is None or parsed.name.startswith("__"):
                continue
            for mine in by_name.get(parsed.name, ()):
                if mine != text and not self._overlap(index, platform, parsed.name, mine, text):
                    return False
        return True

    def _overlap(self, index: int, platform: str, name: str, first: str, second: str) -> bool:
        key = (index, platform, first, second)
        known = self.overlaps.get(key)
        if known is not None:
            return known
        target = self.choose_mirror(index, platform, name)
        a, b = self.specs.parse(first), self.specs.parse(second)
        if target is None or a is None or b is None:
            known = True
        else:
            match_a, match_b = SpecMatch(a, self.matcher), SpecMatch(b, self.matcher)
            records = [
                r
                for pool in (self.kept[target], self.candidates[target])
                for s in dependency_scope(platform)
                for r in pool.get(name, {}).get(s, {}).values()
            ]
            known = any(match_a(r) and match_b(r) for r in records)
        self.overlaps[key] = known
        return known
