"""Private channels in channels.yaml: the access settings read, the ones refused, and what
the pages make of them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sitegen.config import ConfigError, parse_config
from sitegen.exit_status import EXIT_CONFIG
from sitegen.layout import access_dir
from testkit.tokens import access_config as _config


@pytest.mark.unit
def test_channels_are_public_unless_made_private(tmp_path: Path) -> None:
    text = _config(
        tmp_path,
        extra="access: {groups: {team: [ci, alice]}, reload: [nginx, -s, reload]}",
        channel="access: private\nreaders: [team, bob]",
    )
    config = parse_config(text)
    public, private = config.channels
    assert (public.access, public.private, public.readers) == ("public", False, ())
    assert (private.access, private.private, private.readers) == ("private", True, ("team", "bob"))
    assert config.access.members("team") == ("ci", "alice")
    assert config.access.members("bob") == ("bob",)
    assert config.access.reload == ("nginx", "-s", "reload")
    # Beside the site, never inside it.
    assert access_dir(config.output) == tmp_path / "site-access"


@pytest.mark.unit
def test_long_form_channels_take_access_too(tmp_path: Path) -> None:
    text = textwrap.dedent(f"""\
        output: {tmp_path}/site
        channels:
          internal/licensed:
            access: private
            readers: [ci]
            mirrors:
              - {{name: lic, url: https://example.org/lic, subdirs: [noarch]}}
        """)
    (channel,) = parse_config(text).channels
    assert channel.private and channel.readers == ("ci",)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ("access: secret", "expected 'public' or 'private'"),
        ("readers: [ci]", "readers only apply to a channel with access: private"),
        ("access: private\nreaders: ['bad name']", "invalid token or group name"),
        # A line end after the name ("$" alone would let it by).
        ('access: private\nreaders: ["ci\\n"]', "invalid token or group name"),
    ],
)
def test_bad_access_settings_name_file_line_and_key(
    tmp_path: Path, channel: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(_config(tmp_path, channel=channel))
    assert "channels.yaml:" in str(info.value)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('access: {group: "www-data\\n"}', "invalid system group name"),
        ('access: {groups: {"team\\n": [ci]}}', "invalid group name"),
    ],
)
def test_a_group_name_ending_in_a_line_end_is_refused(
    tmp_path: Path, extra: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_config(tmp_path, extra=extra))


@pytest.mark.unit
def test_a_channel_cannot_be_called_t(tmp_path: Path) -> None:
    """/t/<token>/ is conda's path token: a channel there could never be reached."""
    text = textwrap.dedent(f"""\
        output: {tmp_path}/site
        channels:
          t/x: {{url: https://example.org/x, subdirs: [noarch]}}
        """)
    with pytest.raises(ConfigError, match="collides"):
        parse_config(text)


@pytest.mark.unit
def test_page_model_for_private_channels(tmp_path: Path) -> None:
    from sitegen.access.pages import TOKEN_PLACEHOLDER, token_snippets, visibility

    seen = visibility(parse_config(_config(tmp_path)))
    assert (seen["pub"].label, seen["pub"].details_public) == ("", True)
    assert (seen["internal/licensed"].label, seen["internal/licensed"].details_public) == (
        "private",
        False,
    )
    snippets = token_snippets("https://mirror.example.org/conda/", "internal/licensed")
    assert snippets.conda_url == "https://mirror.example.org/conda/t/<TOKEN>/internal/licensed"
    assert snippets.channel_url == "https://mirror.example.org/conda/internal/licensed"
    assert snippets.netrc == "machine mirror.example.org login <NAME> password <TOKEN>"
    assert json.loads(snippets.rattler_auth_file) == {
        "mirror.example.org": {"BearerToken": TOKEN_PLACEHOLDER}
    }
    assert (
        token_snippets("http://127.0.0.1:8080", "x").conda_url
        == "http://127.0.0.1:8080/t/<TOKEN>/x"
    )
    # libmamba looks a Bearer token up under the request URL's lower-cased host with its port,
    # if the URL names one (rattler by the host name alone).
    for base, key in [
        ("https://mirror.example.org/conda/", "mirror.example.org"),
        ("http://127.0.0.1:8080", "127.0.0.1:8080"),
        ("https://Mirror.Example.org:8443/conda", "mirror.example.org:8443"),
        ("http://[::1]:8080", "[::1]:8080"),
    ]:
        assert json.loads(token_snippets(base, "x").mamba_auth_file) == {
            key: {"type": "BearerToken", "token": TOKEN_PLACEHOLDER}
        }, base


@pytest.mark.integration
def test_every_server_refuses_a_public_channel_inside_a_private_one(tmp_path: Path) -> None:
    """nginx and Apache guard internal/open as a file of the private internal; sitegen serve
    and the fetcher took it for a public channel and answered anyone. Each of them refuses
    such a configuration before it serves anything."""
    config = tmp_path / "channels.yaml"
    config.write_text(
        textwrap.dedent(f"""\
            output: {tmp_path}/site
            channels:
              internal: {{url: https://example.org/a, subdirs: [noarch], access: private}}
              internal/open: {{url: https://example.org/b, subdirs: [noarch]}}
            """)
    )
    for command in (["webconf", "nginx"], ["webconf", "apache"], ["serve"], ["fetcher"]):
        done = subprocess.run(
            [sys.executable, "-m", "sitegen", *command, "-c", str(config)],
            cwd=tmp_path,
            text=True,
            capture_output=True,
            timeout=60,  # a hang guard: each exits at once
        )
        assert done.returncode == EXIT_CONFIG, (command, done.stderr)
        assert f"{config}:4: channels.internal/open: inside channel 'internal'" in done.stderr
        assert "such as 'internal-open'" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "site").exists()
