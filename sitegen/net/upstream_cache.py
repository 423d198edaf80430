"""Private per-site state between runs: the upstream repodata last seen and its validators.

Kept under ``<site>/.sitegen/upstream/<mirror>/<subdir>/`` so that an unchanged upstream costs
one conditional request (304) and the body is read back from here. A body is kept as handed
in: a run hands it in without the secrets of the mirror's URL when it has some (see
upstream_secrets), and its validators say so (:func:`UpstreamCache.hidden_form`); the
validators themselves are kept as handed in too (see CacheValidators.hidden). The validators
also record the sha256 of the body they describe: a body read back that is not those bytes
(cut short, a bit flipped on disk) is no copy, and the next request is made whole. A body an
earlier sitegen kept without its sha256 gets it once a run has read it back and parsed it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sitegen.layout import upstream_cache_dir, upstream_validators_path
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

    def _said(self, mirror: str, subdir: str) -> dict[str, Any]:
        """What validators.json says of the body kept; nothing when it is missing or unreadable."""
        try:
            said = json.loads(upstream_validators_path(self._dir(mirror, subdir)).read_text())
        except (OSError, ValueError):
            return {}
        return said if isinstance(said, dict) else {}

    def validators(self, mirror: str, subdir: str) -> CacheValidators | None:
        return _validators_of(self._said(mirror, subdir))

    def hidden_form(self, mirror: str, subdir: str) -> int:
        """How the body kept holds the secrets of the mirror's URL: AS_SERVED, UNESCAPED or
        HIDDEN."""
        said = self._said(mirror, subdir).get("secrets_hidden")
        return UNESCAPED if said is True else HIDDEN if said == HIDDEN else AS_SERVED

    def sha256(self, mirror: str, subdir: str) -> str | None:
        """The sha256 (hex) recorded of the body kept; None when none is (an earlier sitegen
        kept it), and then nothing tells a damaged body from a sound one but its parse."""
        return _sha256_of(self._said(mirror, subdir))

    def body(self, mirror: str, subdir: str) -> bytes | None:
        """The body kept; None without one, or when it is not the bytes kept (their sha256,
        where it is recorded; a run's inputs digest takes it then rather than hashing them
        again, see sitegen.sync.fetch)."""
        said = self._said(mirror, subdir)
        validators = _validators_of(said)
        if validators is None:
            return None
        try:
            body = (self._dir(mirror, subdir) / validators.variant).read_bytes()
        except OSError:
            return None
        recorded = _sha256_of(said)
        if recorded is not None and hashlib.sha256(body).hexdigest() != recorded:
            return None
        return body

    def store(
        self,
        mirror: str,
        subdir: str,
        validators: CacheValidators,
        body: bytes,
        hidden: bool,
        sha256: str,
    ) -> None:
        """Keep ``body``; ``sha256``: its sha256 (hex), checked when it is read back (empty:
        none known, it is not); ``hidden``: handed in with the secrets hidden (see HIDDEN)."""
        directory = self._dir(mirror, subdir)
        # Body first: validators must never describe a body that is not on disk.
        self.site.write_bytes(directory / validators.variant, body)
        self._write_validators(directory, validators, hidden, sha256)
        self.site.remove(directory / _other_form(validators.variant))

    def record_sha256(self, mirror: str, subdir: str, sha256: str) -> None:
        """Record ``sha256`` (hex) as that of the body kept, where validators.json records none
        (an earlier sitegen kept it): from then on damage to it is told when it is read back,
        not only by a parse that fails. The caller took it of the body read back, which parsed."""
        said = self._said(mirror, subdir)
        if _validators_of(said) is None or _sha256_of(said) is not None:
            return
        document = json.dumps({**said, "sha256": sha256}).encode()
        self.site.write_bytes(upstream_validators_path(self._dir(mirror, subdir)), document)

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
        sha256: str,
    ) -> None:
        """Put a staged body in the cache, then the validators that describe it (``hidden``,
        ``sha256``: as for :meth:`store`)."""
        pending.sync()
        pending.commit()
        directory = self._dir(mirror, subdir)
        self._write_validators(directory, validators, hidden, sha256)
        self.site.remove(directory / _other_form(validators.variant))

    def forget(self, mirror: str, subdir: str, *, served_none: bool = False) -> None:
        """Forget what was kept (upstream no longer serves it): its validators go first, so
        that nothing reads the body back. ``served_none``: they give way to a note that
        upstream served none (see :meth:`served_none`)."""
        directory = self._dir(mirror, subdir)
        validators = self.validators(mirror, subdir)
        if served_none:
            self.site.write_bytes(upstream_validators_path(directory), _SERVED_NONE)
        else:
            self.site.remove(upstream_validators_path(directory))
        if validators is not None:
            self.site.remove(directory / validators.variant)

    def served_none(self, mirror: str, subdir: str) -> bool:
        """Upstream served none when last asked: a mirror that does not ask it now stands for
        none, not for what an earlier run kept."""
        try:
            return upstream_validators_path(self._dir(mirror, subdir)).read_bytes() == _SERVED_NONE
        except OSError:
            return False

    def _write_validators(
        self, directory: Path, validators: CacheValidators, hidden: bool, sha256: str
    ) -> None:
        document: dict[str, object] = {
            "variant": validators.variant,
            "etag": validators.etag,
            "last_modified": validators.last_modified,
        }
        if sha256:
            document["sha256"] = sha256
        if hidden:
            document["secrets_hidden"] = HIDDEN
        if validators.hidden:
            document["validators_hidden"] = True
        self.site.write_bytes(upstream_validators_path(directory), json.dumps(document).encode())


def _other_form(variant: str) -> str:
    """The document's other form (``repodata.json`` and ``repodata.json.zst``): the one kept
    before upstream served this one (a run that fell back to the plain JSON while the .zst
    was missing) goes once this one is kept, rather than lie beside it for good, several
    times its size."""
    return variant.removesuffix(".zst") if variant.endswith(".zst") else f"{variant}.zst"


def _validators_of(said: dict[str, Any]) -> CacheValidators | None:
    try:
        return CacheValidators(
            variant=said["variant"],
            etag=said.get("etag"),
            last_modified=said.get("last_modified"),
            hidden=said.get("validators_hidden") is True,
        )
    except (KeyError, TypeError):
        return None


def _sha256_of(said: dict[str, Any]) -> str | None:
    recorded = said.get("sha256")
    return recorded if isinstance(recorded, str) and recorded else None
