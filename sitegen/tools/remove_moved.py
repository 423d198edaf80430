"""The packages a ``move: true`` local source moved out of its folder, when ``sitegen remove``
takes away the channel it fed: its store holds their only copies, so they go back to the
folder (:mod:`sitegen.sync.local_return`) before the store goes with the mirror's state, and
the removal is refused where they cannot, unless told to delete them."""

from __future__ import annotations

from sitegen.config import SiteConfig
from sitegen.store.site import Site
from sitegen.sync.local_return import StoreReturn, plan_return
from sitegen.sync.removal_journal import Removal
from sitegen.tools.remove_state import gone_mirrors
from sitegen.wording import counted

SHOWN = 20  # files named in a refusal; the store lists them all


def moved_stores(config: SiteConfig, removal: Removal) -> list[StoreReturn]:
    """The stores holding files that go with the removal, each with where its files go: those
    of the mirrors that fed the channel and are gone from the configuration (their state
    stays while a subdir of the channel does)."""
    if not removal.whole_channel:
        return []
    site = Site(config.output)
    names = gone_mirrors(site, config, removal.channel, removal.subdirs)
    return [p for p in (plan_return(site, config, name) for name in names) if p.files]


def refusal(site: Site, plans: list[StoreReturn]) -> str | None:
    """Why the removal must not go ahead (a store whose files cannot go back), or None."""
    for plan in plans:
        if plan.problem:
            store = plan.store.relative_to(site.root).as_posix()
            shown = ", ".join(plan.files[:SHOWN])
            if len(plan.files) > SHOWN:
                shown += f" and {len(plan.files) - SHOWN} more"
            files = counted(len(plan.files), "package file")
            return (
                f"{store}/ holds the only copies of {files} that the mirror {plan.mirror} moved"
                f" out of its folder ({shown}), and {plan.problem}; or pass --delete-moved to"
                " delete them"
            )
    return None


def moved_lines(site: Site, plans: list[StoreReturn], delete_moved: bool) -> list[str]:
    """What becomes of each file moved out of a folder, led by its verb (``return``, ``keep
    aside``, ``remove``, ``delete``), for the dry run."""
    lines = []
    for plan in plans:
        store = plan.store.relative_to(site.root).as_posix()
        if delete_moved:
            lines += [
                f"delete {store}/{f} (moved out of its folder: the only copy)" for f in plan.files
            ]
            continue
        for giving in plan.givings:
            where = giving.stored.relative_to(site.root).as_posix()
            if giving.target is None:
                lines.append(
                    f"remove {where} (the same bytes are in {plan.folder} or moved on from it)"
                )
            elif giving.aside:
                lines.append(f"keep aside {where} as {giving.target} (its name is taken there)")
            else:
                lines.append(f"return {where} to {giving.target}")
    return lines
