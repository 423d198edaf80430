"""channels.yaml as a whole: empty, unreadable, not YAML, many errors; CLI usage errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sitegen.cli import main
from sitegen.config import ConfigError, load_config, parse_config, yaml_nodes
from testkit.config import check_refused_run, dedent, line_of, write_config

pytestmark = pytest.mark.unit


def test_empty_file() -> None:
    for text in ("", "\n", "# only a comment\n"):
        with pytest.raises(ConfigError, match=r"^channels\.yaml:1: the file is empty"):
            parse_config(text)


def test_invalid_yaml_names_the_line() -> None:
    text = dedent("""
        output: site
        channels:
          cloud/conda-forge:
            url: https://conda.anaconda.org/conda-forge
            subdirs: [linux-64
          pkgs/main:
            url: https://repo.anaconda.com/pkgs/main
    """)
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert "not valid YAML" in message
    # PyYAML reports where it noticed the problem: at or after the unclosed bracket.
    line = int(message.split(":")[1])
    assert line >= line_of(text, "[linux-64")


QUOTE = "is read as YAML syntax: put it in quotes"


@pytest.mark.parametrize(
    ("line", "marker", "path", "words"),
    [
        ("    schedule: */10 * * * *", "schedule:", "channels.cloud/x.schedule", f"'*' {QUOTE}"),
        ("    schedule: @daily", "schedule:", "channels.cloud/x.schedule", f"'@' {QUOTE}"),
        (
            "    filters: {names: {exclude: [*-nightly]}}",
            "filters:",
            "channels.cloud/x.filters",
            f"'*' {QUOTE}",
        ),
        ("    mode: `passive`", "mode:", "channels.cloud/x.mode", f"'`' {QUOTE}"),
        (
            "    notices: [{message: Moved: use pkgs/main}]",
            "notices:",
            "channels.cloud/x.notices",
            "not valid YAML",
        ),
    ],
)
def test_a_value_yaml_cannot_read_is_named_by_its_key(
    tmp_path: Path, line: str, marker: str, path: str, words: str
) -> None:
    """Cron expressions and globs start with '*', and schedule keywords with '@': unquoted,
    YAML reads them as its own syntax (an alias, a reserved character) and refuses the whole
    file. The error names the key whose value it is, as every other error does, and says to
    quote a value that starts with a character YAML reserves."""
    text = """
        output: site
        channels:
          cloud/x:
            url: https://x.org/c
            subdirs: [linux-64]
        LINE
    """.replace("LINE", line)
    check_refused_run(tmp_path, text, marker, path, words)


def test_yaml_that_no_one_value_spoils_names_only_the_line() -> None:
    """An indentation or structure error is the document's, not one value's: no key is
    named for it, rather than the wrong one."""
    text = "output: site\nchannels:\n  cloud/x:\n    url: https://x.org/c\n   subdirs: [a]\n"
    with pytest.raises(
        ConfigError, match=r"^channels\.yaml:5: not valid YAML: expected <block end>"
    ):
        parse_config(text)


def test_yaml_a_file_system_or_a_decoder_would_choke_on_names_the_line(tmp_path: Path) -> None:
    """Nesting too deep for the parser, a character YAML does not allow, bytes that are not
    UTF-8, an output that is a file: each an error naming the file (and the line where the
    text tells it), never a crash."""
    body = "output: site\nchannels:\n  cloud/x: {url: https://x.org/c, subdirs: [linux-64]}\n"
    with pytest.raises(ConfigError, match=r"^channels.yaml: not valid YAML: nested too deep"):
        parse_config("title: " + "[" * 5000 + "]" * 5000 + "\n" + body)
    with pytest.raises(
        ConfigError, match=r"^channels.yaml:3: channels.cloud/x: not valid YAML: unacceptable"
    ):
        parse_config(body.replace("linux-64", "linux-64\x01"))
    path = tmp_path / "channels.yaml"
    path.write_bytes(body.encode() + b"title: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"channels.yaml:4: not UTF-8 text"):
        load_config(path)
    (tmp_path / "site").write_text("a file")
    path.write_text(body)
    with pytest.raises(ConfigError, match=rf"^{path}:1: output: .* is not a directory"):
        load_config(path)
    # Below a file: mkdir would fail at the run's start, so the check says so first.
    path.write_text(body.replace("output: site", "output: site/inner/pages"))
    with pytest.raises(
        ConfigError, match=rf"^{path}:1: output: .* cannot be created: .*/site' is not a directory"
    ):
        load_config(path)


def test_a_character_yaml_does_not_allow_is_told_in_one_line() -> None:
    """A stray control character (a form feed, an ESC pasted from a terminal) is one error on
    one line, as every other: the parser's own text adds where it was read from, a second
    line naming no file ('in "<unicode string>", position 83')."""
    body = "output: site\nchannels:\n  cloud/x: {url: https://x.org/c, subdirs: [linux-64]}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(body.replace("linux-64", "linux-64\x1b"))
    assert info.value.errors == (
        "channels.yaml:3: channels.cloud/x: not valid YAML: unacceptable character #x001b:"
        " special characters are not allowed",
    )


def test_aliases_that_multiply_the_document_are_refused_before_it_is_walked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A few kilobytes of anchors and aliases can stand for millions of values (one list of
    specs aliased by every channel); walking them all would hold the command for minutes, so
    a document that expands past a bound is refused, naming the line. Aliases used within
    it (one filter set shared by a few channels) still read as written."""
    specs = ", ".join(f'"pkg{i} >=1"' for i in range(1500))
    first = f"  c/0: &c {{url: https://x.org/c, subdirs: [noarch], filters: {{specs: {{include: [{specs}]}}}}}}"
    text = "\n".join(
        ["output: site", "channels:", first, *(f"  c/{i}: *c" for i in range(1, 1500))]
    )
    walked = 0  # nodes of the document wrapped to be read (the walk that took minutes)
    wrap = yaml_nodes.YamlNode.__init__

    def counted(self: yaml_nodes.YamlNode, *args: Any, **kwargs: Any) -> None:
        nonlocal walked
        walked += 1
        wrap(self, *args, **kwargs)

    monkeypatch.setattr(yaml_nodes.YamlNode, "__init__", counted)
    with pytest.raises(ConfigError, match=r"^channels\.yaml:3: not valid YAML: its aliases expand"):
        parse_config(text + "\n")
    assert walked == 0
    monkeypatch.undo()
    shared = "\n".join(
        ["output: site", "channels:", first, *(f"  c/{i}: *c" for i in range(1, 20))]
    )
    config = parse_config(shared + "\n")
    assert len(config.channels) == 20
    assert config.channels[19].filters == config.channels[0].filters


@pytest.mark.parametrize(
    "text", ["", "output: site\nchannels: [\n"], ids=["empty file", "invalid YAML"]
)
def test_cli_exits_2_for_unreadable_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(text)
    status = main(["mirror", "-c", str(config_path), "--out", str(tmp_path / "site")])
    assert status == 2
    # The file named as given to -c, not only by its base name.
    assert f"configuration error: {config_path}:" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()


def test_cli_exits_2_for_missing_config(tmp_path: Path, capsys) -> None:
    status = main(["mirror", "-c", str(tmp_path / "nope.yaml")])
    assert status == 2
    assert "nope.yaml: cannot read" in capsys.readouterr().err


def test_cli_exits_2_for_bad_usage(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["mirror", "--no-such-flag"])
    assert info.value.code == 2


MANY_ERRORS = """
output: site
outptu: typo
download: {concurrency: many, retries: -1}
filters:
  names: {include: ["sci[py"]}
channels:
  cloud/a:
    url: ftp://example.org/a
    subdirs: [linux-64]
    mode: lazy
  cloud/b:
    mirrors:
      - name: b1
        subdirs: [linux-64]
      - name: b2
        url: https://example.org/b
        subdirs: [Linux 64]
        filters: {newest_versions: 0, max_size: huge}
  cloud/c:
    url: https://example.org/c
    subdirs: [linux-64]
    filters:
      names: {exclude: ["*"]}
"""


def test_every_error_is_reported_once_in_file_order() -> None:
    text = dedent(MANY_ERRORS)
    with pytest.raises(ConfigError) as info:
        parse_config(text)

    def at(marker: str, path: str, words: str) -> str:
        return f"channels.yaml:{line_of(text, marker)}: {path}: {words}"

    expected = [
        at("outptu", "outptu", "unknown key 'outptu'"),
        at("download", "download.concurrency", "expected a whole number, got 'many'"),
        at("download", "download.retries", "must be at least 0"),
        at("sci[py", "filters.names.include[0]", "invalid glob 'sci[py': unbalanced brackets"),
        at("ftp://", "channels.cloud/a.url", "URL must start with https://, http:// or file://"),
        at("mode: lazy", "channels.cloud/a.mode", "expected 'active' or 'passive', got 'lazy'"),
        at("name: b1", "channels.cloud/b.mirrors[0]", "missing required key 'url'"),
        at("Linux 64", "channels.cloud/b.mirrors[1].subdirs[0]", "invalid subdir 'Linux 64'"),
        at("newest_versions", "channels.cloud/b.mirrors[1].filters.newest_versions", "must be"),
        at("max_size", "channels.cloud/b.mirrors[1].filters.max_size", "expected a size"),
        at("names: {exclude", "channels.cloud/c.filters", "names.exclude '*' excludes every"),
    ]
    errors = info.value.errors
    assert len(errors) == len(expected), "\n".join(errors)
    for error, prefix in zip(errors, expected, strict=True):
        assert error.startswith(prefix), (error, prefix)
    assert str(info.value) == "\n".join(errors)


def test_at_most_20_errors_are_listed() -> None:
    channels = "".join(
        f"  c/m{i}:\n    url: https://example.org/{i}\n    subdirs: [linux-64]\n    mode: m{i}\n"
        for i in range(25)
    )
    with pytest.raises(ConfigError) as info:
        parse_config(f"output: site\nchannels:\n{channels}")
    errors = info.value.errors
    assert len(errors) == 21
    assert all(f"channels.c/m{i}.mode: " in errors[i] for i in range(20))
    assert errors[20] == "channels.yaml: stopped after 20 errors"


def test_cli_lists_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = write_config(tmp_path, dedent(MANY_ERRORS))
    assert main(["mirror", "-c", str(config_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "channels.cloud/a.mode" in err and "channels.cloud/c.filters" in err
    assert not (tmp_path / "out").exists()
