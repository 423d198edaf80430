"""Advisories of other ecosystems (PyPI...) applied to conda packages through identity
mappings (conda name -> package URLs) and records' own ``purls``; every way a mapping file can
be bad."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sitegen.conda.records import Record
from sitegen.conda.version import RecordMatcher
from sitegen.config import ConfigError, FilterSpec, parse_config
from sitegen.filters.advisories import policy_of
from sitegen.filters.advisory_notes import package_advisories
from sitegen.filters.apply import apply_filters
from sitegen.filters.purls import PurlError, ecosystem_key, package_key, parse_purl
from testkit.records import rec

pytestmark = pytest.mark.unit


def pypi(name: str, fixed: str, *, introduced: str = "0", purl: bool = False) -> dict:
    package = {"purl": f"pkg:pypi/{name}"} if purl else {"ecosystem": "PyPI", "name": name}
    events = [{"introduced": introduced}, {"fixed": fixed}]
    return {"package": package, "ranges": [{"type": "ECOSYSTEM", "events": events}]}


def write(tmp_path: Path, name: str, document: object) -> str:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / name).write_text(json.dumps(document))
    return name


def spec(
    tmp_path: Path, advisories: list[dict], mapping: object | None, more: str = ""
) -> FilterSpec:
    files = write(tmp_path, "osv.json", advisories)
    setting = f"{{files: [{files}]{more}"
    if mapping is not None:
        setting += f", identities: [{write(tmp_path, 'purls.json', mapping)}]"
    text = (
        f"output: site\nfilters:\n  advisories: {setting}}}\nchannels:\n  cloud/forge:\n"
        "    url: https://conda.example.org/forge\n    subdirs: [linux-64]\n"
    )
    return parse_config(text, base_dir=tmp_path).filters


def excluded(filters: FilterSpec, records: list[Record]) -> dict[str, str]:
    levels = (filters, FilterSpec(), FilterSpec())
    return apply_filters({r.fn: r for r in records}, "linux-64", levels, RecordMatcher()).excluded


# --------------------------------------------------------------------------- keys


def test_package_keys_normalise_names_as_each_ecosystem_compares_them():
    # PEP 503: case-insensitive, runs of -, _ and . alike.
    assert package_key("pypi", "Zope.Interface") == "pypi/zope-interface"
    assert parse_purl("pkg:pypi/zope__interface@5.0").key == "pypi/zope-interface"
    assert ecosystem_key("PyPI", "ZOPE-interface") == "pypi/zope-interface"
    assert parse_purl("pkg:pypi/zope__interface@5.0").version == "5.0"
    # Conda keys are bare names; other ecosystems keep their namespaces.
    assert parse_purl("pkg:conda/conda-forge/ZLib?subdir=linux-64").key == "zlib"
    assert ecosystem_key("npm", "@Babel/Core") == parse_purl("pkg:npm/%40babel/core").key
    assert ecosystem_key("Maven", "org.yaml:snakeyaml") == "maven/org.yaml/snakeyaml"
    assert ecosystem_key("Debian:12", "openssl") is None
    # Names of case-sensitive registries stay as written.
    assert ecosystem_key("CRAN", "Matrix") == "cran/Matrix"


def test_a_namespace_may_hold_an_unencoded_at_sign():
    # The spec splits the version off at the last "@"; npm scopes are often written plainly.
    scoped = parse_purl("pkg:npm/@babel/core@7.23.2")
    assert (scoped.key, scoped.version) == ("npm/@babel/core", "7.23.2")
    assert parse_purl("pkg:npm/@babel/core").key == ecosystem_key("npm", "@babel/core")
    assert parse_purl("pkg:npm/%40babel/core@7.23.2") == scoped
    assert parse_purl("pkg:pypi/requests@2.31.0?x=1#sub").version == "2.31.0"


def test_the_scheme_of_a_purl_is_case_insensitive(tmp_path):
    assert parse_purl("PKG:pypi/requests@2.31.0") == parse_purl("pkg:pypi/requests@2.31.0")
    assert parse_purl("Pkg:PyPI/Requests").key == "pypi/requests"
    with pytest.raises(PurlError, match="not a package URL"):
        parse_purl("pkgx:pypi/requests")
    # In a mapping, an advisory and a record's own purls alike.
    advisories = [{"id": "GHSA-requests", "affected": [pypi("requests", "2.31.0", purl=True)]}]
    advisories[0]["affected"][0]["package"]["purl"] = "PKG:pypi/requests"
    filters = spec(tmp_path, advisories, {"requests": ["PKG:pypi/requests"]})
    records = [
        rec("requests", "2.30.0"),
        rec("requests-bundle", "1.0", purls=["PKG:pypi/requests@2.30.0"]),
    ]
    assert set(excluded(filters, records)) == {r.fn for r in records}


def test_a_records_purl_with_an_npm_scope_is_matched(tmp_path):
    npm = {"package": {"ecosystem": "npm", "name": "@babel/core"}, "versions": ["7.0.0"]}
    advisories = [{"id": "GHSA-babel", "affected": [npm]}]
    records = [
        rec("babel-core", "7.0.0", purls=["pkg:npm/@babel/core@7.0.0"]),
        rec("babel-core", "7.1.0", purls=["pkg:npm/@babel/core@7.1.0"]),
    ]
    assert excluded(spec(tmp_path, advisories, None), records) == {
        "babel-core-7.0.0-0.conda": "advisory GHSA-babel"
    }


# --------------------------------------------------------------------------- matching


def test_a_pypi_advisory_blocks_the_mapped_conda_builds_and_versions(tmp_path):
    advisories = [
        {"id": "GHSA-requests", "affected": [pypi("Requests", "2.31.0", introduced="2.3.0")]},
        {"id": "PYSEC-torch", "affected": [pypi("torch", "2.2.0", purl=True)]},
    ]
    mapping = {
        "requests": ["pkg:pypi/requests"],
        "pytorch": ["pkg:pypi/torch"],
        "libtorch": ["pkg:github/pytorch/pytorch"],  # not the PyPI package: not affected
    }
    records = [
        rec("requests", "2.30.0", "pyhd8ed1ab_0"),
        rec("requests", "2.30.0", "pyhd8ed1ab_1"),
        rec("requests", "2.31.0", "pyhd8ed1ab_0"),
        rec("requests", "2.2.1", "py27_0"),  # before the introduced version
        rec("pytorch", "2.1.2", "cuda118_0"),
        rec("pytorch", "2.2.0", "cuda118_0"),
        rec("libtorch", "2.1.2", "0"),
        rec("torch", "2.1.2", "0"),  # a conda package named like the PyPI one, not mapped
    ]
    assert excluded(spec(tmp_path, advisories, mapping), records) == {
        "requests-2.30.0-pyhd8ed1ab_0.conda": "advisory GHSA-requests",
        "requests-2.30.0-pyhd8ed1ab_1.conda": "advisory GHSA-requests",
        "pytorch-2.1.2-cuda118_0.conda": "advisory PYSEC-torch",
    }
    # Without the mapping the PyPI entries name no conda package.
    assert excluded(spec(tmp_path / "none", advisories, None), records) == {}


def test_pep_503_names_match_across_advisory_and_mapping(tmp_path):
    advisories = [{"id": "PYSEC-zope", "affected": [pypi("Zope.Interface", "5.0")]}]
    mapping = {"zope.interface": ["pkg:pypi/zope_interface"]}
    records = [rec("zope.interface", "4.7.2"), rec("zope.interface", "5.0")]
    assert excluded(spec(tmp_path, advisories, mapping), records) == {
        "zope.interface-4.7.2-0.conda": "advisory PYSEC-zope"
    }


def test_an_ecosystem_written_in_another_case_names_its_packages(tmp_path):
    # OSV spells them "PyPI" and "npm"; an advisory written by hand may not, and an entry
    # passed over as of an unknown ecosystem would block nothing.
    lower = pypi("requests", "2.31.0")
    lower["package"]["ecosystem"] = "pypi"
    upper = {"package": {"ecosystem": "NPM", "name": "left-pad"}, "versions": ["1.0.0"]}
    advisories = [
        {"id": "GHSA-lower", "affected": [lower]},
        {"id": "GHSA-upper", "affected": [upper]},
    ]
    mapping = {"requests": ["pkg:pypi/requests"], "left-pad": ["pkg:npm/left-pad"]}
    records = [rec("requests", "2.30.0"), rec("requests", "2.31.0"), rec("left-pad", "1.0.0")]
    assert excluded(spec(tmp_path, advisories, mapping), records) == {
        "requests-2.30.0-0.conda": "advisory GHSA-lower",
        "left-pad-1.0.0-0.conda": "advisory GHSA-upper",
    }


def test_purl_associator_records_count_primary_alternative_and_identity_purls(tmp_path):
    advisories = [
        {"id": "A-primary", "affected": [pypi("pillow", "10.0")]},
        {"id": "B-alternative", "affected": [pypi("py-yaml", "6.0")]},
        {"id": "C-detailed", "affected": [pypi("libarchive-c", "5.0")]},
        {"id": "D-identity", "affected": [pypi("markupsafe", "2.0")]},
        {"id": "E-unmapped", "affected": [pypi("not-this", "9.0")]},
    ]
    records_list = [
        {"name": "pillow", "purl": "pkg:pypi/pillow", "alternative_purls": [], "cpes": []},
        {
            "name": "pyyaml",
            "version": "6.0.1",
            "purl": "pkg:github/yaml/pyyaml",
            "type": "github",
            "namespace": "yaml",
            "pkg_name": "pyyaml",
            "alternative_purls": ["pkg:pypi/PyYAML", "pkg:pypi/py_yaml"],
            "cpes": ["cpe:2.3:a:pyyaml:pyyaml"],
            "status": "verified",
        },
        {
            "name": "python-libarchive-c",
            "purl": None,
            "alternative_purls": [
                {
                    "purl": "pkg:pypi/libarchive-c",
                    "type": "pypi",
                    "namespace": None,
                    "pkg_name": "libarchive-c",
                    "confidence": 0.9,
                    "source": "recipe-source",
                }
            ],
        },
        {
            "name": "markupsafe",
            "identities": [
                {"kind": "cpe", "role": "associated", "value": "cpe:2.3:a:palletsprojects:x"},
                {"kind": "purl", "role": "primary", "value": "pkg:pypi/markupsafe"},
            ],
        },
        # An intentional no-PURL decision: a stale primary is not an identity.
        {"name": "mutex", "purl": "pkg:pypi/not-this", "unmapped": True, "identities": []},
    ]
    records = [
        rec("pillow", "9.5.0"),
        rec("pyyaml", "5.4"),
        rec("python-libarchive-c", "4.0"),
        rec("markupsafe", "1.1.1"),
        rec("mutex", "1.0"),
    ]
    blocked = {
        "pillow-9.5.0-0.conda": "advisory A-primary",
        "pyyaml-5.4-0.conda": "advisory B-alternative",
        "python-libarchive-c-4.0-0.conda": "advisory C-detailed",
        "markupsafe-1.1.1-0.conda": "advisory D-identity",
    }
    assert excluded(spec(tmp_path, advisories, records_list), records) == blocked
    # The published bundle: the same records by name.
    bundle = {
        "schema_version": 4,
        "channel": "conda-forge",
        "packages": {r["name"]: {k: v for k, v in r.items() if k != "name"} for r in records_list},
    }
    filters = spec(tmp_path / "bundle", advisories, bundle)
    assert excluded(filters, records) == blocked
    policy = policy_of(filters)
    assert policy is not None and policy.keys_for("pyyaml") == (
        "pyyaml",
        "github/yaml/pyyaml",
        "pypi/py-yaml",
        "pypi/pyyaml",
    )


def test_records_own_purls_name_their_upstream_package_and_version(tmp_path):
    advisories = [{"id": "PYSEC-foo", "affected": [pypi("foo", "1.0.1")]}]
    records = [
        # No mapping: the record says which PyPI package it is.
        rec("foo-python", "1.0", purls=["pkg:pypi/foo"]),
        rec("foo-python", "1.0.1", purls=["pkg:pypi/foo"]),
        # A conda version apart from the upstream one: the purl's version is compared.
        rec("foo-bundle", "2024.1", purls=["pkg:pypi/Foo@1.0.0", "not a purl"]),
        rec("foo-bundle", "2024.2", purls=["pkg:pypi/foo@1.0.1"]),
        rec("bar", "1.0", purls="pkg:pypi/foo"),  # not a list: passed over
    ]
    assert excluded(spec(tmp_path, advisories, None), records) == {
        "foo-python-1.0-0.conda": "advisory PYSEC-foo",
        "foo-bundle-2024.1-0.conda": "advisory PYSEC-foo",
    }


def test_a_version_in_a_records_purl_that_conda_cannot_read_is_the_records_own(tmp_path):
    # Upstream metadata: such a version must not end the selection (the whole run) with an
    # error; the purl still names the package, compared by the record's version.
    advisories = [{"id": "PYSEC-foo", "affected": [pypi("foo", "1.0.1")]}]
    records = [
        rec("foo-python", "1.0", purls=["pkg:pypi/foo@1..0"]),
        rec("foo-python", "1.0.1", purls=["pkg:pypi/foo@not a version!"]),
    ]
    assert excluded(spec(tmp_path, advisories, None), records) == {
        "foo-python-1.0-0.conda": "advisory PYSEC-foo",
    }


def test_entries_of_unmapped_ecosystems_stay_ignored_and_unusable_ones_are_skipped(
    tmp_path, caplog
):
    debian = {
        "package": {"ecosystem": "Debian:12", "name": "openssl"},
        "versions": ["1:3.0.11-1~deb12u2"],  # no conda version: never read as one
    }
    not_conda = pypi("requests", "2.31.0")
    not_conda["ranges"][0]["events"][1]["fixed"] = "2.31 .0 x"
    advisories = [
        {"id": "DSA-1", "affected": [debian]},
        {"id": "GHSA-bad", "affected": [not_conda, pypi("urllib3", "2.0.7")]},
        {"id": "GHSA-other", "affected": [pypi("pandas", "3.0")]},  # pandas is not mapped
    ]
    mapping = {"requests": ["pkg:pypi/requests"], "urllib3": ["pkg:pypi/urllib3"]}
    records = [
        rec("openssl", "3.0.11"),
        rec("requests", "2.30.0"),
        rec("urllib3", "2.0.5"),
        rec("pandas", "2.2.0"),
    ]
    with caplog.at_level(logging.WARNING, logger="sitegen"):
        filters = spec(tmp_path, advisories, mapping)
    # The unusable PyPI entry is left out; the rest of its advisory still counts.
    assert excluded(filters, records) == {"urllib3-2.0.5-0.conda": "advisory GHSA-bad"}
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "advisories.files[0]: 1 affected entries of other ecosystems skipped" in warning
    assert (
        "in GHSA-bad at [1].affected[0].ranges[0].events[1].fixed: invalid conda version" in warning
    )


@pytest.mark.parametrize(
    ("package", "where"),
    [
        ({"purl": "pkg:pypi/"}, "package.purl"),
        ({"ecosystem": "PyPI"}, "package: missing required key 'name'"),
    ],
    ids=["purl-without-name", "no-name"],
)
def test_an_entry_of_another_ecosystem_naming_no_package_it_can_is_skipped(
    tmp_path, caplog, package, where
):
    """An entry whose package identity cannot be read is skipped like an entry's other faults
    when it is of another ecosystem (the rest of the file still blocks), and refuses the file
    when it may name a conda package."""
    unusable = {"package": package, "versions": ["1.0"]}
    advisories = [{"id": "GHSA-odd", "affected": [unusable, pypi("urllib3", "2.0.7")]}]
    records = [rec("urllib3", "2.0.5")]
    with caplog.at_level(logging.WARNING, logger="sitegen"):
        filters = spec(tmp_path, advisories, {"urllib3": ["pkg:pypi/urllib3"]})
    assert excluded(filters, records) == {"urllib3-2.0.5-0.conda": "advisory GHSA-odd"}
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "1 affected entries of other ecosystems skipped" in warning and where in warning
    conda = {"package": {"purl": "pkg:conda/"}, "versions": ["1.0"]}
    with pytest.raises(ConfigError, match=r"package\.purl"):
        spec(tmp_path, [{"id": "GHSA-conda", "affected": [conda]}], None)


def test_package_pages_list_advisories_found_through_identities(tmp_path):
    advisories = [{"id": "GHSA-requests", "affected": [pypi("requests", "2.31.0")]}]
    filters = spec(tmp_path, advisories, {"requests": ["pkg:pypi/requests"]})
    notes = package_advisories([filters], "Requests", ["2.30.0", "2.31.0"])
    assert list(notes) == ["2.30.0"]
    assert [(n.id, n.blocked) for n in notes["2.30.0"].notes] == [("GHSA-requests", True)]
    # A level that allows the advisory, and one that would block it but has no mapping for
    # requests: the advisory is listed and blocks nothing.
    allowed = spec(
        tmp_path / "a", advisories, {"requests": ["pkg:pypi/requests"]}, ", allow: [GHSA-requests]"
    )
    unmapped = spec(tmp_path / "b", advisories, {"urllib3": ["pkg:pypi/urllib3"]})
    (note,) = package_advisories([allowed, unmapped], "requests", ["2.30.0"])["2.30.0"].notes
    assert (note.id, note.blocked) == ("GHSA-requests", False)


def test_an_edited_mapping_changes_the_configuration(tmp_path):
    advisories = [{"id": "GHSA-requests", "affected": [pypi("requests", "2.31.0")]}]
    first = spec(tmp_path, advisories, {"requests": ["pkg:pypi/requests"]})
    second = spec(tmp_path, advisories, {"requests": ["pkg:pypi/requests", "pkg:pypi/x"]})
    assert first != second  # so the inputs digest of a run differs too
