"""Whether two records of the dependency closure (:mod:`sitegen.sync.closure`) can be
installed together, judged on the records of the mirrors their names resolve in."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.sync.closure_specs import SpecCache, SpecMatch, dependency_scope

# Per mirror: name -> subdir -> {fn: record}.
MirrorIndex = list[dict[str, dict[str, dict[str, Record]]]]
# (mirror of the needing record, platform, name) -> the mirror the name resolves in, if any.
ChooseMirror = Callable[[int, str, str], int | None]


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
