"""Private channels behind real nginx and real Apache, run from ``sitegen webconf --standalone``:
who is let in.

A site with a public and private channels (mirrored from the example upstream, pages rendered;
see :mod:`testkit.private_site`) is served by each server; tokens are issued with ``sitegen
token``. Every credential form conda, mamba and pixi send is tried against repodata, a shard, a
package file and a page (curl for ``.netrc``), at the root and under a prefix, and a path token
wherever conda puts it; py-rattler installs through its authentication storage and through a
``/t/`` URL; revocation takes effect after at most a reload; the files naming every channel are
served to no one; and afterwards every log and output file is searched for the tokens.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from sitegen.cli import main
from testkit.access import fetcher_subprocess, install_with_auth, rattler_auth_file
from testkit.apache import require_server, webconf_server
from testkit.private_site import (
    BASIC_LOGINS,
    PREFIX,
    PRIVATE,
    PUBLIC,
    PULL,
    PrivateSite,
    assert_no_token_anywhere,
    basic,
    bearer,
    package_of,
    request,
    token_add,
    token_list,
    wait_for_log,
    wait_status,
    wrong_token,
)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("prefix", [PREFIX, ""])
def test_every_credential_form_on_every_kind_of_file(
    server: str, prefix: str, private_site: PrivateSite, tmp_path: Path
) -> None:
    require_server(server)
    site = private_site.config.output
    tokens = private_site.tokens
    ci = tokens["ci"]
    for optional in ("current_repodata.json", "repodata_shards.msgpack.zst"):
        (site / PRIVATE / "linux-64" / optional).unlink()  # optional files clients probe
    # At the root: the symlink deploy (the config names the link, Apache's <Directory> too).
    root = site
    if not prefix:
        root = private_site.root / "www"
        root.symlink_to(site)
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=prefix, root=root
    )
    shard_name = f"{'ab' * 32}.msgpack.zst"
    for channel in (PRIVATE, PUBLIC):  # a CEP-16 shard, as written beside the index
        shard = site / channel / "linux-64" / "shards" / shard_name
        shard.parent.mkdir(exist_ok=True)
        shard.write_bytes(b"(shard)")
    for channel in (PRIVATE, PUBLIC):  # CEP-12, as a mirror whose upstream serves one has it
        (site / channel / "linux-64" / "run_exports.json").write_text('{"info": {}}')
    files = {
        "repodata": "linux-64/repodata.json",
        "run_exports": "linux-64/run_exports.json",
        "shard": f"linux-64/shards/{shard_name}",
        "package": f"linux-64/{package_of(site, PRIVATE)}",
        "page": "",  # the channel's index.html
    }
    with running:
        url = running.url
        for kind, rel in files.items():
            private = f"{prefix}/{PRIVATE}/{rel}"
            expected_body = (site / PRIVATE / (rel or "index.html")).read_bytes()
            cases: list[tuple[str, str, dict[str, str], int]] = [
                ("no credentials", private, {}, 401),
                ("wrong Bearer", private, bearer(wrong_token(ci)), 401),
                ("wrong path token", f"/t/{wrong_token(ci)}{private}", {}, 401),
                ("wrong Basic", private, basic("ci", wrong_token(ci)), 401),
                ("token of no reader", private, bearer(tokens["outsider"]), 401),
                ("revoked Bearer", private, bearer(tokens["gone"]), 403),
                ("revoked path token", f"{prefix}/t/{tokens['gone']}/{PRIVATE}/{rel}", {}, 403),
                ("revoked Basic", private, basic("gone", tokens["gone"]), 403),
                ("expired Bearer", private, bearer(tokens["old"]), 403),
                ("expired path token", f"/t/{tokens['old']}{private}", {}, 403),
                ("Bearer", private, bearer(ci), 200),
                ("Bearer, direct grant", private, bearer(tokens["alice"]), 200),
                ("path token after the host", f"/t/{ci}{private}", {}, 200),
                ("path token after the prefix", f"{prefix}/t/{ci}/{PRIVATE}/{rel}", {}, 200),
                ("Basic", private, basic("ci", ci), 200),
                # Schemes are case-insensitive (RFC 9110).
                ("bearer in lower case", private, {"Authorization": f"bearer {ci}"}, 200),
                (
                    "BASIC in upper case",
                    private,
                    {"Authorization": basic("ci", ci)["Authorization"].replace("Basic", "BASIC")},
                    200,
                ),
                # A client may send two forms at once (a /t/ URL and a stored Bearer token).
                ("path token and Bearer", f"/t/{ci}{private}", bearer(ci), 200),
                (
                    "path token and another's Bearer",
                    f"/t/{ci}{private}",
                    bearer(tokens["alice"]),
                    200,
                ),
                # HTTP Basic takes any login, whatever base64 alignment it gives the token.
                *[
                    (f"Basic as {login!r}", private, basic(login, ci), 200)
                    for login in BASIC_LOGINS
                ],
                *[
                    (f"wrong Basic as {login!r}", private, basic(login, wrong_token(ci)), 401)
                    for login in BASIC_LOGINS
                ],
                ("revoked Basic as another", private, basic("someone-else", tokens["gone"]), 403),
                ("expired Basic as another", private, basic("a", tokens["old"]), 403),
            ]
            for what, path, headers, status in cases:
                got, response_headers, body = request(url, path, headers)
                assert got == status, f"{server} {kind}: {what}: {got}"
                if status == 401:
                    assert response_headers["www-authenticate"].startswith("Basic "), what
                if status == 200:
                    assert body == expected_body, f"{kind}: {what}"
                else:
                    assert ci.encode() not in body
            # A path token spelled oddly (percent-encoded, dot segments, doubled slashes) is
            # read by the server once decoded; whatever it answers, the log must not show it.
            odd = f"%{ord(ci[0]):02x}{ci[1:]}"
            for path in (
                f"/%74/{ci}{private}",
                f"/%74%2f{ci}{private}",
                f"/t/{odd}{private}",
                f"/t//{ci}{private}",
                f"/t/./{ci}{private}",
                f"/x/../t/{ci}{private}",
                f"{prefix}/%74/{ci}/{PRIVATE}/{rel}",
                f"{prefix}/t/{odd}/{PRIVATE}/{rel}",
                f"{prefix}/{PRIVATE}/../t/{ci}/{PRIVATE}/{rel}",
            ):
                request(url, path)
            # The public channel stays public, with or without a token in the URL.
            public = f"{prefix}/{PUBLIC}/{rel}"
            assert request(url, public)[0] == 200, kind
            assert request(url, f"/t/{ci}{public}")[0] == 200, kind

        # Private state stays denied whatever the path token says.
        (site / ".sitegen").mkdir(exist_ok=True)
        (site / ".sitegen" / "token-test").write_text("private state")
        for path in (
            f"/t/{ci}{prefix}/.sitegen/token-test",
            f"{prefix}/t/{ci}/.sitegen/token-test",
        ):
            status, _, body = request(url, path)
            assert status in (403, 404) and b"private state" not in body, path

        # ~/.netrc: Basic with the token as password (any login), as conda and pixi read it.
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine 127.0.0.1 login someone-else password {ci}\n")
        netrc.chmod(0o600)
        curl = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--netrc-file", str(netrc),
             f"{url}{prefix}/{PRIVATE}/linux-64/repodata.json"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert curl.stdout == "200"

        # An authorised request for a missing optional file is a clean 404 (clients fall
        # back); without a token it is still 401: absence tells nothing.
        optionals = ("repodata_shards.msgpack.zst", "current_repodata.json", "run_exports.json.zst")
        for optional in optionals:
            path = f"{prefix}/{PRIVATE}/linux-64/{optional}"
            assert request(url, path, bearer(ci))[0] == 404, optional
            status, _, body = request(url, f"/t/{ci}{path}")
            assert status == 404 and ci.encode() not in body, optional
            assert request(url, path, basic("ci", ci))[0] == 404, optional
            assert request(url, path)[0] == 401, optional

    # The log tells when each token was last used (a 401 or 403 is not a use).
    access_log = running.state_dir / "access.log"
    wait_for_log(access_log)
    listing = token_list(private_site.config_path, access_log)
    assert listing["ci"][-1] != "-" and listing["alice"][-1] != "-"
    assert listing["outsider"][-1] == listing["gone"][-1] == listing["old"][-1] == "-"
    assert_no_token_anywhere(private_site, running.state_dir)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_a_path_token_is_let_in_wherever_conda_puts_it(
    server: str, private_site: PrivateSite, tmp_path: Path
) -> None:
    """conda puts /t/<token>/ between a channel's location and its name: after the host, or
    after /conda for a channel URL given whole whose path starts so, or after the URL a
    channel_alias or custom_channels entry names (``licensed:
    https://host/conda/mirror/t/<token>/internal``). Each place lets the token in, and no
    further than the others: never to private state or the records that name every channel,
    never into a log."""
    require_server(server)
    prefix = "/conda/mirror"
    site = private_site.config.output
    tokens = private_site.tokens
    ci = tokens["ci"]
    ledger = sorted((site / "history" / "runs").glob("*.json"))[0].name
    (site / "stats.json").write_text("{}")
    (site / ".sitegen" / "token-test").write_text("private state")
    rel = "linux-64/repodata.json"
    fn = package_of(site, PULL)
    with fetcher_subprocess(private_site.config_path, tmp_path / "fetcher.log") as address:
        running = webconf_server(
            server,
            private_site.config,
            private_site.root / "state",
            prefix=prefix,
            fetcher=address,
        )
        with running:
            url = running.url
            for place in (
                f"/conda/t/{{}}/mirror/{PRIVATE}/{rel}",  # the whole URL: location host/conda
                f"{prefix}/internal/t/{{}}/licensed/{rel}",  # custom_channels, as above
                f"{prefix}/internal/t/{{}}/pull/linux-64/{fn}",  # fetched, stored
                f"/t/{{}}{prefix}/{PRIVATE}/{rel}",  # pixi, mamba: after the host
                f"{prefix}/t/{{}}/{PRIVATE}/{rel}",  # location: the site's prefix
            ):
                assert request(url, place.format(wrong_token(ci)))[0] == 401, place
                revoked = 403 if PRIVATE in place.replace("/t/{}", "") else 401  # PULL: no reader
                assert request(url, place.format(tokens["gone"]))[0] == revoked, place
                # Apache sends a file the fetcher stored after a redirect to the same URL.
                got = httpx.get(url + place.format(ci), follow_redirects=True)
                assert got.status_code == 200, (place, got.status_code)
                stored = site / (PULL if place.endswith(fn) else PRIVATE) / "linux-64"
                assert got.content == (stored / place.rsplit("/", 1)[1]).read_bytes(), place
            for path in (
                f"/conda/t/{ci}/mirror/.sitegen/token-test",
                f"/conda/t/{ci}/mirror/history/runs/{ledger}",
                f"/conda/t/{ci}/mirror/stats.json",
            ):
                status, _, body = request(url, path)
                assert status in (403, 404) and b"private state" not in body, path
            # A public channel stays public, whatever token stands where.
            assert request(url, f"/conda/t/{ci}/mirror/{PUBLIC}/{rel}")[0] == 200
            assert request(url, f"{prefix}/cloud/t/{ci}/conda-forge/{rel}")[0] == 200
    wait_for_log(running.state_dir / "access.log")
    assert_no_token_anywhere(private_site, running.state_dir)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_rattler_installs_with_its_auth_storage_and_with_a_path_token(
    server: str,
    private_site: PrivateSite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_server(server)
    token = private_site.tokens["ci"]
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    with running:
        channel = f"{running.url}{PREFIX}/{PRIVATE}"
        entries = {
            "bearer": {"BearerToken": token},
            "basic": {"BasicHTTP": {"username": "someone-else", "password": token}},
            # rattler inserts a conda token right after the host, as pixi does.
            "conda-token": {"CondaToken": token},
        }
        for kind, entry in entries.items():
            auth_file = rattler_auth_file(tmp_path / f"auth-{kind}.json", "127.0.0.1", entry)
            monkeypatch.setenv("RATTLER_AUTH_FILE", str(auth_file))
            installed = install_with_auth(channel, ["numpy"], tmp_path / kind)
            assert "numpy" in installed, kind
        monkeypatch.delenv("RATTLER_AUTH_FILE")
        # conda's placement: /t/<token>/ right after the channel location (the prefix).
        with_token = f"{running.url}{PREFIX}/t/{token}/{PRIVATE}"
        installed = install_with_auth(with_token, ["numpy"], tmp_path / "path-token")
        assert "numpy" in installed
        # And without any credential, nothing.
        with pytest.raises(Exception, match="401"):
            install_with_auth(channel, ["numpy"], tmp_path / "anonymous")
    assert_no_token_anywhere(private_site, running.state_dir)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_revocation_takes_effect_with_at_most_a_reload(
    server: str, private_site: PrivateSite, capsys: pytest.CaptureFixture[str]
) -> None:
    require_server(server)
    config_path = private_site.config_path
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    path = f"{PREFIX}/{PRIVATE}/linux-64/repodata.json"
    with running:
        url = running.url
        assert request(url, path, bearer(private_site.tokens["alice"]))[0] == 200
        # nginx reads the map when it reloads: access.reload signals this very server.
        assert running.proc is not None
        text = config_path.read_text().replace(
            "reload: [true]", f"reload: [kill, -HUP, '{running.proc.pid}']"
        )
        config_path.write_text(text)
        # Apache reads the token files per request: no reload at all.
        reload = ["--reload"] if server == "nginx" else []
        assert main(["token", "revoke", "alice", *reload, "-c", str(config_path)]) == 0
        new = token_add(config_path, "bob", "--channel", PRIVATE, *reload)
        assert main(["token", "list", "-c", str(config_path)]) == 0
        listing = capsys.readouterr().out
        assert "alice" in listing and "revoked" in listing and new not in listing
        assert wait_status(url, path, bearer(private_site.tokens["alice"]), 403)
        assert wait_status(url, path, bearer(new), 200)


@pytest.mark.integration
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_files_naming_every_channel_are_not_served(server: str, private_site: PrivateSite) -> None:
    """The run ledger, the filtered-out records and stats.json name private channels' files:
    with a private channel they are not served to anyone; the pages stay public."""
    require_server(server)
    site = private_site.config.output
    ledger = sorted((site / "history" / "runs").glob("*.json"))
    assert ledger, "the mirror run left no run record"
    (site / "stats.json").write_text("{}")
    ci = private_site.tokens["ci"]
    running = webconf_server(
        server, private_site.config, private_site.root / "state", prefix=PREFIX
    )
    with running:
        url = running.url
        for path in (f"history/runs/{ledger[0].name}", "stats.json"):
            for headers in ({}, bearer(ci)):
                status = request(url, f"{PREFIX}/{path}", headers)[0]
                assert status in (403, 404), (path, headers, status)
            assert request(url, f"/t/{ci}{PREFIX}/{path}")[0] in (403, 404), path
        assert request(url, f"{PREFIX}/history/index.html")[0] == 200
        assert request(url, f"{PREFIX}/{PUBLIC}/linux-64/repodata.json")[0] == 200
