"""Path tokens never reach the access log of real nginx and real Apache running the configs of
``sitegen webconf --standalone``, whatever the request line holds before or after the token:
other ``/t/`` segments (a decoy, a ``t`` segment right before the token's, the token twice,
more ``/t/`` segments than any fixed count, the query), with private channels and without.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import unquote_to_bytes

import pytest

from testkit.apache import require_server, webconf_server
from testkit.private_site import (
    PRIVATE,
    PUBLIC,
    PrivateSite,
    assert_no_token_anywhere,
    request,
    wait_for_log,
)

pytestmark = pytest.mark.integration

PREFIX = "/mirror"
REL = "linux-64/repodata.json"


def _forms(channel: str) -> list[str]:
    """Request paths (``{}``: the token) with /t/ segments besides the token's."""
    many = "".join(f"/t/d{i}" for i in range(12))
    return [
        f"{PREFIX}/t/{{}}/{channel}/{REL}",  # location: the site's prefix
        f"{PREFIX}/t/t/{{}}/{channel}/{REL}",
        f"/t/{{}}{PREFIX}/{channel}/{REL}",  # pixi, mamba: after the host
        f"/t/x/t/{{}}{PREFIX}/{channel}/{REL}",
        f"{PREFIX}/t/x/t/{{}}/{channel}/{REL}",
        f"/t/t/t/{{}}{PREFIX}/{channel}/{REL}",
        f"/t/{{}}{PREFIX}/{channel}/t/{{}}/{REL}",
        f"{PREFIX}/{channel}/t/t/{{}}/{REL}",
        f"{many}/t/{{}}{PREFIX}/{channel}/{REL}",
        f"{PREFIX}/t/{{}}{many}/{channel}/{REL}",
        f"{PREFIX}/{channel}/{REL}?q=/t/{{}}/",  # in the query: logged as well
        f"{PREFIX}/{channel}/{REL}?a=1&q=/t/{{}}",
        f"{PREFIX}/{channel}/{REL}?q=%2Ft%2F{{}}",  # not written plainly: masked whole
    ]


@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("private", [True, False], ids=["private channels", "all public"])
def test_no_path_token_reaches_the_access_log_whatever_the_line_holds(
    server: str, private: bool, private_site: PrivateSite
) -> None:
    require_server(server)
    config = private_site.config
    if not private:  # the config of a site without private channels
        config = replace(config, channels=tuple(c for c in config.channels if c.path == PUBLIC))
    ci = private_site.tokens["ci"]
    running = webconf_server(server, config, private_site.root / "state", prefix=PREFIX)
    with running:
        for form in _forms(PRIVATE if private else PUBLIC):
            status, _, _ = request(running.url, form.format(ci, ci))
            # The token where conda puts it lets the request in; elsewhere nothing is there.
            assert status in (200, 401, 403, 404), (form, status)
        if private:  # where conda puts it, after the prefix, the token lets the file out
            assert request(running.url, _forms(PRIVATE)[0].format(ci))[0] == 200
    log = running.state_dir / "access.log"
    wait_for_log(log)
    logged = log.read_bytes()
    masked = [line for line in logged.splitlines() if b"/t/***" in line or b" /*** " in line]
    assert len(masked) == len(_forms(PUBLIC)) + private  # every line of the run
    for secret in (ci, ci[13:]):
        assert secret.encode() not in logged + unquote_to_bytes(logged)
    if private:  # nor anywhere else (a public site's error log may name what was asked)
        assert_no_token_anywhere(private_site, running.state_dir)


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_no_path_token_reaches_the_error_log_of_a_public_site(
    server: str, private_site: PrivateSite
) -> None:
    """A site with no private channel takes no path token, but a client may still send one
    (configured for the host before, or for another site on it): what it asks for is missing,
    or its name too long for the filesystem, and the server's error log must not quote it."""
    require_server(server)
    config = replace(
        private_site.config,
        channels=tuple(c for c in private_site.config.channels if c.path == PUBLIC),
    )
    ci = private_site.tokens["ci"]
    forms = [
        f"/anaconda/t/{ci}/{PUBLIC}/{REL}",  # conda: after the prefix
        f"/t/{ci}/anaconda/{PUBLIC}/{REL}",  # pixi, mamba: after the host
        f"/t/{ci}/{PUBLIC}/{REL}",
        f"/anaconda/{PUBLIC}/t/{ci}/linux-64/missing.json",
        f"/anaconda/t/{ci}/{PUBLIC}/linux-64/" + "n" * 300,  # ENAMETOOLONG
        f"/anaconda/t/{ci}/",
        f"/anaconda/t/{ci}",
    ]
    running = webconf_server(server, config, private_site.root / "state", prefix="/anaconda")
    with running:
        for form in forms:
            status, _, _ = request(running.url, form)
            assert status in (403, 404), (form, status)
    wait_for_log(running.state_dir / "access.log")
    error_log = running.state_dir / "error.log"
    logged = error_log.read_bytes() if error_log.exists() else b""
    for secret in (ci, ci[13:]):
        assert secret.encode() not in logged + unquote_to_bytes(logged), logged[-600:]
