"""Private per-site state between runs: the upstream repodata last seen and its validators.

Kept under ``<site>/.sitegen/upstream/<mirror>/<subdir>/`` so that an unchanged upstream costs
one conditional request (304) and the body is read back from here. A body is kept as handed
in: a run hands it in without the secrets of the mirror's URL when it has some (see
upstream_secrets), and its validators say so (:func:`UpstreamCache.hidden_form`); the
validators themselves are kept as handed in too (see CacheValidators.hidden).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sitegen.layout import upstream_cache_dir
from sitegen.net.upstream import CacheValidators
from sitegen.store.interface import PendingWrite, SiteStorage

# How a kept body holds the secrets of the mirror's URL: its validators' "secrets_hidden".
AS_SERVED = 0  # not said: as upstream served it (a mirror without secrets, an earlier sitegen)
# true: as their references, by an earlier sitegen, which left upstream's own text that reads
# as one unescaped: the references it wrote are not told apart from upstream's.
UNESCAPED = 1
HIDDEN = 2  # as their references, upstream's own text escaped (see upstream_secrets)
# validators.json once upstream serves none: no variant, so no body is read back.
_SERVED_NONE = b'{"served": false}'


class UpstreamCache:
    """``where``: the folder of one mirror subdir's document (its repodata by default; its
    CEP-12 run_exports.json is kept the same way, in a folder of its own)."""

    def __init__(
        self, site: SiteStorage, where: Callable[[Path, str, str], Path] = upstream_cache_dir
    ) -> None:
        self.site = site
        self.where = where

    def _dir(self, mirror: str, subdir: str) -> Path:
        return self.where(self.site.root, mirror, subdir)

    def validators(self, mirror: str, subdir: str) -> CacheValidators | None:
        try:
            data = json.loads((self._dir(mirror, subdir) / "validators.json").read_text())
            return CacheValidators(
                variant=data["variant"],
                etag=data.get("etag"),
                last_modified=data.get("last_modified"),
                hidden=data.get("validators_hidden") is True,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def hidden_form(self, mirror: str, subdir: str) -> int:
        """How the body kept holds the secrets of the mirror's URL: AS_SERVED, UNESCAPED or
        HIDDEN."""
        try:
            path = self._dir(mirror, subdir) / "validators.json"
            said = json.loads(path.read_text()).get("secrets_hidden")
        except (OSError, ValueError, AttributeError):
            return AS_SERVED
        return UNESCAPED if said is True else HIDDEN if said == HIDDEN else AS_SERVED

    def body(self, mirror: str, subdir: str) -> bytes | None:
        validators = self.validators(mirror, subdir)
        if validators is None:
            return None
        try:
            return (self._dir(mirror, subdir) / validators.variant).read_bytes()
        except OSError:
            return None

    def store(
        self, mirror: str, subdir: str, validators: CacheValidators, body: bytes, hidden: bool
    ) -> None:
        """Keep ``body``; ``hidden``: handed in with the secrets hidden (see HIDDEN)."""
        directory = self._dir(mirror, subdir)
        # Body first: validators must never describe a body that is not on disk.
        self.site.write_bytes(directory / validators.variant, body)
        self._write_validators(directory, validators, hidden)

    def stage(
        self, mirror: str, subdir: str, validators: CacheValidators, body: bytes
    ) -> PendingWrite:
        """``body`` written for the cache but not in it yet: :meth:`keep` puts it there once
        it is known to be usable (the bytes need not be held meanwhile); discard it otherwise."""
        pending = self.site.pending(self._dir(mirror, subdir) / validators.variant)
        try:
            pending.write(body)
        except BaseException:
            pending.discard()
            raise
        return pending

    def keep(
        self,
        mirror: str,
        subdir: str,
        validators: CacheValidators,
        pending: PendingWrite,
        hidden: bool,
    ) -> None:
        """Put a staged body in the cache, then the validators that describe it (``hidden``:
        as for :meth:`store`)."""
        pending.sync()
        pending.commit()
        self._write_validators(self._dir(mirror, subdir), validators, hidden)

    def forget(self, mirror: str, subdir: str, *, served_none: bool = False) -> None:
        """Forget what was kept (upstream no longer serves it): its validators go first, so
        that nothing reads the body back. ``served_none``: they give way to a note that
        upstream served none (see :meth:`served_none`)."""
        directory = self._dir(mirror, subdir)
        validators = self.validators(mirror, subdir)
        if served_none:
            self.site.write_bytes(directory / "validators.json", _SERVED_NONE)
        else:
            self.site.remove(directory / "validators.json")
        if validators is not None:
            self.site.remove(directory / validators.variant)

    def served_none(self, mirror: str, subdir: str) -> bool:
        """Upstream served none when last asked: a mirror that does not ask it now stands for
        none, not for what an earlier run kept."""
        try:
            return (self._dir(mirror, subdir) / "validators.json").read_bytes() == _SERVED_NONE
        except OSError:
            return False

    def _write_validators(self, directory: Path, validators: CacheValidators, hidden: bool) -> None:
        document: dict[str, object] = {
            "variant": validators.variant,
            "etag": validators.etag,
            "last_modified": validators.last_modified,
        }
        if hidden:
            document["secrets_hidden"] = HIDDEN
        if validators.hidden:
            document["validators_hidden"] = True
        self.site.write_bytes(directory / "validators.json", json.dumps(document).encode())
