"""${NAME} in channels.yaml's URLs: filled in; an unset or malformed one is named, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.config import ConfigError, MirrorConfig, load_config, parse_config
from testkit.config import dedent, line_of, write_config

pytestmark = pytest.mark.unit

TOKEN_CONFIG = """
output: site
channels:
  private/org:
    mirrors:
      - name: org
        url: https://conda.anaconda.org/t/${SITEGEN_CONFIG_TOKEN}/org
        subdirs: [linux-64]
"""


def test_unset_variable_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text(dedent(TOKEN_CONFIG))
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"OTHER": "x"})
    line = line_of(dedent(TOKEN_CONFIG), "url:")
    assert str(info.value) == (
        f"{path}:{line}: channels.private/org.mirrors[0].url:"
        " environment variable SITEGEN_CONFIG_TOKEN is not set"
    )
    config = load_config(path, environ={"SITEGEN_CONFIG_TOKEN": "tk-1"})
    assert config.channels[0].mirrors[0].secret_env == ("SITEGEN_CONFIG_TOKEN",)
    # Parsing text alone leaves the variable to the run, which resolves it.
    assert parse_config(dedent(TOKEN_CONFIG)).channels[0].mirrors[0].name == "org"


@pytest.mark.parametrize(
    "url",
    [
        "https://conda.anaconda.org/t/${SITEGEN_CONFIG_TOKEN:-none}/org",
        "https://conda.anaconda.org/t/${SITEGEN_CONFIG_TOKEN/org",
        "https://conda.anaconda.org/t/${1TOKEN}/org",
        "https://${}.example.org/org",
    ],
)
def test_a_reference_that_is_not_one_is_a_config_error(tmp_path: Path, url: str) -> None:
    """``${`` that does not open a ``${NAME}`` reference (shell's ``:-``, a brace left open)
    is a mistake in the file, told as one (exit 2): it was sent upstream as written, so the
    run failed on the upstream's answer (exit 1) or, under ``/t/``, slipped past the check
    for a token written out."""
    text = dedent(TOKEN_CONFIG).replace(
        "https://conda.anaconda.org/t/${SITEGEN_CONFIG_TOKEN}/org", url
    )
    config_path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(config_path, environ={"SITEGEN_CONFIG_TOKEN": "tk-1"})
    assert str(info.value) == (
        f"{config_path}:{line_of(text, 'url:')}: channels.private/org.mirrors[0].url:"
        " '${' that does not open a ${NAME} reference (NAME: letters, digits and '_', not"
        " starting with a digit, then '}')"
    )


def test_cli_exits_2_for_an_unset_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SITEGEN_CONFIG_TOKEN", raising=False)
    config_path = write_config(tmp_path, dedent(TOKEN_CONFIG))
    status = main(["mirror", "-c", str(config_path), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2
    line = line_of(config_path.read_text(), "url:")
    assert f"channels.yaml:{line}: channels.private/org.mirrors[0].url: " in err
    assert "SITEGEN_CONFIG_TOKEN is not set" in err
    assert not (tmp_path / "out").exists()


def test_cli_exits_2_for_a_variable_set_but_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Environment=SITEGEN_CONFIG_TOKEN=`` in a unit, or ``export`` of a file not there:
    filled in, the URL asks upstream for ``/t//org``, and what the run reports shows the
    token as ``***`` like any other, so nothing there says it was empty."""
    monkeypatch.setenv("SITEGEN_CONFIG_TOKEN", "")
    config_path = write_config(tmp_path, dedent(TOKEN_CONFIG))
    status = main(["mirror", "-c", str(config_path), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2, err
    line = line_of(config_path.read_text(), "url:")
    assert f"channels.yaml:{line}: channels.private/org.mirrors[0].url: " in err
    assert "environment variable SITEGEN_CONFIG_TOKEN is set but empty" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["status"], 0),
        (["render"], 0),
        (["stop", "--timeout", "0"], 1),  # no run to stop
        (["freeze", "private/org", "--reason", "audit"], 0),
        (["mirror", "--no-progress"], 2),
    ],
)
def test_only_commands_that_reach_upstream_need_its_variables(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    expected: int,
) -> None:
    """A shell without the token a timer's service is given can still ask for the status,
    stop a run, render the pages or freeze a channel: only a command that reaches upstream
    is refused for an unset variable."""
    monkeypatch.delenv("SITEGEN_CONFIG_TOKEN", raising=False)
    config_path = write_config(tmp_path, dedent(TOKEN_CONFIG))
    status = main([argv[0], "-c", str(config_path), *argv[1:]])
    err = capsys.readouterr().err
    assert status == expected, err
    assert ("SITEGEN_CONFIG_TOKEN is not set" in err) == (expected == 2)


def test_variable_values_never_appear_in_errors(tmp_path: Path) -> None:
    secret = "tk-very-secret-value"
    text = dedent("""
        output: site
        channels:
          a/one:
            url: ftp://user:${SITEGEN_CONFIG_TOKEN}@example.org/t/${SITEGEN_CONFIG_TOKEN}/a
            subdirs: [linux-64]
          a/two:
            url: https://${SITEGEN_CONFIG_TOKEN}.example.org/a?x=${SITEGEN_CONFIG_TOKEN}
            subdirs: [linux-64]
          a/three:
            url: https://conda.anaconda.org/t/${SITEGEN_CONFIG_TOKEN}/${SITEGEN_CONFIG_UNSET}
            subdirs: [linux-64]
    """)
    path = tmp_path / "channels.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"SITEGEN_CONFIG_TOKEN": secret})
    assert [e.split(": ", 2)[1] for e in info.value.errors] == [
        "channels.a/one.url",
        "channels.a/two.url",
        "channels.a/three.url",
    ]
    message = str(info.value)
    assert "environment variable SITEGEN_CONFIG_UNSET is not set" in message
    assert secret not in message


def test_a_variable_that_makes_the_url_invalid_is_named_not_shown(tmp_path: Path) -> None:
    text = dedent("""
        output: site
        channels:
          a/one:
            url: https://${SITEGEN_CONFIG_HOST}/conda-forge
            subdirs: [linux-64]
    """)
    path = tmp_path / "channels.yaml"
    path.write_text(text)
    secret = "example.org:port-secret"
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"SITEGEN_CONFIG_HOST": secret})
    assert str(info.value) == (
        f"{path}:{line_of(text, 'url:')}: channels.a/one.url: not a valid URL once"
        " SITEGEN_CONFIG_HOST from the environment are filled in"
    )
    assert "port-secret" not in str(info.value)
    config = load_config(path, environ={"SITEGEN_CONFIG_HOST": "example.org:8443"})
    assert config.channels[0].mirrors[0].source_url({"SITEGEN_CONFIG_HOST": "h:1"}) == (
        "https://h:1/conda-forge"
    )


@pytest.mark.parametrize(
    "host",
    [".example", "mirror.example..", "mirror..example", "x" * 64 + ".example", "a." * 127 + "b"],
    ids=["leading dot", "two dots at the end", "empty label", "label over 63", "name over 253"],
)
def test_a_host_that_is_no_dns_name_is_an_error_written_or_filled_in(
    tmp_path: Path, host: str
) -> None:
    """No request could ever reach such a host: the file says so, not every run."""
    path = tmp_path / "channels.yaml"
    for url, environ in (
        (f"https://{host}/conda", {}),
        ("https://${SITEGEN_CONFIG_HOST}/conda", {"SITEGEN_CONFIG_HOST": host}),
    ):
        text = f"output: site\nchannels:\n  a/one:\n    url: {url}\n    subdirs: [linux-64]\n"
        path.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_config(path, environ=environ)
        message = str(info.value)
        assert message.startswith(f"{path}:4: channels.a/one.url: "), message
        assert "valid" in message and (host not in message or not environ)
    for fine in ("mirror.example.", "127.0.0.1", "[::1]", "bücher.example", "h:8443"):
        text = f"output: site\nchannels:\n  a/one:\n    url: http://{fine}/c\n    subdirs: [linux-64]\n"
        path.write_text(text)
        load_config(path, environ={})


def test_source_url_fills_references_and_encodes_only_the_user_part() -> None:
    """A value in user:password is percent-encoded (httpx decodes it for Basic auth); one in
    the host or the path, or in a local folder's path, is filled in as it is."""
    env = {"PASS": "a/b?c#d@e", "TOKEN": "tok-123", "HOST": "example.org:8443"}
    cases = {
        "https://me:${PASS}@h.example/chan/": "https://me:a%2Fb%3Fc%23d%40e@h.example/chan",
        "https://h.example/t/${TOKEN}/chan": "https://h.example/t/tok-123/chan",
        "https://${HOST}/chan": "https://example.org:8443/chan",
        "https://h.example/a@b/chan": "https://h.example/a@b/chan",
        "file:///srv/${TOKEN}/chan": "file:///srv/tok-123/chan",
        "/srv/builds/": "/srv/builds",
    }
    for url, expected in cases.items():
        mirror = MirrorConfig(name="m", url=url, subdirs=("linux-64",))
        assert mirror.source_url(env) == expected, url


def test_a_file_url_that_its_variable_makes_name_a_host_is_an_error(tmp_path: Path) -> None:
    """``file://${ROOT}/conda`` with ROOT=srv (its '/' forgotten) reads as the host 'srv' and
    the path /conda: refused as the same URL written out would be, naming the variable."""
    path = tmp_path / "channels.yaml"
    text = "output: site\nchannels:\n  a/one:\n    url: file://${SITEGEN_CONFIG_ROOT}/conda\n"
    path.write_text(text + "    subdirs: [linux-64]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"SITEGEN_CONFIG_ROOT": "srv"})
    assert str(info.value) == (
        f"{path}:4: channels.a/one.url: not a valid URL once SITEGEN_CONFIG_ROOT from the"
        " environment are filled in"
    )
    config = load_config(path, environ={"SITEGEN_CONFIG_ROOT": "/srv"})
    assert config.channels[0].mirrors[0].source_url({"SITEGEN_CONFIG_ROOT": "/srv"}) == (
        "file:///srv/conda"
    )
