"""Lockfiles as allowlists: reading pixi.lock, conda-lock.yml and @EXPLICIT files, matching by
subdir, file name and checksum, and every way a lockfile can be bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegen.cli import EXIT_CONFIG, main
from sitegen.conda.version import RecordMatcher
from sitegen.config import ConfigError, FilterSpec, parse_config
from sitegen.filters import lockfile_read
from sitegen.filters.apply import REASON_NOT_ALLOWED, apply_filters
from sitegen.filters.lockfile_read import Pin, parse_explicit, parse_yaml_lockfile
from sitegen.filters.lockfiles import (
    CHECKSUM_DIFFERS,
    NOT_UPSTREAM,
    LockfilePolicy,
    missing_pins,
)
from testkit.records import rec

pytestmark = pytest.mark.unit

SHA_A, SHA_B = "a" * 64, "b" * 64
MD5_A = "c" * 32
FORGE = "https://conda.anaconda.org/conda-forge"

EXPLICIT = f"""\
# This file may be used to create an environment using:
# $ conda create --name <env> --file <this file>
# platform: linux-64
@EXPLICIT
{FORGE}/linux-64/zlib-1.3.1-0.conda#{MD5_A}
{FORGE}/noarch/pip-24.0-0.tar.bz2#sha256:{SHA_A}
https://repo.anaconda.com/pkgs/main/linux-64/python-3.12.4-0.conda
"""

PIXI = f"""\
version: 6
environments:
  default:
    channels:
    - url: {FORGE}/
    packages:
      linux-64:
      - conda: {FORGE}/linux-64/zlib-1.3.1-0.conda
      - pypi: https://files.pythonhosted.org/packages/x/requests-2.32.3-py3-none-any.whl
packages:
- conda: {FORGE}/linux-64/zlib-1.3.1-0.conda
  sha256: {SHA_A}
  md5: {MD5_A}
  size: 1000
- pypi: https://files.pythonhosted.org/packages/x/requests-2.32.3-py3-none-any.whl
  name: requests
  version: 2.32.3
- conda: .
  name: local-thing
"""

PIXI_V5 = f"""\
version: 5
packages:
- kind: conda
  name: zlib
  version: 1.3.1
  url: {FORGE}/linux-64/zlib-1.3.1-0.conda
  sha256: {SHA_A}
- kind: pypi
  name: requests
  url: https://files.pythonhosted.org/packages/x/requests-2.32.3-py3-none-any.whl
"""

CONDA_LOCK = f"""\
version: 1
metadata:
  channels: [{{url: conda-forge, used_env_vars: []}}]
  platforms: [linux-64]
package:
- name: zlib
  version: 1.3.1
  manager: conda
  platform: linux-64
  dependencies: {{}}
  url: {FORGE}/linux-64/zlib-1.3.1-0.conda
  hash: {{md5: {MD5_A}, sha256: {SHA_A}}}
  category: main
  optional: false
- name: requests
  version: 2.32.3
  manager: pip
  platform: linux-64
  url: https://files.pythonhosted.org/packages/x/requests-2.32.3-py3-none-any.whl
  hash: {{sha256: {SHA_B}}}
"""


def test_explicit_file_pins_urls_with_md5_or_sha256():
    assert parse_explicit(EXPLICIT, "env.txt") == (
        Pin("linux-64", "zlib-1.3.1-0.conda", f"{FORGE}/linux-64/zlib-1.3.1-0.conda", md5=MD5_A),
        Pin("noarch", "pip-24.0-0.tar.bz2", f"{FORGE}/noarch/pip-24.0-0.tar.bz2", sha256=SHA_A),
        Pin(
            "linux-64",
            "python-3.12.4-0.conda",
            "https://repo.anaconda.com/pkgs/main/linux-64/python-3.12.4-0.conda",
        ),
    )


def test_explicit_file_of_conda_list_sha256_pins_by_sha256(tmp_path):
    # `conda list --explicit --sha256` writes the bare digest after `#` (CEP 23 allows it with
    # or without `sha256:`): 64 hex digits are a sha256, not a malformed md5.
    text = f"@EXPLICIT\n{FORGE}/linux-64/zlib-1.3.1-0.conda#{SHA_A}\n"
    spec = config_with(tmp_path, {"env.txt": text}, "[env.txt]")
    pinned = rec("zlib", "1.3.1", sha256=SHA_A)
    other = rec("zlib", "1.3.1", build="1", sha256=SHA_A)  # another file name: not pinned
    result = apply_filters(
        {r.fn: r for r in (pinned, other)},
        "linux-64",
        (spec, FilterSpec(), FilterSpec()),
        RecordMatcher(),
    )
    assert set(result.kept) == {pinned.fn}
    changed = rec("zlib", "1.3.1", sha256=SHA_B)  # the same name, other bytes
    assert missing_pins([spec], ["linux-64"], {("linux-64", changed.fn): [changed]}) == [
        {
            "lockfile": str(tmp_path / "env.txt"),
            "subdir": "linux-64",
            "file": changed.fn,
            "why": CHECKSUM_DIFFERS,
        }
    ]


@pytest.mark.parametrize("text", [PIXI, PIXI_V5, CONDA_LOCK])
def test_yaml_lockfiles_pin_conda_packages_only(text):
    (pin,) = parse_yaml_lockfile(text, "lock")
    assert (pin.subdir, pin.fn, pin.sha256) == ("linux-64", "zlib-1.3.1-0.conda", SHA_A)


PIXI_SOURCES = f"""\
version: 6
packages:
- conda: {FORGE}/linux-64/zlib-1.3.1-0.conda
  sha256: {SHA_A}
- conda: git+https://github.com/example/thing.git?subdirectory=recipe#0123456789abcdef
  name: thing
  version: 0.1.0
  build: hb0f4dca_0
  subdir: linux-64
- conda: https://example.org/releases/other-2.0.tar.gz
  name: other
  version: 2.0.0
  build: hb0f4dca_0
  subdir: noarch
  input:
    hash: {SHA_B}
    globs: [recipe.yaml]
"""


def test_pixi_source_packages_from_git_or_an_archive_pin_nothing():
    # pixi writes a package it builds from source under `conda:` too, located by a git URL or a
    # source archive's; what tells it from a package file is its location's file name.
    (pin,) = parse_yaml_lockfile(PIXI_SOURCES, "pixi.lock")
    assert (pin.subdir, pin.fn, pin.sha256) == ("linux-64", "zlib-1.3.1-0.conda", SHA_A)


def test_allowlist_matches_subdir_file_name_and_checksum_across_channels():
    pins = parse_yaml_lockfile(PIXI, "lock")
    spec = FilterSpec.from_values({"lockfiles": LockfilePolicy((("pixi.lock", pins),))})
    records = [
        rec("zlib", "1.3.1", sha256=SHA_A),  # pinned (its upstream is another channel)
        rec("zlib", "1.3.1", ext=".tar.bz2", sha256=SHA_A),  # the twin is not pinned
        rec("zlib", "1.2.13"),
    ]
    result = apply_filters(
        {r.fn: r for r in records}, "linux-64", (spec, FilterSpec(), FilterSpec()), RecordMatcher()
    )
    assert set(result.kept) == {"zlib-1.3.1-0.conda"}
    assert set(result.excluded.values()) == {REASON_NOT_ALLOWED}
    # Same name, another checksum: a different file, not the one pinned.
    changed = rec("zlib", "1.3.1", sha256=SHA_B)
    result = apply_filters(
        {changed.fn: changed}, "linux-64", (spec, FilterSpec(), FilterSpec()), RecordMatcher()
    )
    assert result.kept == {}
    # In another subdir the same file name is another file.
    other = rec("zlib", "1.3.1", subdir="osx-64", sha256=SHA_A)
    result = apply_filters(
        {other.fn: other}, "osx-64", (spec, FilterSpec(), FilterSpec()), RecordMatcher()
    )
    assert result.kept == {}


def test_checksums_match_whatever_their_case():
    # Repodata may write its checksums in upper case; the pin is the same file.
    spec = FilterSpec.from_values(
        {"lockfiles": LockfilePolicy((("pixi.lock", parse_yaml_lockfile(PIXI, "lock")),))}
    )
    upper = rec("zlib", "1.3.1", sha256=SHA_A.upper(), md5=MD5_A.upper())
    result = apply_filters(
        {upper.fn: upper}, "linux-64", (spec, FilterSpec(), FilterSpec()), RecordMatcher()
    )
    assert set(result.kept) == {upper.fn}
    (by_md5,) = parse_explicit(EXPLICIT, "env.txt")[:1]
    assert by_md5.matches({"md5": MD5_A.upper()})
    assert missing_pins([spec], ["linux-64"], {("linux-64", upper.fn): [upper]}) == []


def config_with(tmp_path: Path, files: dict[str, str | bytes], entries: str) -> FilterSpec:
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (tmp_path / name).write_bytes(data)
    text = (
        "output: site\nchannels:\n  cloud/forge:\n    url: https://conda.example.org/forge\n"
        f"    subdirs: [linux-64]\n    filters:\n      lockfiles: {entries}\n"
    )
    return (
        parse_config(text, filename="channels.yaml", base_dir=tmp_path)
        .channels[0]
        .mirrors[0]
        .filters
    )


@pytest.mark.parametrize("text", [EXPLICIT, "@EXPLICIT\n" + EXPLICIT.split("@EXPLICIT\n")[1]])
def test_an_explicit_file_saved_with_a_byte_order_mark_is_read(tmp_path, text):
    # Windows tools (PowerShell's `Out-File -Encoding utf8`, Notepad) start UTF-8 with a BOM.
    spec = config_with(tmp_path, {"env.txt": "\ufeff" + text}, "[env.txt]")
    policy = spec.setting("lockfiles")
    assert isinstance(policy, LockfilePolicy)
    assert policy.files == ((str(tmp_path / "env.txt"), parse_explicit(EXPLICIT, "env.txt")),)


def test_missing_pins_are_reported_with_why(tmp_path):
    spec = config_with(tmp_path, {"env.txt": EXPLICIT, "pixi.lock": PIXI}, "[env.txt, pixi.lock]")
    zlib = rec("zlib", "1.3.1", md5=MD5_A, sha256=SHA_A)
    python = rec("python", "3.12.4", sha256=SHA_B)
    available = {("linux-64", zlib.fn): [zlib], ("linux-64", python.fn): [python]}
    assert missing_pins([spec], ["linux-64"], available) == []
    changed = rec("zlib", "1.3.1", md5=MD5_A, sha256=SHA_B)
    missing = missing_pins([spec], ["linux-64", "noarch"], {("linux-64", changed.fn): [changed]})
    assert [(m["lockfile"].rsplit("/", 1)[-1], m["file"], m["why"]) for m in missing] == [
        ("env.txt", "pip-24.0-0.tar.bz2", NOT_UPSTREAM),
        ("env.txt", "python-3.12.4-0.conda", NOT_UPSTREAM),
        ("pixi.lock", "zlib-1.3.1-0.conda", CHECKSUM_DIFFERS),
    ]


PREFIX = "channels.yaml:7: channels.cloud/forge.filters.lockfiles[0]: bad lockfile: "


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("packages: [", "lock:1: packages: not valid YAML"),
        ("- just\n- a list\n", "lock:1: (top level): expected a mapping"),
        ("version: 1\n", "lock:1: (top level): not a pixi.lock ('packages'), conda-lock.yml"),
        ("packages: {a: 1}\n", "lock:1: packages: expected a list"),
        (
            "packages:\n- conda: https://x.org/c/linux-64/a-1-0.conda\n  sha256: xyz\n",
            "lock:3: packages[0].sha256: expected a sha256 checksum (64 hex digits)",
        ),
        (
            # A line end after the digits ("$" alone would let it by): no record ever matched.
            f'packages:\n- conda: https://x.org/c/linux-64/a-1-0.conda\n  sha256: "{SHA_A}\\n"\n',
            "lock:3: packages[0].sha256: expected a sha256 checksum (64 hex digits)",
        ),
        (
            "packages:\n- conda: https://x.org/a-1-0.conda\n",
            "lock:2: packages[0].conda: not a package URL",
        ),
        (
            "packages:\n- conda: https://x.org/c/linux-64/a-1-0.whl\n",
            "lock:2: packages[0].conda: not a .conda or .tar.bz2 file",
        ),
        (
            "version: 1\npackage:\n- name: a\n  manager: conda\n",
            "lock:3: package[0]: missing required key 'url'",
        ),
        (
            "version: 1\npackage:\n- manager: conda\n  url: https://x.org/c/noarch/a-1-0.conda\n"
            "  hash: {md5: 12}\n",
            "lock:5: package[0].hash.md5: expected a md5 checksum (32 hex digits)",
        ),
        ("https://x.org/c/linux-64/a-1-0.conda\n@EXPLICIT\n", "lock:1: a package line before"),
        ("@EXPLICIT\nhttps://x.org/c/linux-64/a-1-0.conda#xyz\n", "lock:2: expected a md5"),
        ("@EXPLICIT\nnot-a-url\n", "lock:2: not a package URL"),
        ("@EXPLICIT\nhttps://[x.org/c/linux-64/a-1-0.conda\n", "lock:2: not a package URL"),
        (
            "packages:\n- conda: https://x.org]/c/linux-64/a-1-0.conda\n",
            "lock:2: packages[0].conda: not a package URL",
        ),
        (b"\xff\xfe", "lock: not UTF-8 text"),
    ],
)
def test_bad_lockfiles_name_file_line_and_key(tmp_path, content, expected):
    with pytest.raises(ConfigError) as caught:
        config_with(tmp_path, {"lock": content}, "[lock]")
    message = str(caught.value)
    assert message.startswith(PREFIX), message
    assert f"{tmp_path}/{expected}" in message, message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "packages:\n- conda: https://x.org/_L_.conda\n",
            "lock:2: packages[0].conda: not a package",
        ),
        ("packages:\n- conda: https://x.org/c/noarch/_L_\n", "lock:2: packages[0].conda: not a "),
        ("@EXPLICIT\nhttps://x.org/c/linux-64/a-1-0.conda#_L_\n", "lock:2: expected a md5"),
        ("@EXPLICIT\nhttps://x.org/_L_\n", "lock:2: not a package URL"),
    ],
)
def test_a_long_value_of_a_lockfile_is_quoted_clipped(tmp_path, content, expected):
    """100,000 characters of a lockfile's line are quoted by their start and their length."""
    with pytest.raises(ConfigError) as caught:
        config_with(tmp_path, {"lock": content.replace("_L_", "9" * 100_000)}, "[lock]")
    message = str(caught.value)
    assert f"{tmp_path}/{expected}" in message, message[:500]
    assert len(message.replace(str(tmp_path), "")) < 400, message[:500]
    assert "... (100,0" in message


def test_a_level_allowing_names_and_lockfiles_may_see_its_names_excluded(tmp_path):
    # The level's allowlist is the union of both: the lockfile's pins can still be mirrored.
    (tmp_path / "env.txt").write_text(EXPLICIT)
    text = (
        "output: site\nfilters: {names: {exclude: [openssl]}}\nchannels:\n  cloud/forge:\n"
        "    url: https://conda.example.org/forge\n    subdirs: [linux-64]\n    filters:\n"
        "      names: {include: [openssl]}\n      lockfiles: [env.txt]\n"
    )
    config = parse_config(text, filename="channels.yaml", base_dir=tmp_path)
    assert config.channels[0].mirrors[0].filters.include_names == ("openssl",)
    without = text.replace("      lockfiles: [env.txt]\n", "")
    with pytest.raises(ConfigError, match="every name in an allowlist is excluded"):
        parse_config(without, filename="channels.yaml", base_dir=tmp_path)


def test_huge_missing_and_empty_lists(tmp_path, monkeypatch):
    monkeypatch.setattr(lockfile_read, "MAX_FILE_BYTES", 100)
    with pytest.raises(ConfigError) as caught:
        config_with(tmp_path, {"lock": "@EXPLICIT\n" + "#" * 200}, "[lock, nowhere.lock]")
    message = str(caught.value)
    assert "lockfiles[0]: bad lockfile: " in message and "lock: larger than" in message
    assert "lockfiles[1]: bad lockfile: " in message and "nowhere.lock: cannot read" in message
    with pytest.raises(ConfigError, match=r"lockfiles: expected at least one lockfile"):
        config_with(tmp_path, {}, "[]")


TOKEN = "tk-0123456789abcdefghijklmnopqrstuv"


@pytest.mark.parametrize(
    ("content", "shown"),
    [
        (f"@EXPLICIT\nhttps://u:{TOKEN}@x.org/c/linux-64/a-1-0.whl\n", "https://***@x.org/c/"),
        (f"@EXPLICIT\nhttps://x.org/t/{TOKEN}/c/a-1-0.whl\n", "https://x.org/t/***/c/a-1-0.whl"),
        (f"@EXPLICIT\nhttps://x.org/a-1-0.conda?token={TOKEN}\n", "https://x.org/a-1-0.conda?to"),
        (f"packages:\n- conda: https://{TOKEN}@x.org/c/noarch/a\n", "https://***@x.org/c/noarch/"),
        (
            f"version: 1\npackage:\n- url: https://x.org/t/{TOKEN}/x/a.whl\n",
            "https://x.org/t/***/x/a.whl",
        ),
    ],
)
def test_a_refused_lockfile_url_never_shows_its_credential(
    tmp_path: Path, content: str, shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lockfile written against a private channel holds its token in every URL: the error
    that refuses one names the URL with the token hidden, and hides it before the URL is cut
    short, so not even the token's start reaches the terminal."""
    (tmp_path / "lock").write_text(content)
    config = tmp_path / "channels.yaml"
    config.write_text(
        f"output: {tmp_path / 'site'}\nchannels:\n  cloud/forge:\n"
        "    url: https://conda.example.org/forge\n    subdirs: [linux-64]\n"
        f"    filters:\n      lockfiles: [{tmp_path / 'lock'}]\n"
    )
    assert main(["mirror", "-c", str(config), "--no-progress"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "bad lockfile" in err, err
    assert shown in err, err
    assert TOKEN[:6] not in err, err
