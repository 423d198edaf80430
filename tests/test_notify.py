"""Notification hooks: a command run after a run with its summary as JSON on stdin; it never
blocks or fails the run, and the summary never carries a token."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from sitegen.cli import EXIT_FAILED, EXIT_OK, main
from sitegen.config import ConfigError, NotifySettings, make_scrub, parse_config
from sitegen.sync.notify import run_hook, run_summary
from sitegen.sync.report import FAILED, ChannelSubdirReport, MirrorReport, RunReport
from testkit.crash import start_mirror
from testkit.upstream import ExampleUpstream

CHANNELS = "channels:\n  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [linux-64]\n"
SECRET = "tok-6f1d2e9a77"


# --------------------------------------------------------------------------- the summary


@pytest.mark.unit
def test_summary_carries_the_outcome_and_never_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOBS_TOKEN", SECRET)
    config = parse_config(
        "output: /srv/site\nbase_url: https://conda.example.org\n"
        "channels:\n  c/x:\n    url: https://conda.anaconda.org/t/${KNOBS_TOKEN}/org\n"
        "    subdirs: [linux-64]\n"
    )
    report = RunReport(
        id="20260102T100000.000Z-1",
        started=100.0,
        ended=112.0,
        status=FAILED,
        mirrors=[
            MirrorReport(
                name="c-x",
                channel="c/x",
                source="https://conda.anaconda.org/t/***/org",
                status=FAILED,
                errors=[f"linux-64: https://conda.anaconda.org/t/{SECRET}/org: 503"],
            )
        ],
        channels=[
            ChannelSubdirReport(
                channel="c/x",
                subdir="linux-64",
                status="failed",
                packages=5,
                added=["a.conda"],
                errors=[f"token {SECRET} leaked into an error"],
            )
        ],
        errors=["one run-level error"],
    )
    summary = run_summary(report, config, EXIT_FAILED, make_scrub(config))
    text = json.dumps(summary)
    assert SECRET not in text
    assert summary["status"] == FAILED and summary["exit_status"] == EXIT_FAILED
    assert summary["summary"] == "sitegen run 20260102T100000.000Z-1: failed, 3 errors"
    assert summary["page"] == "https://conda.example.org/history/20260102T100000.000Z-1.html"
    assert summary["mirrors"][0]["errors"] == [
        "linux-64: https://conda.anaconda.org/t/***/org: 503"
    ]
    assert summary["channels"][0]["files"] == 5 and summary["channels"][0]["added"] == 1
    # Times in seconds (as hooks have read them) and in ISO 8601, as `sitegen status --json`.
    assert (summary["started"], summary["ended"]) == (100.0, 112.0)
    assert (summary["started_iso"], summary["ended_iso"]) == (
        "1970-01-01T00:01:40Z",
        "1970-01-01T00:01:52Z",
    )


# --------------------------------------------------------------------------- configuration


@pytest.mark.unit
def test_notify_commands_are_argv_lists() -> None:
    assert parse_config(f"output: s\n{CHANNELS}").notify == NotifySettings()
    config = parse_config(
        "output: s\nnotify:\n  on_failure: [mail, -s, failed, ops@example.org]\n"
        f"  on_success: [true]\n  timeout: 5\n{CHANNELS}"
    )
    assert config.notify == NotifySettings(
        on_failure=("mail", "-s", "failed", "ops@example.org"), on_success=("true",), timeout=5.0
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{on_failure: 'mail ops'}", r"channels.yaml:2: notify.on_failure: expected a command as"),
        ("{on_success: []}", r"channels.yaml:2: notify.on_success: the command is empty"),
        ("{on_failure: [x], timeout: 0}", r"channels.yaml:2: notify.timeout: must be between"),
        ("{on_error: [x]}", r"channels.yaml:2: notify.on_error: unknown key 'on_error'"),
    ],
)
def test_bad_notify_settings_name_line_and_key(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(f"output: s\nnotify: {value}\n{CHANNELS}")


# --------------------------------------------------------------------------- real runs


def _write_config(tmp_path: Path, url: str, notify: str) -> Path:
    path = tmp_path / "channels.yaml"
    path.write_text(
        f"output: {tmp_path / 'site'}\ndownload: {{retries: 0, timeout: 5}}\n{notify}"
        f"channels:\n  c/x:\n    url: {url}\n    subdirs: [linux-64]\n"
        "    filters: {names: {include: [python]}}\n"
    )
    return path


def _recorder(out: Path) -> str:
    """A hook command (a YAML flow list) that saves its stdin to ``out``."""
    code = f"import sys; open({str(out)!r}, 'wb').write(sys.stdin.buffer.read())"
    return json.dumps([sys.executable, "-c", code])


@pytest.mark.integration
def test_on_success_and_on_failure_get_the_summary_on_stdin(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, failed = tmp_path / "ok.json", tmp_path / "failed.json"
    hooks = f"notify:\n  on_success: {_recorder(ok)}\n  on_failure: {_recorder(failed)}\n"
    config = _write_config(tmp_path, example_upstream.url, hooks)
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    summary = json.loads(ok.read_text())
    assert summary["status"] == "completed" and summary["exit_status"] == EXIT_OK
    assert summary["mirrors"][0]["name"] == "c-x"
    assert not failed.exists()
    ok.unlink()
    assert main(["mirror", "-c", str(config), "--no-progress", "--due"]) == EXIT_OK
    assert not ok.exists()  # nothing was due: no run, no hook

    # A private upstream that refuses connections: the failure hook hears of it, token-free.
    monkeypatch.setenv("KNOBS_TOKEN", SECRET)
    config = _write_config(tmp_path, "http://127.0.0.1:1/t/${KNOBS_TOKEN}/org", hooks)
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_FAILED
    text = failed.read_text()
    assert SECRET not in text
    summary = json.loads(text)
    assert summary["status"] == "failed" and summary["exit_status"] == EXIT_FAILED
    assert summary["mirrors"][0]["errors"]
    assert not ok.exists()
    failed.unlink()  # a dry run changes nothing and notifies nobody
    assert main(["mirror", "-c", str(config), "--no-progress", "--dry-run"]) == EXIT_FAILED
    assert not failed.exists()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("command", "logged"),
    [
        ([sys.executable, "-c", "import time; time.sleep(60)"], "did not finish within 1 s"),
        (
            [sys.executable, "-c", "import sys; print('no route'); sys.exit(3)"],
            "status 3: no route",
        ),
        (["/nonexistent/sitegen-hook"], "cannot run /nonexistent/sitegen-hook"),
    ],
)
def test_a_broken_hook_neither_blocks_nor_fails_the_run(
    tmp_path: Path,
    example_upstream: ExampleUpstream,
    caplog: pytest.LogCaptureFixture,
    command: list[str],
    logged: str,
) -> None:
    hooks = f"notify:\n  on_success: {json.dumps(command)}\n  timeout: 1\n"
    config = _write_config(tmp_path, example_upstream.url, hooks)
    caplog.set_level(logging.INFO, logger="sitegen")
    started = time.monotonic()
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    assert time.monotonic() - started < 20
    assert any(logged in m for m in caplog.messages), caplog.messages


@pytest.mark.integration
def test_a_run_failed_on_a_channel_left_alone_exits_1_and_notifies(
    tmp_path: Path, example_upstream: ExampleUpstream
) -> None:
    """The channel's directory is a link out of the site, which sitegen refuses to write
    through: its mirror fails, naming the link, and like any failed run the run is recorded,
    exits 1 and runs on_failure, never a traceback."""
    failed = tmp_path / "failed.json"
    config = _write_config(
        tmp_path, example_upstream.url, f"notify:\n  on_failure: {_recorder(failed)}\n"
    )
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "site" / "c").mkdir(parents=True)
    (tmp_path / "site" / "c" / "x").symlink_to(outside)
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_FAILED
    summary = json.loads(failed.read_text())
    assert summary["status"] == FAILED and summary["exit_status"] == EXIT_FAILED
    (mirror,) = summary["mirrors"]
    assert any("a link out of the site" in error for error in mirror["errors"]), mirror
    (record,) = (tmp_path / "site" / "history" / "runs").glob("*.json")
    assert json.loads(record.read_text())["status"] == FAILED
    assert list(outside.iterdir()) == []


@pytest.mark.integration
@pytest.mark.parametrize("exit_code", [0, 4])
def test_what_a_hook_prints_is_logged_without_a_token(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    exit_code: int,
) -> None:
    """A hook naming a URL with its credentials (``curl -v``), or a configured token it read
    elsewhere, has them hidden in the log as everything else the run logs."""
    monkeypatch.setenv("KNOBS_TOKEN", SECRET)
    printed = f"posted to https://bot:pw-77aa19@chat.example/hook as {SECRET}"
    code = f"import sys; print({printed!r}); sys.exit({exit_code})"
    hooks = f"notify:\n  on_failure: {json.dumps([sys.executable, '-c', code])}\n"
    config = _write_config(tmp_path, "http://127.0.0.1:1/t/${KNOBS_TOKEN}/org", hooks)
    caplog.set_level(logging.INFO, logger="sitegen")
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_FAILED
    (logged,) = [m for m in caplog.messages if "posted to" in m]
    assert "pw-77aa19" not in logged and SECRET not in logged
    assert "chat.example/hook" in logged
    assert ("exited with status 4" in logged) == bool(exit_code)


@pytest.mark.integration
def test_a_hook_that_prints_a_lot_keeps_only_the_end_of_its_output(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hook printing without end until its timeout (``yes``) would otherwise gather all it
    printed in the run's memory; the log shows the end of it."""
    code = "import sys\nfor _ in range(48): sys.stdout.buffer.write(b'x' * 2**20)\nprint('done')"
    caplog.set_level(logging.INFO, logger="sitegen")
    tracemalloc.start()
    try:
        assert run_hook((sys.executable, "-c", code), b"{}", 60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak  # the hook printed 48 MiB
    assert any(m.endswith("xxdone") for m in caplog.messages), caplog.messages


@pytest.mark.integration
def test_every_non_zero_exit_runs_on_failure_and_says_why(
    tmp_path: Path, example_upstream: ExampleUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages that could not be rendered fail the exit status, also of a --due run with nothing
    due (the cron job's usual run): on_failure hears of it, with the reason."""
    ok, failed = tmp_path / "ok.json", tmp_path / "failed.json"
    hooks = f"notify:\n  on_success: {_recorder(ok)}\n  on_failure: {_recorder(failed)}\n"
    config = _write_config(tmp_path, example_upstream.url, hooks)
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_OK
    ok.unlink()

    def full_disk(config: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("sitegen.web.render.render_site", full_disk)
    for argv in (["--due"], []):
        assert main(["mirror", "-c", str(config), "--no-progress", *argv]) == EXIT_FAILED
        summary = json.loads(failed.read_text())
        assert summary["exit_status"] == EXIT_FAILED
        assert any("rendering the pages failed" in e for e in summary["errors"]), summary
        assert "error" in summary["summary"]
        # Nothing was due: no record, so no page to point at; a run that ran has one.
        recorded = (tmp_path / "site" / "history" / "runs" / f"{summary['run']}.json").is_file()
        assert recorded == (argv == [])
        assert (summary["page"] is None) == (not recorded), summary["page"]
        failed.unlink()
    assert not ok.exists()


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_command_stopped_while_its_hook_runs_takes_the_hook_with_it(
    tmp_path: Path, signum: int
) -> None:
    """The hook runs in a session of its own, out of reach of a terminal's Ctrl-C: a
    ``sitegen mirror`` stopped while a hook hangs (a webhook that never answers) must end it
    rather than leave it running on its own, timeout and all."""
    pid_file = tmp_path / "hook.pid"
    code = (
        "import os, time; "
        f"open({str(pid_file)!r} + '.new', 'w').write(str(os.getpid())); "
        f"os.replace({str(pid_file)!r} + '.new', {str(pid_file)!r}); time.sleep(300)"
    )
    hooks = f"notify:\n  on_failure: {json.dumps([sys.executable, '-c', code])}\n  timeout: 300\n"
    config = _write_config(tmp_path, "http://127.0.0.1:1/c", hooks)
    proc = start_mirror(config, tmp_path / "site")
    hook = 0
    try:
        deadline = time.monotonic() + 60  # a hang guard: the failed run starts the hook
        while not pid_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        hook = int(pid_file.read_text())
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        with pytest.raises(ProcessLookupError):
            os.kill(hook, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if hook:
            with contextlib.suppress(ProcessLookupError):
                os.kill(hook, signal.SIGKILL)
