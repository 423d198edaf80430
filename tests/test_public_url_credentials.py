"""``base_url`` and ``mirror_of`` are published as written in the pages' snippets: one holding
a credential is refused by ``sitegen mirror`` (exit 2, file, line and key named, the secret
not echoed) and nothing is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sitegen.exit_status import EXIT_CONFIG
from sitegen.tools.example_channel import write_channel
from testkit.config import line_of
from testkit.site import files_holding
from testkit.small_channel import CHANNEL, small_packages

pytestmark = pytest.mark.integration

SECRET = "s3cretCredential42"

# Where an operator could write a credential into a URL the pages show to clients.
FORMS = {
    "password": f"https://mirror:{SECRET}@conda.example.org",
    "user name alone": f"https://{SECRET}@conda.example.org",
    "path token": f"https://conda.example.org/t/{SECRET}/conda",
    "query token": f"https://conda.example.org/conda?token={SECRET}",
}


def _config(tmp_path: Path, key: str, url: str) -> tuple[Path, Path]:
    """channels.yaml mirroring a real file:// channel, with ``key`` set to ``url``; returns
    (site, config path)."""
    upstream = tmp_path / "upstream"
    write_channel(upstream, small_packages())
    site = tmp_path / "out" / "site"
    base_url = f"base_url: '{url}'\n" if key == "base_url" else ""
    mirror_of = f"    mirror_of: '{url}'\n" if key == "mirror_of" else ""
    config_path = tmp_path / "channels.yaml"
    config_path.write_text(
        f"output: {site}\n{base_url}channels:\n  {CHANNEL}:\n"
        f"    url: file://{upstream}\n    subdirs: [linux-64]\n{mirror_of}"
    )
    return site, config_path


@pytest.mark.parametrize("key", ["base_url", "mirror_of"])
@pytest.mark.parametrize("form", list(FORMS))
def test_a_credential_in_a_published_url_is_refused(tmp_path: Path, key: str, form: str) -> None:
    site, config_path = _config(tmp_path, key, FORMS[form])
    done = subprocess.run(
        [sys.executable, "-m", "sitegen", "mirror", "-c", str(config_path), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    published = files_holding(site, SECRET) if site.exists() else []
    assert done.returncode == EXIT_CONFIG, (done.returncode, published)
    path = key if key == "base_url" else f"channels.{CHANNEL}.{key}"
    line = line_of(config_path.read_text(), key)
    assert f"channels.yaml:{line}: {path}: " in done.stderr, done.stderr
    assert "credential" in done.stderr
    assert SECRET not in done.stderr + done.stdout
    assert not (tmp_path / "out").exists()
