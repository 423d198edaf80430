"""channels.yaml's ``installers:``: installer folders parse into their settings, and each kind
of mistake is an error naming the file, the line and the key path (exit status 2)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sitegen.cli import main
from sitegen.config import ConfigError, InstallerConfig, make_scrub, parse_config
from sitegen.sync.report import COMPLETED, FAILED, InstallerReport, RunReport
from sitegen.sync.run import MirrorOptions, select_installers, select_mirrors

pytestmark = pytest.mark.unit

HEAD = """\
output: site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
"""


def config_text(installers: str) -> str:
    return HEAD + textwrap.dedent(installers).lstrip("\n")


def test_installer_folders_parse_into_their_settings(tmp_path: Path) -> None:
    config = parse_config(
        config_text(
            """
            installers:
              miniconda:
                url: https://repo.anaconda.com/miniconda/
                include: ["Miniconda3-latest-*", "Miniconda3-py312_*-Linux-x86_64.sh"]
                exclude: ["*.pkg"]
                newest: 2
                schedule: "0 3 * * *"
              /installers/anaconda/:
                url: https://repo.anaconda.com/archive
            """
        ),
        base_dir=tmp_path,
    )
    first, second = config.installers
    assert first == InstallerConfig(
        path="miniconda",
        url="https://repo.anaconda.com/miniconda",
        include=("Miniconda3-latest-*", "Miniconda3-py312_*-Linux-x86_64.sh"),
        exclude=("*.pkg",),
        newest=2,
        schedule="0 3 * * *",
        line=8,
    )
    assert (second.path, second.include, second.newest) == ("installers/anaconda", (), None)
    assert parse_config(HEAD).installers == ()


def test_a_token_in_an_installer_url_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTALLER_TOKEN", "s3cr3t-value")
    config = parse_config(
        config_text(
            """
            installers:
              private:
                url: https://repo.example.org/t/${INSTALLER_TOKEN}/installers
            """
        ),
        environ={"INSTALLER_TOKEN": "s3cr3t-value"},
    )
    (installer,) = config.installers
    assert installer.display_url() == "https://repo.example.org/t/***/installers"
    assert "INSTALLER_TOKEN" in config.secret_env
    assert "s3cr3t-value" not in make_scrub(config)("failed: s3cr3t-value")


# (case, the installers section, a text on the line the error names, key path, words)
ERRORS = [
    (
        "unknown key",
        """
        installers:
          miniconda:
            url: https://repo.anaconda.com/miniconda/
            incldue: ["*.sh"]
        """,
        "incldue",
        "installers.miniconda.incldue",
        "did you mean 'include'?",
    ),
    (
        "no url",
        """
        installers:
          miniconda:
            include: ["*.sh"]
        """,
        'include: ["*.sh"]',
        "installers.miniconda",
        "missing required key 'url'",
    ),
    (
        "not http",
        """
        installers:
          miniconda:
            url: file:///srv/miniconda
        """,
        "file://",
        "installers.miniconda.url",
        "URL must start with https:// or http://",
    ),
    (
        "a glob with a slash",
        """
        installers:
          miniconda:
            url: https://repo.anaconda.com/miniconda/
            include: ["../*.sh"]
        """,
        "../*.sh",
        "installers.miniconda.include[0]",
        "a file name holds no '/'",
    ),
    (
        "an unbalanced glob",
        """
        installers:
          miniconda:
            url: https://repo.anaconda.com/miniconda/
            exclude: ["*[.sh"]
        """,
        "*[.sh",
        "installers.miniconda.exclude[0]",
        "unbalanced brackets",
    ),
    (
        "newest 0",
        """
        installers:
          miniconda:
            url: https://repo.anaconda.com/miniconda/
            newest: 0
        """,
        "newest",
        "installers.miniconda.newest",
        "must be at least 1",
    ),
    (
        "a bad schedule",
        """
        installers:
          miniconda:
            url: https://repo.anaconda.com/miniconda/
            schedule: "every day"
        """,
        "every day",
        "installers.miniconda.schedule",
        "invalid cron expression",
    ),
    (
        "a path of the site's own",
        """
        installers:
          assets/miniconda:
            url: https://repo.anaconda.com/miniconda/
        """,
        "url: https://repo.anaconda.com/miniconda/",
        "installers.assets/miniconda",
        "collides with the site's own 'assets'",
    ),
    (
        "the state directory",
        """
        installers:
          .sitegen:
            url: https://repo.anaconda.com/miniconda/
        """,
        "url: https://repo.anaconda.com/miniconda/",
        "installers..sitegen",
        "invalid installer folder",
    ),
    (
        "a dot-dot segment",
        """
        installers:
          miniconda/../x:
            url: https://repo.anaconda.com/miniconda/
        """,
        "url: https://repo.anaconda.com/miniconda/",
        "installers.miniconda/../x",
        "invalid installer folder",
    ),
    (
        "a path token segment",
        """
        installers:
          mirror/t/x:
            url: https://repo.anaconda.com/miniconda/
        """,
        "url: https://repo.anaconda.com/miniconda/",
        "installers.mirror/t/x",
        "conda's path token",
    ),
    (
        "a channel's path",
        """
        installers:
          cloud/conda-forge:
            url: https://repo.anaconda.com/miniconda/
        """,
        "url: https://repo.anaconda.com/miniconda/",
        "installers.cloud/conda-forge",
        "the folder is also channel 'cloud/conda-forge' (line 4)",
    ),
    (
        "above a channel",
        """
        installers:
          cloud:
            url: https://repo.anaconda.com/miniconda/
        """,
        "url: https://repo.anaconda.com/miniconda/",
        "installers.cloud",
        "the folder holds channel 'cloud/conda-forge'",
    ),
    (
        "inside a channel",
        """
        installers:
          cloud/conda-forge/installers:
            url: https://repo.anaconda.com/miniconda/
        """,
        "url: https://repo.anaconda.com/miniconda/",
        "installers.cloud/conda-forge/installers",
        "the folder lies inside channel 'cloud/conda-forge'",
    ),
    (
        "a mirror's name",
        """
        installers:
          cloud-conda-forge:
            url: https://repo.anaconda.com/miniconda/
        """,
        "url: https://repo.anaconda.com/miniconda/",
        "installers.cloud-conda-forge",
        "is the name of a mirror (line 4)",
    ),
    (
        "inside another installer folder",
        """
        installers:
          installers:
            url: https://repo.anaconda.com/miniconda/
          installers/archive:
            url: https://repo.anaconda.com/archive/
        """,
        "url: https://repo.anaconda.com/archive/",
        "installers.installers/archive",
        "the folder lies inside installer folder 'installers'",
    ),
    (
        "one folder written twice",
        """
        installers:
          miniconda:
            url: https://repo.anaconda.com/miniconda/
          /miniconda/:
            url: https://mirror.example.org/miniconda/
        """,
        "url: https://mirror.example.org/miniconda/",
        "installers.miniconda",
        "the folder is also installer folder 'miniconda'",
    ),
]


def _line(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize(
    ("section", "marker", "path", "words"), [pytest.param(*e[1:], id=e[0]) for e in ERRORS]
)
def test_each_mistake_names_file_line_and_key(
    section: str, marker: str, path: str, words: str
) -> None:
    text = config_text(section)
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert message.startswith(f"channels.yaml:{_line(text, marker)}: {path}: "), message
    assert words in message


def test_the_cli_exits_2_on_an_installer_mistake_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = config_text(
        """
        installers:
          history:
            url: https://repo.anaconda.com/miniconda/
        """
    ).replace("output: site", f"output: {tmp_path / 'out' / 'site'}")
    path = tmp_path / "channels.yaml"
    path.write_text(text)
    assert main(["mirror", "-c", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    line = _line(text, "url: https://repo.anaconda.com/miniconda/")
    assert f"channels.yaml:{line}: installers.history: " in err
    assert "collides with the site's own 'history'" in err
    assert not (tmp_path / "out").exists()


def test_due_and_only_select_installer_folders_by_their_schedules() -> None:
    config = parse_config(
        config_text(
            """
            installers:
              miniconda:
                url: https://repo.anaconda.com/miniconda/
              archive:
                url: https://repo.anaconda.com/archive/
                schedule: "@weekly"
            """
        )
    )
    now = 1_750_000_000.0
    ran = RunReport(id="r1", started=now - 7200, ended=now - 7000, status=COMPLETED)
    ran.installers = [
        InstallerReport("miniconda", "x", status=COMPLETED),
        InstallerReport("archive", "y", status=FAILED),
    ]
    both = {"miniconda", "archive"}
    assert select_installers(config, [], MirrorOptions(), now) == both
    assert select_installers(config, [], MirrorOptions(only=("archive",)), now) == {"archive"}
    assert select_mirrors(config, [], MirrorOptions(only=("archive",)), now) == set()
    assert select_installers(config, [ran], MirrorOptions(due=True), now) == {"archive"}
    assert select_installers(config, [ran], MirrorOptions(due=True), now + 86400) == both


def test_the_examples_of_the_readme_and_of_channels_yaml_parse() -> None:
    repo = Path(__file__).resolve().parent.parent
    readme = (repo / "README.md").read_text()
    start = readme.index("```yaml\ninstallers:\n") + len("```yaml\n")
    example = readme[start : readme.index("```", start)]
    (installer,) = parse_config(HEAD + example).installers
    assert (installer.path, installer.newest) == ("miniconda", 2)
    committed = (repo / "channels.yaml").read_text()
    block = committed[committed.index("# installers:") :].splitlines()
    uncommented = "\n".join(line.removeprefix("# ") for line in block)
    assert [i.path for i in parse_config(committed + uncommented).installers] == [
        "miniconda",
        "anaconda",
    ]
