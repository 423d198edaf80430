"""``sitegen token``: adding, listing, checking and revoking tokens from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegen.access.tokens import TOKEN_RE
from sitegen.cli import main
from testkit.tokens import access_config as _config


@pytest.mark.unit
def test_token_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "channels.yaml"
    config.write_text(_config(tmp_path))
    assert main(["token", "add", "ci", "--channel", "internal/licensed", "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert TOKEN_RE.match(token) and token not in err
    access = tmp_path / "site-access"
    for path in access.rglob("*"):
        if path.is_file():
            assert token not in path.read_text(), path
    assert "reload" in err  # says how the change reaches nginx
    assert (access / "nginx-tokens.map").is_file()

    assert main(["token", "add", "pubtoken", "--channel", "pub", "-c", str(config)]) == 2
    assert "not a private channel" in capsys.readouterr().err
    past = ["token", "add", "late", "--channel", "internal/licensed", "--expires", "2001-01-01"]
    assert main([*past, "-c", str(config)]) == 2
    # An empty value (a script's unset variable) is no date, not a token that never expires.
    assert main([*past[:-1], "", "-c", str(config)]) == 2
    assert "expected a date" in capsys.readouterr().err
    assert main(["token", "add", "bad name", "-c", str(config)]) == 2
    # A line end after the name would split its line of `token list` and `token check`.
    assert main(["token", "add", "ops\n", "-c", str(config)]) == 2
    assert "invalid token name" in capsys.readouterr().err

    assert main(["token", "list", "-c", str(config)]) == 0
    listing = capsys.readouterr().out
    assert "ci" in listing and "active" in listing and "internal/licensed" in listing
    assert token not in listing
    assert main(["token", "revoke", "ci", "-c", str(config)]) == 0
    assert main(["token", "list", "-c", str(config)]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["token", "revoke", "ci", "--reload", "-c", str(config)]) == 2
    assert "access.reload" in capsys.readouterr().err


@pytest.mark.unit
def test_a_token_is_checked_and_revoked_by_value_from_stdin_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    config = tmp_path / "channels.yaml"
    config.write_text(_config(tmp_path))
    assert main(["token", "add", "ci", "--channel", "internal/licensed", "-c", str(config)]) == 0
    token = capsys.readouterr().out.strip()

    def stdin(text: str) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(text + "\n"))

    stdin(token)
    assert main(["token", "check", "-c", str(config)]) == 0
    assert capsys.readouterr().out.split() == ["ci", "active", "internal/licensed"]
    stdin(token[:-1] + "0" if not token.endswith("0") else token[:-1] + "1")
    assert main(["token", "check", "-c", str(config)]) == 1
    assert capsys.readouterr().out.strip() == "unknown token"
    stdin(token)
    assert main(["token", "revoke", "--stdin", "-c", str(config)]) == 0
    assert "'ci' revoked" in capsys.readouterr().err
    stdin(token)
    assert main(["token", "check", "-c", str(config)]) == 1
    assert capsys.readouterr().out.split()[:2] == ["ci", "revoked"]
    assert main(["token", "revoke", "-c", str(config)]) == 2  # neither a name nor --stdin


@pytest.mark.unit
def test_token_commands_name_readers_with_no_token_in_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "channels.yaml"
    access = "access: {groups: {team: [alice, carl]}}"
    config.write_text(_config(tmp_path, access, "access: private\nreaders: [team, bbo]"))
    assert main(["token", "add", "alice", "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert "internal/licensed: readers carl (group team), bbo" in err
    assert main(["token", "list", "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "internal/licensed: readers carl (group team), bbo" in err
    assert "alice" not in err and token not in out + err

    assert main(["token", "add", "bbo", "-c", str(config)]) == 0
    assert main(["token", "add", "carl", "-c", str(config)]) == 0
    capsys.readouterr()
    assert main(["token", "list", "-c", str(config)]) == 0
    assert "no token" not in capsys.readouterr().err
