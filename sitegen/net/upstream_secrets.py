"""The secrets of a mirror's URL kept out of what the site stores of its upstream.

A mirror's URL takes its token or password from the environment (``${NAME}`` in channels.yaml),
and upstream may echo it in what it serves: an anaconda.org-style channel under ``/t/<token>/``
may write its own URL as CEP-15's ``info.base_url``. What the site keeps of a repodata body (the
copy kept for conditional requests, the ``base_url`` of the origins map) holds each such value
written back as its reference, as channels.yaml writes it: ``${NAME}``, or ``%24%7BNAME%7D``
where the value stood percent-encoded (as it does in a URL's user:password part). The values
are filled in again where the body is parsed and where a request is made. Where it is parsed,
a record holding a credential of the URL (its token or password) is refused: published, it
would hand that credential to every reader of the site (see sitegen.conda.record_secrets).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from sitegen.conda.record_secrets import SecretSearch
from sitegen.config import MirrorConfig
from sitegen.config.urls import MIN_CREDENTIAL, MIN_SECRET


class UpstreamSecrets:
    """The values of one mirror's ${ENV} references, and the references that stand for them."""

    def __init__(self, values: Mapping[str, str], credentials: Iterable[str] = ()) -> None:
        """``values``: ${ENV} name -> value; ``credentials``: those names whose values are
        credentials (see MirrorConfig.credential_env)."""
        pairs: dict[str, str] = {}
        for name, value in values.items():
            if len(value) < MIN_SECRET:
                continue
            reference = f"${{{name}}}"
            pairs[value] = reference
            pairs.setdefault(quote(value, safe=""), quote(reference, safe=""))
        # Longest first: a value holding another is replaced whole.
        self._hide = sorted(pairs.items(), key=lambda pair: len(pair[0]), reverse=True)
        self._reveal = [(reference, value) for value, reference in self._hide]
        # What no published record may hold.
        self.in_records = SecretSearch(
            value for name in credentials if len(value := values.get(name, "")) >= MIN_CREDENTIAL
        )

    @classmethod
    def of(cls, mirror: MirrorConfig, environ: Mapping[str, str] | None = None) -> UpstreamSecrets:
        env = os.environ if environ is None else environ
        values = {name: env[name] for name in mirror.secret_env if name in env}
        return cls(values, mirror.credential_env)

    def __bool__(self) -> bool:
        return bool(self._hide)

    def hide(self, data: bytes) -> bytes:
        """``data`` with each value written as its reference; the same object when it holds
        none."""
        for value, reference in self._hide:
            if value.encode() in data:
                data = data.replace(value.encode(), reference.encode())
        return data

    def reveal(self, data: bytes) -> bytes:
        """What :meth:`hide` gave, as it was (the same object when it holds no reference)."""
        for reference, value in self._reveal:
            if reference.encode() in data:
                data = data.replace(reference.encode(), value.encode())
        return data

    def hide_text(self, text: str) -> str:
        """:meth:`hide` for text (a URL)."""
        for value, reference in self._hide:
            text = text.replace(value, reference)
        return text

    def reveal_text(self, text: str) -> str:
        """:meth:`reveal` for text (a URL)."""
        for reference, value in self._reveal:
            text = text.replace(reference, value)
        return text
