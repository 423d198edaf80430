"""channels.yaml's output and --out: a tilde is home; root, home, a file, a link loop refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.config import ConfigError, load_config, parse_config
from testkit.config import write_config

pytestmark = pytest.mark.unit


def test_output_under_the_home_directory_may_be_written_with_a_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "etc" / "channels.yaml"
    path.parent.mkdir()
    path.write_text(
        "output: ~/mirror/site\nchannels:\n  cloud/x: {url: https://x.org/c, subdirs: [linux-64]}\n"
    )
    assert load_config(path).output == tmp_path / "home" / "mirror" / "site"
    assert load_config(path).source == path


def test_output_may_not_be_the_root_or_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site owns its directory (pages and history at its top, files it no longer publishes
    deleted), so it cannot be the file system's root or the user's home, however written."""
    home = tmp_path / "home"
    (home / "project").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    body = "channels:\n  cloud/x: {url: https://x.org/c, subdirs: [linux-64]}\n"
    with pytest.raises(ConfigError, match=r"^channels.yaml:1: output: '/' is the root"):
        parse_config("output: /\n" + body)
    path = home / "project" / "channels.yaml"
    for output in ("..", str(home), f"{home}/project/.."):
        path.write_text(f"output: {output}\n" + body)
        with pytest.raises(ConfigError, match=rf"^{path}:1: output: .* is the home dir"):
            load_config(path)
    path.write_text("output: site\n" + body)
    assert load_config(path).output == home / "project" / "site"


def test_a_loop_of_symbolic_links_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ``output``, ``--out`` or local source folder that is a loop of symbolic links cannot
    be resolved: a configuration error naming file, line and key (exit 2), not a traceback."""
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    body = "channels:\n  a/b:\n    path: {folder}\n    subdirs: [noarch]\n"
    with pytest.raises(ConfigError, match=r"^channels.yaml:1: output: .*loop of symbolic links"):
        parse_config(f"output: {loop}\n" + body.format(folder=tmp_path / "in"))
    with pytest.raises(
        ConfigError, match=r"^channels.yaml:4: channels.a/b: mirror 'a-b': .*loop of symbolic"
    ):
        parse_config(f"output: {tmp_path / 'site'}\n" + body.format(folder=loop / "in"))
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(f"output: {tmp_path / 'site'}\n" + body.format(folder=tmp_path))
    assert main(["status", "-c", str(config_path), "--out", str(loop)]) == 2
    assert "configuration error: --out: " in capsys.readouterr().err


@pytest.mark.parametrize("where", ["root", "home", "file", "below a file"])
def test_cli_out_is_checked_like_output(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """``--out`` replaces ``output`` and is refused for the same reasons (exit 2, nothing
    written): the root (checked with a read-only verify), the home directory, a file, a path
    below a file."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    (tmp_path / "a-file").write_text("not a site")
    out = {
        "root": "/",
        "home": str(home),
        "file": str(tmp_path / "a-file"),
        "below a file": str(tmp_path / "a-file" / "site"),
    }[where]
    config_path = write_config(
        tmp_path, "output: site\nchannels:\n  c/x: {url: http://127.0.0.1:1/c, subdirs: [noarch]}\n"
    )
    command = "verify" if where == "root" else "mirror"
    assert main([command, "-c", str(config_path), "--out", out]) == 2
    assert "configuration error: --out: " in capsys.readouterr().err
    assert list(home.iterdir()) == []
