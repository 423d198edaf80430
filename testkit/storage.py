"""Sites on the filesystem backend as the storage tests make them, and what a directory holds.

:func:`site_of_kind` is a site that writes nameless files (``O_TMPFILE``) where the filesystem
allows, or one that names its temporaries as on a filesystem without them; a module takes it as
its ``site`` fixture, ``pytest.fixture(params=["unnamed", "named"], name="site")(site_of_kind)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from sitegen.store.site import Site

if TYPE_CHECKING:  # only testkit.require imports pytest at run time (see testkit/__init__.py)
    import pytest


def entries(directory: Path) -> list[str]:
    """The names in ``directory``, sorted: temporaries included, as a crash would leave them."""
    return sorted(os.listdir(directory))


def site_of_kind(request: pytest.FixtureRequest, tmp_path: Path) -> Site:
    """A site under ``tmp_path``: ``request.param`` "named" makes it name its temporaries."""
    site = Site(tmp_path / "site")
    if request.param == "named":
        site.unnamed_files = False  # as on a filesystem without O_TMPFILE
    return site
