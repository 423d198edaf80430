"""channels.yaml values and keys pasted at great length are quoted clipped in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegen.cli import main
from testkit.config import write_config

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("setting", "path"),
    [
        ("download: {concurrency: N}", "download.concurrency"),
        ("history: {keep_runs: N}", "history.keep_runs"),
        ("shards: {grace_days: N}", "shards.grace_days"),
        ("prune: {max_fraction: N}", "prune.max_fraction"),
        ("min_free_space: N", "min_free_space"),
        ("filters: {max_size: N}", "filters.max_size"),
        ("download: {retries: xN}", "download.retries"),
    ],
)
def test_an_oversized_number_is_quoted_clipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str, path: str
) -> None:
    """A value pasted by mistake (10,000 digits) is named by its start and its length, not
    written out whole across the terminal."""
    config_path = write_config(
        tmp_path,
        f"output: site\n{setting.replace('N', '9' * 10_000)}\n"
        "channels:\n  c/x: {url: http://127.0.0.1:1/c, subdirs: [noarch]}\n",
    )
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"channels.yaml:2: {path}: " in err
    assert len(err) < 300, err[:300]
    if path.endswith(("concurrency", "keep_runs")):  # more digits than int() reads: a number
        assert "must be at most" in err
    else:
        assert "9999999999'... (10,00" in err


# A value of a channel's (L: 100,000 characters pasted by mistake) and the line it is on.
_CHANNEL = "channels:\n  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [noarch]\n"

LONG_VALUES = [
    pytest.param(_CHANNEL + "    schedule: 'L'\n", 6, "channels.c/x.schedule", id="cron"),
    pytest.param(
        _CHANNEL + "    schedule: '30-10/L * * * *'\n", 6, "channels.c/x.schedule", id="cron-range"
    ),
    pytest.param(
        _CHANNEL + "    notices:\n      - {message: m, created: 'L'}\n",
        7,
        "channels.c/x.notices[0].created",
        id="notice-date",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      dates: {after: 'L'}\n",
        7,
        "channels.c/x.filters.dates.after",
        id="filter-date",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      specs: {include: ['numpy >>L']}\n",
        7,
        "channels.c/x.filters.specs.include[0]",
        id="matchspec",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      specs: {exclude: ['numpy[build_number=L]']}\n",
        7,
        "channels.c/x.filters.specs.exclude[0]",
        id="matchspec-build-number",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      specs: {include: ['cL::numpy']}\n",
        7,
        "channels.c/x.filters.specs.include[0]",
        id="matchspec-channel",
    ),
    pytest.param(_CHANNEL + "    mode: L\n", 6, "channels.c/x.mode", id="mode"),
    pytest.param(_CHANNEL + "    access: L\n", 6, "channels.c/x.access", id="access"),
    pytest.param(
        _CHANNEL + "    access: private\n    readers: [L]\n",
        7,
        "channels.c/x.readers[0]",
        id="reader",
    ),
    pytest.param(
        _CHANNEL + "    notices:\n      - {message: m, level: L}\n",
        7,
        "channels.c/x.notices[0].level",
        id="notice-level",
    ),
    pytest.param(
        _CHANNEL + "    notices:\n      - {message: m, id: L}\n      - {message: n, id: L}\n",
        8,
        "channels.c/x.notices[1]",
        id="notice-id",
    ),
    pytest.param(_CHANNEL + "    ca_bundle: L.pem\n", 6, "channels.c/x.ca_bundle", id="ca-bundle"),
    pytest.param(
        _CHANNEL + "    filters:\n      names: {include: ['[L']}\n",
        7,
        "channels.c/x.filters.names.include[0]",
        id="glob",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      names: {include: [aL], exclude: [a*]}\n",
        7,
        "channels.c/x.filters",
        id="glob-excluded",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      formats: L\n",
        7,
        "channels.c/x.filters.formats",
        id="formats",
    ),
    pytest.param(
        "channels:\n  c/x:\n    url: http://127.0.0.1:1/c\n    subdirs: [L]\n",
        5,
        "channels.c/x.subdirs[0]",
        id="subdir",
    ),
    pytest.param(
        "channels:\n  c/x:\n    url: ftp://L\n    subdirs: [noarch]\n",
        4,
        "channels.c/x.url",
        id="url",
    ),
    pytest.param(
        "channels:\n  c/x:\n    path: relL\n    subdirs: [noarch]\n",
        4,
        "channels.c/x.path",
        id="local-path",
    ),
    pytest.param(
        "channels:\n  c/x:\n    mirrors:\n      - {name: 'L', url: 'http://127.0.0.1:1/c', subdirs: [noarch]}\n",
        5,
        "channels.c/x.mirrors[0].name",
        id="mirror-name",
    ),
    pytest.param(
        "installers:\n  m: {url: 'http://127.0.0.1:1/m/', include: ['[L']}\n" + _CHANNEL,
        3,
        "installers.m.include[0]",
        id="installer-glob",
    ),
]


@pytest.mark.parametrize(("text", "line", "path"), LONG_VALUES)
def test_a_long_value_is_quoted_clipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, path: str
) -> None:
    """A value refused for what it holds is quoted by its start and its length: 100,000
    characters pasted by mistake would otherwise fill the terminal and the log."""
    config_path = write_config(tmp_path, "output: site\n" + text.replace("L", "9" * 100_000))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"channels.yaml:{line}: {path}: " in err, err[:300]
    assert len(err.replace(str(tmp_path), "")) < 400, err[:600]
    assert "... (100,0" in err, err


# A key of 200,000 characters, which YAML's explicit form (`? key`) lets past PyYAML's limit of
# 1,024 on a plain key (<K>), and what the errors under it say: its first 200 characters (<S>;
# of a channel's "c/<K>": "c/" and <T>, 198 of them).
LONG_KEYS = [
    pytest.param(
        "? '<K>'\n: 1\n" + _CHANNEL,
        [
            "channels.yaml:2: <S>... (200,000 characters): unknown key '<S>'... (200,000 characters);"
        ],
        id="top",
    ),
    pytest.param(
        "channels:\n  ? 'c/<K>'\n  : {url: 'ftp://x', subdirs: [noarch], bogus: 1, mode: x}\n",
        [
            "channels.yaml:4: channels.c/<T>... (200,002 characters): invalid channel path",
            "channels.yaml:4: channels.c/<T>... (200,002 characters).bogus: unknown key 'bogus'",
            "channels.yaml:4: channels.c/<T>... (200,002 characters).mode: expected 'active'",
            "channels.yaml:4: channels.c/<T>... (200,002 characters).url: URL must start with",
        ],
        id="channel",
    ),
    pytest.param(
        _CHANNEL + "    filters:\n      ? '<K>'\n      : 1\n",
        ["channels.yaml:7: channels.c/x.filters.<S>... (200,000 characters): unknown key '<S>'..."],
        id="filter",
    ),
]


@pytest.mark.parametrize(("text", "errors"), LONG_KEYS)
def test_a_long_key_is_shown_clipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, errors: list[str]
) -> None:
    """A key is shown by its start and its length in the key path of every error under it and
    in the error that refuses it, not written out whole in each."""
    config_path = write_config(tmp_path, "output: site\n" + text.replace("<K>", "9" * 200_000))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    for error in errors:
        assert error.replace("<S>", "9" * 200).replace("<T>", "9" * 198) in err, err[:2000]
    assert len(err.replace(str(tmp_path), "")) < 800 * len(errors), err[:2000]
