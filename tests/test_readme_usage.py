"""README.md tells the truth about the command line.

The usage block under ``## Running it`` is the synopsis of every subcommand: each command of
the parser has an entry there, each entry names a command that exists, and lists every option
of its command and no other (-h, -v/-q and -c/--out, which the text above the block covers,
aside). An option given there with a value in lower case (``--port 8000``) states its default,
so it must be the parser's; an upper-case value (``--out DIR``) is a placeholder.

Elsewhere, a command line in the README (``sitegen <command> ...``, in code) names only options
that command has. And ``--help`` itself: an option whose help states ``(default: VALUE)`` has
that default in the parser (one left None, computed when run, is described instead).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from sitegen.cli import build_parser

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent
# The text above the usage block says these hold for every subcommand.
SHARED = {"-h", "--help", "-v", "--verbose", "-q", "--quiet", "-c", "--config", "--out"}
OPTION = re.compile(r"(?<![\w-])--?[a-z][a-z0-9-]*")
# An option and the value written after it: `--port 8000`, `--only NAME`.
OPTION_VALUE = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*) ((?!-)[^\s\[\]|]+)")
# `(default: 60)`, `(default: 8000; 0: any)`: the value up to the first ';' or ')'.
STATED_DEFAULT = re.compile(r"\(default: (?P<value>[^;)]*)[;)]")
# `sitegen <word>`: a command line when the word is a command, or when it starts a line or a
# span of code (after a path such as .venv/bin/), so that `sitegen mirrors` is found too.
INVOCATION = re.compile(
    r"(?:(?P<start>^\s*(?:\S*/)?)|(?<=[\s/]))sitegen (?P<name>[a-z][a-z-]*)(?: (?P<sub>[a-z][a-z-]*))?"
)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """'mirror' -> its parser; a command with subcommands of its own by each ('token add')."""
    found: dict[str, argparse.ArgumentParser] = {}
    for name, command in subcommands(parser).items():
        nested = subcommands(command)
        if nested:
            found.update({f"{name} {sub}": parser for sub, parser in nested.items()})
        else:
            found[name] = command
    return found


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def defaults(parser: argparse.ArgumentParser) -> dict[str, object]:
    return {
        option: action.default
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    }


def usage_block(readme: str) -> dict[str, str]:
    """Command -> its entry, from the first code block under ``## Running it``; an entry is a
    line starting with ``sitegen`` and the indented lines after it."""
    section = readme.split("\n## Running it\n", 1)[1]
    block = section.split("\n```\n", 1)[1].split("\n```", 1)[0]
    entries: list[str] = []
    for line in block.splitlines():
        if line.startswith("sitegen "):
            entries.append(line)
        else:
            assert line.startswith(" ") and entries, f"not part of an entry: {line!r}"
            entries[-1] += " " + line.strip()
    found: dict[str, str] = {}
    for entry in entries:
        words = entry.split()
        command = " ".join(words[1:3]) if words[1] == "token" else words[1]
        assert command not in found, f"{command} has two entries"
        found[command] = entry
    return found


def usage_problems(readme: str, parser: argparse.ArgumentParser) -> list[str]:
    block = usage_block(readme)
    real = commands(parser)
    problems = [f"{name}: not in the usage block" for name in real if name not in block]
    for name, entry in block.items():
        if name not in real:
            problems.append(f"{name}: no such command")
            continue
        named = set(OPTION.findall(entry))
        have = options(real[name])
        problems += [f"{name}: no option {option}" for option in sorted(named - have)]
        problems += [
            f"{name}: {option} missing from the usage block"
            for option in sorted(have - named - SHARED)
        ]
        default = defaults(real[name])
        for option, value in OPTION_VALUE.findall(entry):
            if option in default and not value.isupper() and value != str(default[option]):
                problems.append(f"{name}: {option} {value}, but the default is {default[option]}")
    return problems


def help_default_problems(parser: argparse.ArgumentParser) -> list[str]:
    problems = []
    for name, command in commands(parser).items():
        for action in command._actions:
            stated = STATED_DEFAULT.search(action.help or "")
            if stated is None or action.default is None:
                continue
            value, default = stated["value"], action.default
            if isinstance(default, int | float) and not isinstance(default, bool):
                same = re.fullmatch(r"-?[0-9.]+", value) is not None and float(value) == default
            else:
                same = value == str(default)
            if not same:
                option = action.option_strings[0]
                problems.append(
                    f"{name}: {option} help says {value}, but the default is {default!r}"
                )
    return problems


def code_lines(readme: str) -> list[str]:
    """What README.md shows as code: the lines of fenced and indented blocks, and the inline
    code spans of the rest (each within its paragraph)."""
    code: list[str] = []
    prose: list[str] = []
    fenced = False
    for line in readme.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced or line.startswith("    "):
            code.append(line)
        else:
            prose.append(line)
    spans = [
        span.replace("\n", " ")
        for paragraph in "\n".join(prose).split("\n\n")
        for span in re.findall(r"`([^`]+)`", paragraph)
    ]
    return code + spans


def invocation_problems(readme: str, parser: argparse.ArgumentParser) -> list[str]:
    top = subcommands(parser)
    problems = []
    for line in code_lines(readme):
        for match in INVOCATION.finditer(line):
            name, sub = match["name"], match["sub"]
            if name not in top:
                if match.group("start") is not None:
                    problems.append(f"{line!r}: no command {name}")
                continue
            nested = subcommands(top[name])
            if sub in nested:
                have = options(nested[sub])
            else:  # `sitegen token ... --reload`: an option of one of its subcommands
                have = options(top[name]).union(*map(options, nested.values()))
            rest = INVOCATION.split(line[match.end() :], 1)[0]
            problems += [
                f"{line!r}: sitegen {name} has no option {option}"
                for option in OPTION.findall(rest)
                if option not in have
            ]
    return problems


def readme() -> str:
    return (REPO / "README.md").read_text()


def test_the_usage_block_is_every_command_with_its_options() -> None:
    assert usage_problems(readme(), build_parser()) == []


def test_every_default_a_help_states_is_the_parsers() -> None:
    assert help_default_problems(build_parser()) == []


def test_a_help_stating_another_default_is_found() -> None:
    parser = argparse.ArgumentParser()
    serve = parser.add_subparsers().add_parser("serve")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8080; 0: any)")
    serve.add_argument("--timeout", type=float, default=60.0, help="seconds (default: 60)")
    serve.add_argument("--prefix", default="", help="URL path (default: /)")
    serve.add_argument("--root", help="directory (default: the site directory)")
    assert help_default_problems(parser) == [
        "serve: --port help says 8080, but the default is 8000",
        "serve: --prefix help says /, but the default is ''",
    ]


def test_every_command_line_in_the_readme_names_real_options() -> None:
    assert invocation_problems(readme(), build_parser()) == []


@pytest.mark.parametrize(
    ("wrong", "right", "problem"),
    [
        (
            "sitegen status -c channels.yaml [--json]",
            "sitegen status -c channels.yaml [--json] [--all]",
            "status: no option --all",
        ),
        ("sitegen render -c channels.yaml\n", "", "render: not in the usage block"),
        (
            "sitegen render -c channels.yaml",
            "sitegen render -c channels.yaml\nsitegen rerender -c channels.yaml",
            "rerender: no such command",
        ),
        (
            "[--timeout SECONDS]",
            "",
            "stop: --timeout missing from the usage block",
        ),
        (
            "[--port 8000]",
            "[--port 8080]",
            "serve: --port 8080, but the default is 8000",
        ),
        (
            "sitegen token check -c channels.yaml",
            "sitegen token check -c channels.yaml [--stdin]",
            "token check: no option --stdin",
        ),
    ],
)
def test_a_wrong_usage_line_is_found(wrong: str, right: str, problem: str) -> None:
    text = readme()
    assert wrong in text
    assert problem in usage_problems(text.replace(wrong, right, 1), build_parser())


def test_a_wrong_command_line_in_the_text_is_found() -> None:
    text = readme() + (
        "\n`sitegen verify -c channels.yaml --fix` and\n"
        "    .venv/bin/sitegen token revoke ci-runner --channel x\n"
        "```sh\nsitegen mirrors --due\n```\n"
    )
    assert invocation_problems(text, build_parser()) == [
        "'    .venv/bin/sitegen token revoke ci-runner --channel x': "
        "sitegen token has no option --channel",
        "'sitegen mirrors --due': no command mirrors",
        "'sitegen verify -c channels.yaml --fix': sitegen verify has no option --fix",
    ]
