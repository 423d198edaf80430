"""What a day whose log lines may still arrive keeps (its *open* state): the salt its clients
are hashed with and what was seen, to count each client, range and redirect once. Dropped with
the day (:meth:`~sitegen.stats.tally.Tally.close_days`); bounded by :data:`CLIENTS_KEPT`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

# Distinct clients an open day tells apart: far more than a mirror serves in a day; reached,
# about 70 MB of hashes in memory and 10 MB of state (yesterday and today may both be open).
CLIENTS_KEPT = 1_000_000


@dataclass
class OpenDay:
    """A day whose lines may still arrive: its salt and what was seen, for deduplication."""

    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    # Each client's tool is its user agent's: a client new to the day is new to its tool too.
    clients: set[bytes] = field(default_factory=set)
    # (client, channel|subdir|file or folder|installer file)
    ranges: set[tuple[bytes, str]] = field(default_factory=set)
    # (client, file) -> the fetcher's outcome of a redirect back to the static URL (Apache),
    # until the request that follows it (kept across runs with the day); see redirect.
    redirected: dict[tuple[bytes, str], bytes] = field(default_factory=dict)

    def first_range(self, client: bytes, key: str) -> bool:
        """Whether a 206 of ``key`` by ``client`` counts: the first the day has of the pair. It
        holds as many pairs as it tells apart clients; past them (endless user agents, each
        asking for a range), each range of a pair not held counts."""
        if (client, key) in self.ranges:
            return False
        if len(self.ranges) < CLIENTS_KEPT:
            self.ranges.add((client, key))
        return True

    def redirect(self, client: bytes, key: str, told: bytes) -> None:
        """Hold the fetcher's outcome ``told`` of a redirect of ``client`` to ``key`` for the
        200 that follows it. A client need not follow a redirect, so the pairs are held as
        many as the day tells apart clients; past them (endless user agents, each redirected),
        the 200 after a redirect of a pair not held counts as served from disk."""
        pair = (client, key)
        if pair in self.redirected or len(self.redirected) < CLIENTS_KEPT:
            self.redirected[pair] = told

    def take_client(self, client: bytes) -> bool | None:
        """Whether ``client`` is new to the day (then held): False when held already, None when
        the day tells apart no more clients (its counts of clients are a lower bound)."""
        if client in self.clients:
            return False
        if len(self.clients) >= CLIENTS_KEPT:
            return None
        self.clients.add(client)
        return True
