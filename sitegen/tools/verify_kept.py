"""``sitegen verify`` over the files a ``keep_removed`` channel keeps unlisted
(:mod:`sitegen.sync.keep`): each kept file that is still on disk must match the record kept
for it. Nothing can fetch a kept file again (its upstream no longer lists it), so
``--repair`` deletes one that does not match, and its record with it."""

from __future__ import annotations

from sitegen.config import ChannelConfig
from sitegen.layout import kept_records_path
from sitegen.store.site import Site
from sitegen.sync.keep import read_kept, save_kept
from sitegen.tools.verify_sample import Checked


def kept_problems(
    site: Site, channel: ChannelConfig, subdir: str, checked: Checked, repair: bool
) -> list[tuple[str, str, str, bool]]:
    """(site-relative path, kind of problem, what is wrong, repaired) for the kept files of a
    subdir (as :class:`sitegen.tools.verify.Problem` takes them), each file on disk counted
    into ``checked``; with its ``sample``, the files outside it are checked by size only."""
    kept = read_kept(site.root, channel.path, subdir)
    relative = f"{channel.path}/{subdir}"
    if kept is None:
        path = kept_records_path(site.root, channel.path, subdir)
        state = path.relative_to(site.root).as_posix()
        return [(state, "metadata", "the records of the kept files cannot be read", False)]
    directory = site.path(channel.path, subdir)
    wrong = []
    for fn, record in kept.items():
        file = directory / fn
        if not file.is_file():
            continue  # gone: the next run forgets its record
        if not checked.matches(file, f"{relative}/{fn}", record, kept=True):
            wrong.append(fn)
    if repair and wrong:
        for fn in wrong:
            site.remove(directory / fn)
        save_kept(site, channel.path, subdir, {fn: r for fn, r in kept.items() if fn not in wrong})
    why = "a kept file (keep_removed) does not match its record"
    return [(f"{relative}/{fn}", "corrupt", why, repair) for fn in wrong]
