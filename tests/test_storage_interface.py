"""The filesystem backend against the storage interface callers are typed with."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from sitegen.store.interface import PendingWrite, SiteStorage
from sitegen.store.pending import PendingFile
from sitegen.store.site import Site


@pytest.mark.unit
@pytest.mark.parametrize(
    ("protocol", "implementation"), [(SiteStorage, Site), (PendingWrite, PendingFile)]
)
def test_the_filesystem_backend_implements_the_storage_interface(
    protocol: type, implementation: type
) -> None:
    """Every operation of the interface exists on the filesystem backend, called the same way
    (parameter names, kinds and defaults), so callers typed against the interface work."""
    for name, member in vars(protocol).items():
        if name.startswith("_") and name not in ("__enter__", "__exit__"):
            continue
        if isinstance(member, property):
            assert isinstance(getattr(implementation, name), property), name
            continue
        if not callable(member):
            continue
        expected = inspect.signature(member)
        actual = inspect.signature(getattr(implementation, name))
        assert [(p.name, p.kind, p.default) for p in actual.parameters.values()] == [
            (p.name, p.kind, p.default) for p in expected.parameters.values()
        ], name


@pytest.mark.unit
def test_a_site_and_its_pending_files_are_storage_instances(tmp_path: Path) -> None:
    site = Site(tmp_path)
    assert isinstance(site, SiteStorage)  # also its data members: root
    with site.pending(tmp_path / "a.conda") as pending:
        assert isinstance(pending, PendingWrite)
