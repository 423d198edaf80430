"""The passive fetcher's own token check: every credential form read, in any case, and a
token reading only the channels it is granted."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from sitegen.access.check import TokenCheck
from sitegen.access.server_files import AccessPaths, private_channels
from sitegen.access.tokens import basic_header, new_token
from sitegen.config import parse_config
from testkit.tokens import NOW


@pytest.mark.unit
def test_the_fetchers_check_reads_every_credential_form() -> None:
    from sitegen.access.check import credential

    token = new_token()
    forms = [
        [(b"Authorization", f"Bearer {token}".encode())],
        [(b"authorization", basic_header("whoever", token).encode())],
        [(b"X-Sitegen-Token", token.encode())],
        [(b"X-Sitegen-Uri", f"/conda/t/{token}/internal/licensed/x.conda".encode())],
    ]
    for headers in forms:
        assert credential(headers) == token, headers
    for headers in (
        [],
        [(b"Authorization", b"Bearer nope")],
        [(b"Authorization", b"Basic !!!")],
        [(b"X-Sitegen-Uri", b"/conda/internal/licensed/x.conda")],
    ):
        assert credential(headers) is None, headers


@pytest.mark.unit
def test_the_fetchers_check_lets_a_token_read_only_the_channels_it_is_granted(
    tmp_path: Path,
) -> None:
    """Scopes: a token named by one private channel's readers (directly or through a group)
    or added for it reads that channel, never another private one (401, as from the web
    servers); an expired or revoked token reads none (403 where it was a reader's, 401
    elsewhere)."""
    config = parse_config(
        textwrap.dedent(f"""\
            output: {tmp_path / "site"}
            access: {{groups: {{team: [ci]}}}}
            channels:
              internal/licensed:
                url: https://example.org/lic
                subdirs: [noarch]
                access: private
                readers: [team]
              internal/other:
                url: https://example.org/other
                subdirs: [noarch]
                access: private
            """)
    )
    licensed, other = private_channels(config)
    assert (licensed.path, other.path) == ("internal/licensed", "internal/other")
    store = AccessPaths.of(config).store
    ci = store.add("ci", [], NOW)
    granted = store.add("granted", ["internal/other"], NOW)
    dying = store.add("dying", ["internal/other"], NOW, NOW + dt.timedelta(hours=1))
    check = TokenCheck(config)

    def refusal(channel, token: str, now: dt.datetime = NOW) -> int | None:
        return check.refusal(channel, [(b"Authorization", f"Bearer {token}".encode())], now)

    assert refusal(licensed, ci) is None and refusal(other, ci) == 401
    assert refusal(other, granted) is None and refusal(licensed, granted) == 401
    assert refusal(other, dying) is None
    assert refusal(other, dying, NOW + dt.timedelta(hours=2)) == 403
    store.revoke("granted", NOW)
    assert refusal(other, granted) == 403 and refusal(licensed, granted) == 401


@pytest.mark.unit
def test_the_credential_scheme_is_read_in_any_case() -> None:
    """``bearer``, ``BASIC``: the scheme's case does not matter (README, Private channels)."""
    from sitegen.access.check import credential

    token = new_token()
    basic = basic_header("whoever", token).split(" ", 1)[1]
    for scheme in ("bearer", "BEARER", "Bearer"):
        assert credential([(b"Authorization", f"{scheme} {token}".encode())]) == token
    for scheme in ("basic", "BASIC"):
        assert credential([(b"authorization", f"{scheme} {basic}".encode())]) == token
