"""A private site's settings: every token reads it, token files, the fetcher's check, webconf."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from sitegen.access.check import TokenCheck
from sitegen.access.refresh import refresh_access
from sitegen.access.server_files import AccessPaths, apache_files, nginx_map_text
from sitegen.cli import main
from sitegen.config import ConfigError, parse_config
from sitegen.tools.webconf import WebconfOptions, render_webconf
from testkit.private_site import wrong_token

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _config(tmp_path: Path, site: str = "site: private") -> str:
    return textwrap.dedent(f"""\
        output: {tmp_path / "site"}
        access:
          {site}
          groups: {{team: [ci]}}
        channels:
          pub: {{url: https://example.org/pub, subdirs: [noarch]}}
          internal/licensed:
            url: https://example.org/lic
            subdirs: [noarch]
            access: private
            readers: [team]
        """)


@pytest.mark.unit
def test_the_site_is_public_unless_made_private(tmp_path: Path) -> None:
    assert parse_config(_config(tmp_path)).access.site_private
    assert not parse_config(_config(tmp_path, site="site: public")).access.site_private
    assert not parse_config(_config(tmp_path, site="")).access.site_private
    with pytest.raises(ConfigError, match="expected 'public' or 'private'") as info:
        parse_config(_config(tmp_path, site="site: secret"))
    assert "channels.yaml:3" in str(info.value) and "access.site" in str(info.value)


@pytest.mark.unit
def test_every_token_reads_the_site_and_only_readers_a_private_channel(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path))
    store = AccessPaths.of(config).store
    store.add("ci", [], NOW)
    store.add("outsider", [], NOW)
    store.add("gone", [], NOW)
    store.revoke("gone", NOW)
    ci, outsider, gone = store.load()
    nginx = nginx_map_text(config, store.load())
    for record in (ci, outsider):
        assert f'"_site {record.id}" "{record.nginx_md5}";' in nginx
    assert f'"_site {gone.id}" "{gone.nginx_md5},1";' in nginx  # revoked: 403
    assert f'"internal/licensed {ci.id}"' in nginx
    assert f"internal/licensed {outsider.id}" not in nginx
    files = apache_files(config, store.load())
    assert files[f"_site/{outsider.id}.sha1"] == outsider.apache_sha1
    assert files[f"_site/{gone.id}.until"] == "00000000000000"
    assert f"internal/licensed/{outsider.id}.sha1" not in files
    # A public site has no such scope.
    public = parse_config(_config(tmp_path, site=""))
    assert "_site" not in nginx_map_text(public, store.load())
    assert not any(path.startswith("_site/") for path in apache_files(public, store.load()))


@pytest.mark.unit
def test_token_list_says_every_token_reads_the_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(_config(tmp_path))
    assert main(["token", "add", "outsider", "-c", str(config_path)]) == 0
    assert main(["token", "add", "ci", "-c", str(config_path)]) == 0
    captured = capsys.readouterr()
    assert "reads no channel" not in captured.err
    assert main(["token", "list", "-c", str(config_path)]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["outsider"][2] == "(site)"
    assert rows["ci"][2] == "(site),internal/licensed"


@pytest.mark.unit
def test_each_run_writes_the_token_files_of_a_private_site_without_private_channels(
    tmp_path: Path,
) -> None:
    text = _config(tmp_path).split("  internal/licensed:")[0]
    config = parse_config(text)
    paths = AccessPaths.of(config)
    paths.store.add("ci", [], NOW)
    (record,) = paths.store.load()
    assert refresh_access(config)
    assert f'"_site {record.id}"' in paths.nginx_map.read_text()
    assert (paths.apache_dir / "_site" / f"{record.id}.sha1").exists()


@pytest.mark.unit
def test_the_fetchers_check_takes_any_live_token_for_a_public_channel(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path))
    store = AccessPaths.of(config).store
    ci, outsider, gone = (store.add(name, [], NOW) for name in ("ci", "outsider", "gone"))
    store.revoke("gone", NOW)
    public, private = config.channels
    check = TokenCheck(config)
    for channel, token, status in (
        (public, None, 401),
        (public, wrong_token(outsider), 401),
        (public, gone, 403),
        (public, outsider, None),
        (public, ci, None),
        (private, outsider, 401),
        (private, ci, None),
    ):
        headers = [(b"Authorization", f"Bearer {token}".encode())] if token else []
        assert check.refusal(channel, headers, NOW) == status, (channel.path, token)


@pytest.mark.unit
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_the_records_are_served_to_a_private_sites_readers_without_private_channels(
    server: str, tmp_path: Path
) -> None:
    """A reader of the site reads every channel when none is private: the run ledger and
    stats.json need not be withheld; with a private channel they still are."""
    (tmp_path / "site").mkdir()
    text = _config(tmp_path).split("  internal/licensed:")[0]
    opened = render_webconf(server, parse_config(text), WebconfOptions())
    assert "_site" in opened and "stats\\.json" not in opened
    guarded = render_webconf(server, parse_config(_config(tmp_path)), WebconfOptions())
    assert "stats\\.json" in guarded
