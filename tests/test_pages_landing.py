"""Page models of the landing page: usage snippets, pixi mirrors, curated channels and the
state of each mirror, from a parsed config (no disk, no network)."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from sitegen.config import ConfigError, parse_config
from sitegen.layout import run_page_path
from sitegen.sync.report import COMPLETED, RUNNING, UnsatisfiedDependency
from sitegen.web.facts import PackageFacts, package_row
from sitegen.web.landing import BASE_PLACEHOLDER, landing_model
from sitegen.web.search import search_index
from sitegen.web.snippets import usage_snippets
from testkit.reports import run

pytestmark = pytest.mark.unit


def config(base_url: str | None = None):
    text = """
output: /tmp/site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  cloud/bioconda:
    url: https://conda.anaconda.org/bioconda
    subdirs: [linux-64]
  pkgs/main:
    url: https://repo.anaconda.com/pkgs/main
    subdirs: [linux-64]
  internal/private:
    url: https://conda.anaconda.org/t/${PRIVATE_TOKEN}/my-org
    subdirs: [linux-64]
"""
    if base_url:
        text = f"base_url: {base_url}\n" + text
    return parse_config(text)


def test_usage_snippets_use_the_base_url() -> None:
    snippets = usage_snippets(config(), "https://mirror.example")
    assert "channel_alias: https://mirror.example/cloud" in snippets["condarc_alias"]
    assert "  - conda-forge\n  - bioconda" in snippets["condarc_alias"]
    assert "  conda-forge: https://mirror.example/cloud" in snippets["condarc_custom"]
    assert "  private: https://mirror.example/internal" in snippets["condarc_custom"]
    assert "default_channels:\n  - https://mirror.example/pkgs/main" in snippets["condarc_custom"]
    assert (
        '"https://conda.anaconda.org/conda-forge" = ["https://mirror.example/cloud/conda-forge"]'
        in snippets["pixi"]
    )
    assert "my-org" not in snippets["pixi"]  # a token-bearing upstream is no public name
    for key in ("condarc_alias", "condarc_custom"):
        assert isinstance(yaml.safe_load(snippets[key]), dict), key
    assert snippets["commands"][0]["conda"] == (
        "conda install --override-channels -c https://mirror.example/cloud/conda-forge <package>"
    )


def test_landing_model_without_base_url_uses_a_placeholder() -> None:
    model = landing_model(config(), {}, [])
    assert model["base_placeholder"] == BASE_PLACEHOLDER
    assert BASE_PLACEHOLDER in model["snippets"]["condarc_alias"]
    mirrored = yaml.safe_load(model["snippets"]["mamba"])["mirrored_channels"]
    assert mirrored["conda-forge"] == [f"{BASE_PLACEHOLDER}/cloud/conda-forge"]
    private = model["channels"][3]["mirrors"][0]
    assert private["source"] == "https://conda.anaconda.org/t/***/my-org"
    assert private["last_status"] is None and private["last_status_words"] == "never run"
    assert model["sources"] == "upstream"  # the opening line says "mirrored from upstream"
    model = landing_model(config("https://m.example"), {}, [])
    assert model["base_placeholder"] is None


def test_pixi_mirrors_group_channels_of_one_upstream() -> None:
    text = """
output: /tmp/site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  internal/approved:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
"""
    snippets = usage_snippets(parse_config(text), "https://m.example")
    assert snippets["pixi"].splitlines()[2:] == [
        '"https://conda.anaconda.org/conda-forge" = ["https://m.example/cloud/conda-forge",'
        ' "https://m.example/internal/approved"]'
    ]
    tomllib.loads(snippets["pixi"])  # valid TOML: no key twice


def test_pixi_mirrors_only_unfiltered_channels_or_mirror_of() -> None:
    text = """
output: /tmp/site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  internal/approved:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
    filters:
      names: {include: [numpy]}
  internal/two:
    mirrors:
      - url: https://conda.anaconda.org/conda-forge
        subdirs: [linux-64]
      - url: https://example.org/extra
        name: extra
        subdirs: [linux-64]
  internal/declared:
    mirror_of: https://conda.anaconda.org/bioconda
    filters:
      names: {exclude: [huge]}
    mirrors:
      - url: https://conda.anaconda.org/bioconda
        subdirs: [linux-64]
"""
    snippets = usage_snippets(parse_config(text), "https://m.example")
    mirrors = tomllib.loads(snippets["pixi"])["mirrors"]
    assert mirrors == {
        "https://conda.anaconda.org/conda-forge": ["https://m.example/cloud/conda-forge"],
        "https://conda.anaconda.org/bioconda": ["https://m.example/internal/declared"],
    }
    channels = tomllib.loads(snippets["pixi_channels"])["project"]["channels"]
    assert channels == ["https://m.example/internal/approved", "https://m.example/internal/two"]


def test_mamba_mirrored_channels_name_each_upstream_as_mamba_does() -> None:
    """mamba 2.x matches a channel as written against the keys of ``mirrored_channels``: an
    upstream under conda.anaconda.org by its name, any other by its URL (a YAML key quoted).
    Only the channels that stand in for their upstream are there, as in pixi's [mirrors]."""
    snippets = usage_snippets(config(), "https://mirror.example")
    assert (
        snippets["mamba"].splitlines()[0] == "# mamba, micromamba 2.x: ~/.mambarc (or ~/.condarc)"
    )
    assert yaml.safe_load(snippets["mamba"]) == {
        "mirrored_channels": {
            "conda-forge": ["https://mirror.example/cloud/conda-forge"],
            "bioconda": ["https://mirror.example/cloud/bioconda"],
            "https://repo.anaconda.com/pkgs/main": ["https://mirror.example/pkgs/main"],
        }
    }
    assert "my-org" not in snippets["mamba"]  # a token-bearing upstream is no public name
    text = """
output: /tmp/site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  internal/approved:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  internal/curated:
    url: https://conda.anaconda.org/bioconda
    subdirs: [linux-64]
    filters:
      names: {include: [samtools]}
  internal/dev:
    mirror_of: https://conda.anaconda.org/conda-forge/label/dev/
    mirrors:
      - url: https://conda.anaconda.org/conda-forge/label/dev
        subdirs: [linux-64]
"""
    mirrored = yaml.safe_load(usage_snippets(parse_config(text), "https://m.example")["mamba"])
    assert mirrored["mirrored_channels"] == {
        "conda-forge": [
            "https://m.example/cloud/conda-forge",
            "https://m.example/internal/approved",
        ],
        "conda-forge/label/dev": ["https://m.example/internal/dev"],
    }
    # A curated channel alone: no mapping to copy at all.
    curated_only = """
output: /tmp/site
channels:
  internal/curated:
    url: https://conda.anaconda.org/bioconda
    subdirs: [linux-64]
    filters:
      names: {include: [samtools]}
"""
    assert usage_snippets(parse_config(curated_only), "https://m.example")["mamba"] == ""


def test_pixi_mirrors_key_is_the_upstream_without_its_login() -> None:
    """pixi matches a channel's URL, credentials apart, against its ``[mirrors]`` keys: a login
    written into the source URL is left out of the key, never shown hidden as ``***@``."""
    text = """
output: /tmp/site
channels:
  cloud/private:
    url: https://reader:s3cretCredential42@conda.example.org/private
    subdirs: [linux-64]
"""
    snippets = usage_snippets(parse_config(text), "https://m.example")
    mirrors = tomllib.loads(snippets["pixi"])["mirrors"]
    assert mirrors == {"https://conda.example.org/private": ["https://m.example/cloud/private"]}


def test_usage_snippets_leave_private_channels_out() -> None:
    """A private channel is set up with its token snippet: the public snippets name neither
    its upstream (it mirrors one unfiltered) nor its token-less URL."""
    text = """
output: /tmp/site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  internal/licensed:
    url: https://conda.example.com/licensed
    subdirs: [linux-64]
    access: private
"""
    snippets = usage_snippets(parse_config(text), "https://m.example")
    assert snippets is not None
    assert tomllib.loads(snippets["pixi"])["mirrors"] == {
        "https://conda.anaconda.org/conda-forge": ["https://m.example/cloud/conda-forge"]
    }
    assert [c["channel"] for c in snippets["commands"]] == ["cloud/conda-forge"]
    assert yaml.safe_load(snippets["mamba"])["mirrored_channels"] == {
        "conda-forge": ["https://m.example/cloud/conda-forge"]
    }
    assert not any("licensed" in str(value) for value in snippets.values())
    only_private = text.replace(
        "  cloud/conda-forge:\n", "  cloud/conda-forge:\n    access: private\n"
    )
    assert usage_snippets(parse_config(only_private), "https://m.example") is None


def test_site_filters_make_every_channel_curated() -> None:
    text = """
output: /tmp/site
filters:
  licenses: {exclude: [GPL-3.0]}
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
"""
    snippets = usage_snippets(parse_config(text), "https://m.example")
    assert tomllib.loads(snippets["pixi"])["mirrors"] == {}
    assert "https://m.example/cloud/conda-forge" in snippets["pixi_channels"]


def test_custom_channels_do_not_collide_on_the_last_segment() -> None:
    text = """
output: /tmp/site
channels:
  cloud/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  internal/conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
  conda-forge:
    url: https://conda.anaconda.org/conda-forge
    subdirs: [linux-64]
"""
    snippets = usage_snippets(parse_config(text), "https://m.example")
    custom = yaml.safe_load(snippets["condarc_custom"])["custom_channels"]
    # conda: a name resolves to <URL of its longest matching key>/<name>.
    resolved = {name: f"{url}/{name}" for name, url in custom.items()}
    assert sorted(resolved.values()) == [
        "https://m.example/cloud/conda-forge",
        "https://m.example/conda-forge",
        "https://m.example/internal/conda-forge",
    ]


def test_search_index_rows_carry_the_license() -> None:
    facts = PackageFacts("1.0", ["linux-64", "noarch"], "S", [])
    rows = [package_row("a", facts, {"license": "MIT"}), package_row("b", facts, None)]
    assert rows[0]["subdirs"] == ["linux-64", "noarch"]
    assert search_index("c/x", rows)["packages"] == [["a", "1.0", "S", "MIT"], ["b", "1.0", "S"]]


SHORT_FORM = """
output: /tmp/site
channels:
  c/x:
    mirror_of: ftp://example.org/c
    url: https://example.org/c
    subdirs: [linux-64]
"""


ON_A_MIRROR = """
output: /tmp/site
channels:
  c/x:
    mirrors:
      - url: https://example.org/c
        subdirs: [linux-64]
        mirror_of: https://example.org/c
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SHORT_FORM, "channels.c/x.mirror_of: mirror_of must be an http(s) URL"),
        (ON_A_MIRROR, "mirror_of"),  # a channel's key, not a mirror's
    ],
)
def test_mirror_of_is_a_channel_url(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(text)


def test_landing_links_the_dependency_report_of_the_run_it_counts() -> None:
    """The landing page counts a mirror's unsatisfied dependencies from its newest run that
    read upstream; their "report" link leads to that run's page, not to a later run still
    going (whose page has no report yet)."""
    reports = [run("r2", 200, RUNNING), run("r1", 100, COMPLETED)]
    for report in reports:
        report.mirrors[0].name = "cloud-conda-forge"
    reports[0].mirrors[0].subdirs = {}
    reports[1].mirrors[0].unsatisfied = [UnsatisfiedDependency("linux-64", "libzz", "a")]
    (mirror,) = landing_model(config(), {}, reports)["channels"][0]["mirrors"]
    assert mirror["last_run_page"] == run_page_path("r2")
    assert mirror["filtered"]["unsatisfied"] == 1
    assert mirror["filtered_page"] == run_page_path("r1")
