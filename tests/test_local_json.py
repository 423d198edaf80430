"""Local sources: a package's metadata is read as JSON text the way its other readers read it.

Python's JSON reader takes more than they do: bytes in UTF-16 or UTF-32, or led by a byte order
mark, which it recognises before it decodes. rattler (its indexer, and its readers of a
package's info/ files) refuses them, so sitegen would publish a record no other tool makes of
the package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rattler import IndexJson

from sitegen.conda.index import REASON_BAD_INDEX, REASON_KEY_TWICE, index_package
from sitegen.tools.example_channel import PackageSpec
from testkit.local import (
    drop_all,
    index_of,
    run_and_refusals,
    write_conda,
    write_tar_bz2,
)

pytestmark = pytest.mark.unit

GOOD = [PackageSpec("good", "1.0", "0")]


def test_metadata_that_is_not_utf8_json_text_is_not_read(tmp_path: Path) -> None:
    """An index.json in UTF-16 or UTF-32, or led by a UTF-8 byte order mark, was published as
    if it were JSON text, while rattler cannot read the package's metadata at all: refused. An
    about.json so written costs the package its summary, not its place."""
    folder = tmp_path / "incoming"
    good = drop_all(folder, GOOD)
    encodings = {
        "utf16-1.0-0.conda": lambda text: text.encode("utf-16"),
        "utf32-1.0-0.tar.bz2": lambda text: text.encode("utf-32"),
        "bom-1.0-0.conda": lambda text: b"\xef\xbb\xbf" + text.encode(),
    }
    refused = []
    for fn, encode in encodings.items():
        name = fn.split("-")[0]
        members = [("info/index.json", encode(json.dumps(index_of(name))))]
        writer = write_conda if fn.endswith(".conda") else write_tar_bz2
        refused.append(writer(folder / fn, members))
    with pytest.raises(Exception, match="expected value"):
        IndexJson.from_package_archive(refused[0])
    about = json.dumps({"summary": "in UTF-16"}).encode("utf-16")
    kept = write_conda(
        folder / "about-1.0-0.conda",
        [("info/index.json", json.dumps(index_of("about")).encode()), ("info/about.json", about)],
    )
    assert index_package(kept).about == {}

    found, reasons = run_and_refusals(tmp_path, folder)
    assert found == {*good, kept.name}
    assert reasons == {path.name: REASON_BAD_INDEX for path in refused}


def test_metadata_naming_a_key_twice_is_not_read(tmp_path: Path) -> None:
    """An index.json naming a key twice was published with the last value (Python's reader),
    while rattler refuses it and other readers take the first: which depends the package has
    would depend on who reads it. Refused, as two index.json members are; an about.json so
    written costs the package its fields, a run_exports.json its CEP-12 entry."""
    folder = tmp_path / "incoming"
    good = drop_all(folder, GOOD)
    twice = json.dumps(index_of("twice", depends=["safe"]))[:-1] + ', "depends": ["other"]}'
    refused = write_conda(folder / "twice-1.0-0.conda", [("info/index.json", twice.encode())])
    with pytest.raises(Exception, match="duplicate field"):
        IndexJson.from_package_archive(refused)
    kept = write_tar_bz2(
        folder / "about-1.0-0.tar.bz2",
        [
            ("info/index.json", json.dumps(index_of("about")).encode()),
            ("info/about.json", b'{"summary": "one", "summary": "two"}'),
            ("info/run_exports.json", b'{"weak": ["a"], "weak": ["b"]}'),
        ],
    )
    package = index_package(kept)
    assert (package.about, package.run_exports) == ({}, None)

    found, reasons = run_and_refusals(tmp_path, folder)
    assert found == {*good, kept.name}
    assert reasons == {refused.name: REASON_KEY_TWICE}
