"""The command line itself: version, verbosity flags on either side of the subcommand, help
texts, and the exit statuses cron sees through the documented command."""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sitegen import __version__
from sitegen.cli import EXIT_CONFIG, EXIT_LOCKED, build_parser, main
from sitegen.commands.common import release_memory
from sitegen.passive.listen import parse_listen
from sitegen.store.lock import SiteLock
from sitegen.tools.demo import WRITTEN_RECORD, demo_config, own_command

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.unit
def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sitegen {__version__}"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("argv", "verbose", "quiet"),
    [
        (["-v", "render"], True, False),
        (["render", "-v"], True, False),
        (["render", "--quiet"], False, True),
        (["-q", "render"], False, True),
        (["render"], False, False),
        (["token", "list", "-v"], True, False),
        (["token", "-q", "revoke", "--stdin"], False, True),
        (["token", "check", "--quiet"], False, True),
    ],
)
def test_verbosity_flags_before_or_after_the_subcommand(
    argv: list[str], verbose: bool, quiet: bool
) -> None:
    args = build_parser().parse_args(argv)
    assert getattr(args, "verbose", False) is verbose
    assert getattr(args, "quiet", False) is quiet


@pytest.mark.unit
def test_quiet_after_the_subcommand_silences_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    levels: list[int] = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: levels.append(kw["level"]))
    config = tmp_path / "channels.yaml"
    config.write_text("output: site\nchannels: {}\n")
    main(["render", "-c", str(config), "-q"])
    assert levels == [logging.WARNING]


@pytest.mark.unit
def test_every_subcommand_describes_itself(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    names = re.search(r"\{([a-z,]+)\}", listing)
    assert names is not None, listing
    for name in names.group(1).split(","):
        with pytest.raises(SystemExit):
            main([name, "--help"])
        rest = capsys.readouterr().out.partition("\n\n")[2]
        description = rest.split("\n\n")[0].strip()
        assert description and not description.startswith(("positional", "options")), name
        assert description.endswith("."), description


def _cron(command: str, cwd: Path) -> int:
    """The README's cron line, run as cron would (a shell, no terminal)."""
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    line = f"cd {shlex.quote(str(REPO))} && make -s setup && .venv/bin/sitegen {command}"
    return subprocess.run(
        ["sh", "-c", line],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    ).returncode


@pytest.mark.integration
@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "sitegen").exists(), reason="no .venv: run make")
def test_cron_sees_sitegens_own_exit_status(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("output: site\nchannels:\n  x/y: {url: 'ftp://nope', subdirs: [linux-64]}\n")
    assert _cron(f"mirror -c {bad} --no-progress", tmp_path) == EXIT_CONFIG
    site = tmp_path / "site"
    good = tmp_path / "good.yaml"
    good.write_text(
        f"output: {site}\nchannels:\n  x/y: {{url: 'file://{tmp_path}/up', subdirs: [linux-64]}}\n"
    )
    with SiteLock(site / ".sitegen"):
        assert _cron(f"mirror -c {good} --no-progress", tmp_path) == EXIT_LOCKED


@pytest.mark.integration
@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "sitegen").exists(), reason="no .venv: run make")
def test_demo_hints_name_the_command_that_runs_here(tmp_path: Path) -> None:
    """Outside an activated venv, a bare ``sitegen`` is not on PATH: the hints say how to call
    the sitegen that just ran."""
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [".venv/bin/sitegen", "-q", "demo", "--dir", str(tmp_path / "demo")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert f"{REPO / '.venv/bin/sitegen'} serve -c" in out
    assert f"`{REPO / '.venv/bin/sitegen'} mirror -c" in out


@pytest.mark.unit
def test_the_demo_keeps_a_channels_yaml_edited_since_it_wrote_it(tmp_path: Path) -> None:
    """The demo's hints invite editing its channels.yaml; running the demo again must not
    throw the edits away. One it wrote and nobody touched is written again (a newer sitegen's
    demo may differ)."""
    path = tmp_path / "channels.yaml"
    assert demo_config(path, "output: site\n") and path.read_text() == "output: site\n"
    assert demo_config(path, "output: site\ntitle: newer\n")
    assert path.read_text() == "output: site\ntitle: newer\n"
    path.write_text("output: site\ntitle: mine\n")
    assert not demo_config(path, "output: site\n")
    assert path.read_text() == "output: site\ntitle: mine\n"
    # Without the record (a demo folder made before it): the demo's own text only is its.
    (tmp_path / WRITTEN_RECORD).unlink()
    assert not demo_config(path, "output: site\n")
    path.write_text("output: site\n")
    assert demo_config(path, "output: site\n")


@pytest.mark.unit
def test_demo_hints_name_a_command_that_runs_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started as ``.venv/bin/sitegen``, the hints name it by its absolute path: the user may
    run them from anywhere (they hold the absolute paths of the site and channels.yaml)."""
    script = tmp_path / ".venv" / "bin" / "sitegen"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    monkeypatch.chdir(tmp_path)
    assert own_command(".venv/bin/sitegen") == str(script)
    assert own_command("/nowhere/python3") == f"{sys.executable} -m sitegen"


@pytest.mark.unit
@pytest.mark.skipif(sys.platform != "linux", reason="RSS from /proc and glibc's malloc_trim")
def test_memory_freed_by_a_run_goes_back_to_the_system_before_the_pages() -> None:
    """Blocks freed between blocks still in use stay in the process unless trimmed: the
    render after a mirror run would start with the run's freed memory still counted."""

    def rss_mb() -> float:
        return (
            int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGESIZE") / 1e6
        )

    blocks = [bytes(1000) + bytes([i % 256]) for i in range(200_000)]
    kept = blocks[::50]  # in use, spread over the heap
    del blocks
    held = rss_mb()
    release_memory()
    assert held - rss_mb() > 100
    assert len(kept) == 4000


def _sitegen(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sitegen", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.integration
def test_an_output_that_cannot_be_created_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """Below a file, `output` is a configuration error (2); where the file system refuses the
    directory, which no check of the file foresees (under /proc), each command says so on one
    line and exits 1."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("x")
    config = tmp_path / "channels.yaml"
    body = f"channels:\n  cloud/x:\n    path: {tmp_path}/folder\n    subdirs: [linux-64]\n"
    outputs = [("afile/site", EXIT_CONFIG, "cannot be created")]
    if Path("/proc/1").is_dir():
        outputs.append(("/proc/1/sitegen-site", 1, "No such file or directory"))
    for output, status, why in outputs:
        config.write_text(f"output: {output}\n{body}")
        for command in (
            ["render"],
            ["mirror"],
            ["freeze", "cloud/x"],
            ["token", "add", "ci"],
            ["serve", "--port", "0"],
            ["watch"],
        ):
            done = _sitegen(tmp_path, *command, "-c", str(config))
            assert "Traceback" not in done.stderr, (command, done.stderr)
            assert done.returncode == status, (command, done.stderr)
            assert [line for line in done.stderr.splitlines() if why in line], done.stderr


@pytest.mark.unit
@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["serve", "--port", "70000"], "--port: must be from 0 to 65535, not 70000"),
        (["serve", "--port", "-1"], "--port: must be from 0 to 65535, not -1"),
        (["serve", "--port", "80x"], "--port: expected a whole number, got '80x'"),
        (["fetcher", "--max-connections", "0"], "--max-connections: must be 1 or more, not 0"),
        (["fetcher", "--max-downloads", "-2"], "--max-downloads: must be 1 or more, not -2"),
        (["pending", "cloud/x", "--limit", "-1"], "--limit: must be 0 or more, not -1"),
    ],
)
def test_a_number_out_of_range_is_a_usage_error(
    argv: list[str], why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port past 65535 would end `serve` on a traceback once the pages were rendered; a
    fetcher allowed no connection or download would turn every client away."""
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == EXIT_CONFIG
    assert f"error: argument {why}" in capsys.readouterr().err


@pytest.mark.unit
@pytest.mark.parametrize("value", ["127.0.0.1:²", "²", "[::1]:٣", "127.0.0.1:", "x:80x"], ids=repr)
def test_a_fetcher_address_whose_port_is_not_ascii_digits_is_refused(value: str) -> None:
    """`fetcher --listen`: a port in other digits ("²" is a digit to str.isdigit, not to int();
    "٣" would silently listen on port 3) is refused with the usage line."""
    with pytest.raises(ValueError, match="must be HOST:PORT"):
        parse_listen(value)
    assert parse_listen("[::1]:8901") == ("::1", 8901)


@pytest.mark.integration
def test_serve_on_a_port_out_of_range_exits_2_before_it_renders(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: site\nchannels:\n  cloud/x:\n    path: {tmp_path}/folder\n"
        "    subdirs: [linux-64]\n"
    )
    done = _sitegen(tmp_path, "serve", "--port", "70000", "-c", str(config))
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "site").exists()


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_config_that_is_not_a_regular_file_exits_2_at_once(tmp_path: Path, kind: str) -> None:
    """-c naming a FIFO (or a device such as /dev/zero) is refused at once: reading it would
    wait for a writer forever, or never end, before anything was checked; nothing is written."""
    config_path = tmp_path / "channels.yaml" if kind == "fifo" else Path("/dev/zero")
    if kind == "fifo":
        os.mkfifo(config_path)
    for command in (["mirror"], ["render"], ["verify"], ["webconf", "nginx"]):
        done = subprocess.run(
            [sys.executable, "-m", "sitegen", *command, "-c", str(config_path)],
            cwd=tmp_path,
            text=True,
            capture_output=True,
            timeout=20,
        )
        assert done.returncode == EXIT_CONFIG, (command, done.stderr)
        assert f"configuration error: {config_path}: not a regular file" in done.stderr
    assert list(tmp_path.iterdir()) == ([config_path] if kind == "fifo" else [])


@pytest.mark.unit
@pytest.mark.parametrize(
    "command",
    [["freeze", "c/x"], ["unfreeze", "c/x"], ["render"], ["status"], ["verify"], ["stop"]],
    ids=lambda c: c[0],
)
@pytest.mark.parametrize("out", ["missing", "not a site"])
def test_a_command_working_on_a_site_refuses_an_out_that_holds_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], out: str
) -> None:
    """A mistyped ``--out`` is refused (exit 2) with nothing created or written there; the
    same directory once it holds a site is taken."""
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\n"
        "channels:\n  c/x: {url: http://127.0.0.1:1/c, subdirs: [noarch]}\n"
    )
    typo = tmp_path / "stie"
    if out == "not a site":
        typo.mkdir()
        (typo / "notes.txt").write_text("someone else's")
    before = sorted(typo.rglob("*")) if typo.exists() else None
    assert main([*command, "-c", str(config), "--out", str(typo)]) == EXIT_CONFIG
    assert f"--out: '{typo}' holds no site (no .sitegen/ in it)" in capsys.readouterr().err
    assert (sorted(typo.rglob("*")) if typo.exists() else None) == before
    assert not (tmp_path / "site").exists()
    if command[0] == "freeze":
        (typo / ".sitegen").mkdir(parents=True)
        assert main([*command, "-c", str(config), "--out", str(typo)]) == 0
        assert (typo / ".sitegen/frozen.json").is_file()


@pytest.mark.unit
def test_only_commands_that_publish_or_describe_a_server_take_an_out_holding_no_site() -> None:
    """Every other command taking ``--out`` works on a site that exists."""
    parser = build_parser()
    [subcommands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    taking = {
        name: sub.get_default("new_site")
        for name, sub in subcommands.choices.items()
        if any("--out" in a.option_strings for a in sub._actions)
    }
    assert {name for name, new in taking.items() if new} == {"mirror", "add", "watch", "webconf"}
    assert {name for name, new in taking.items() if not new} >= {"freeze", "unfreeze", "render"}


def _synopsis() -> dict[str, str]:
    """Each command's entry in README.md's synopsis (under ``## Running it``), continuation
    lines included, by its words after ``sitegen`` (``token add``)."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Running it\n", 1)[1]
    block = section.split("\n```\n", 2)[1]
    entries: dict[str, str] = {}
    command = ""
    for line in block.splitlines():
        if line.startswith("sitegen "):
            words = line.removeprefix("sitegen ").split()[:2]
            command = " ".join(w for w in words if w.isalpha() and w.islower())
            entries[command] = line
        else:
            entries[command] += line
    return entries


def _options(parser: argparse.ArgumentParser, words: str = "") -> dict[str, set[str]]:
    """Each command's long options, by its words after ``sitegen``, less those every command
    shares, which the prose above the synopsis covers."""
    shared = {"--help", "--verbose", "--quiet", "--config", "--out"}
    found: dict[str, set[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _options(sub, f"{words} {name}".strip())
    if words and not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
        found[words] = {
            option
            for action in parser._actions
            for option in action.option_strings
            if option.startswith("--") and option not in shared
        }
    return found


@pytest.mark.unit
def test_the_readme_synopsis_names_every_command_and_option_and_no_other() -> None:
    synopsis = _synopsis()
    options = _options(build_parser())
    assert sorted(synopsis) == sorted(options)
    for command, entry in synopsis.items():
        named = set(re.findall(r"--[a-z][a-z-]*", entry)) - {"--out"}
        assert named == options[command], command
