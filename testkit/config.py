"""channels.yaml text for the configuration tests: written indented in a test, its lines
looked up by what they hold, and written where a CLI run may create nothing beside it; and
:func:`config_error_tests`, the two tests every module of config errors runs over its cases."""

from __future__ import annotations

import contextlib
import io
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.config import ConfigError, parse_config

# (id, config text, marker on the line the error must name, key path, words of the message)
ConfigErrorCase = tuple[str, str, str, str, str]

# One channel with one mirror, in the short form (a ``url:`` directly under the channel path).
SHORT = """
output: site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
"""


def dedent(text: str) -> str:
    """``text`` without its common indentation and its leading line ends."""
    return textwrap.dedent(text).lstrip("\n")


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of text that contains needle."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the config text")


def write_config(tmp_path: Path, text: str) -> Path:
    """``tmp_path/channels.yaml`` holding ``text``, its ``output: site`` put under
    ``tmp_path/out`` (which a refused run must not create)."""
    site = tmp_path / "out" / "site"
    path = tmp_path / "channels.yaml"
    path.write_text(text.replace("output: site", f"output: {site}"))
    return path


def check_named_error(text: str, marker: str, path: str, words: str) -> None:
    """Parsing the config ``text`` fails with an error naming the line holding ``marker``
    and the key ``path``, saying ``words``."""
    text = dedent(text)
    try:
        parse_config(text)
    except ConfigError as exc:
        message = str(exc)
    else:
        raise AssertionError("the config was accepted")
    assert message.startswith(f"channels.yaml:{line_of(text, marker)}: {path}: "), message
    assert words in message


def check_refused_run(tmp_path: Path, text: str, marker: str, path: str, words: str) -> None:
    """``sitegen mirror`` over the config ``text`` exits 2, names the line and key on
    stderr and creates nothing (not even the site's parent directory)."""
    config_path = write_config(tmp_path, dedent(text))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(["mirror", "-c", str(config_path), "--no-progress"])
    assert status == 2
    line = line_of(config_path.read_text(), marker)
    assert f"channels.yaml:{line}: {path}: " in err.getvalue()
    assert words in err.getvalue()
    assert not (tmp_path / "out").exists()


def config_error_tests(
    errors: list[ConfigErrorCase],
) -> tuple[Callable[..., None], Callable[..., None]]:
    """The tests of a module of config errors, over its cases ``errors``: the parser names
    the line and the key (:func:`check_named_error`), and ``sitegen mirror`` exits 2 and
    creates nothing (:func:`check_refused_run`). The module binds them to the names
    returned, ``test_error_names_line_and_key_path, test_cli_exits_2_and_touches_nothing =
    config_error_tests(ERRORS)``, so that pytest collects them there, under its marks."""
    cases = pytest.mark.parametrize(
        ("text", "marker", "path", "words"),
        [pytest.param(t, m, p, w, id=case) for case, t, m, p, w in errors],
    )

    @cases
    def test_error_names_line_and_key_path(text: str, marker: str, path: str, words: str) -> None:
        check_named_error(text, marker, path, words)

    @cases
    def test_cli_exits_2_and_touches_nothing(
        tmp_path: Path, text: str, marker: str, path: str, words: str
    ) -> None:
        check_refused_run(tmp_path, text, marker, path, words)

    return test_error_names_line_and_key_path, test_cli_exits_2_and_touches_nothing
