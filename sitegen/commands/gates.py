"""Subcommands of frozen and approval-gated channels: freeze, unfreeze, approve, revoke, pending."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from sitegen.commands.common import (
    AddCommand,
    add_site_options,
    check_text,
    load,
    login_name,
    render_pages,
    whole_number,
)
from sitegen.exit_status import EXIT_FAILED, EXIT_LOCKED, EXIT_OK
from sitegen.wording import counted

if TYPE_CHECKING:  # the subcommands import what they run when they run
    from sitegen.sync.report import ApprovalChange

log = logging.getLogger("sitegen")


def register(add: AddCommand) -> None:
    _add_freeze_commands(add)
    _add_approval_commands(add)


def _common(parser: argparse.ArgumentParser, channel_help: str) -> None:
    parser.add_argument("channel", help=channel_help)
    add_site_options(parser)


# --------------------------------------------------------------------------- freeze


def _add_freeze_commands(add: AddCommand) -> None:
    def run(args: argparse.Namespace) -> int:
        from sitegen.store.frozen import FrozenStateError
        from sitegen.tools.freeze import freeze, unfreeze

        if args.command == "freeze":
            check_text("--by", args.by or "")
            check_text("--reason", args.reason)
        config = load(args, upstream=False)
        try:
            if args.command == "freeze":
                print(freeze(config, args.channel, args.by or login_name(), args.reason))
            else:
                print(unfreeze(config, args.channel))
        except FrozenStateError as exc:  # never written over: it holds freezes
            print(f"sitegen: {args.command}: {exc}", file=sys.stderr)
            return EXIT_FAILED
        # The channel's pages say whether it is frozen, since when and by whom: now, not
        # from the next run on.
        return EXIT_OK if render_pages(config) else EXIT_FAILED

    freeze = add("freeze", "keep a channel's published state until it is unfrozen")
    unfreeze = add("unfreeze", "lift a freeze made by `sitegen freeze`")
    for parser in (freeze, unfreeze):
        _common(parser, "channel path, e.g. cloud/conda-forge")
        parser.set_defaults(func=run)
    freeze.add_argument("--by", help="who freezes it (default: the current user)")
    freeze.add_argument("--reason", default="", help="why, for the record")


# --------------------------------------------------------------------------- approvals


def _add_approval_commands(add: AddCommand) -> None:
    def publish(args: argparse.Namespace, channel: str, changes: list[ApprovalChange]) -> int:
        """Run the gated channel's mirror now, recording the changes in its history (past the
        deletion guard with ``--force-delete``, which its refusal names)."""
        import trio

        from sitegen.approvals.commands import gated_channel
        from sitegen.store.lock import SiteLocked
        from sitegen.store.site import Site
        from sitegen.sync import approvals_waiting
        from sitegen.sync.merge import FROZEN, HELD
        from sitegen.sync.run import MirrorOptions, run_mirror

        config = load(args)
        gated = gated_channel(config, channel)
        mirror = gated.mirrors[0].name
        options = MirrorOptions(
            only=(mirror,),
            progress=False,
            approvals=tuple(changes),
            force_delete=getattr(args, "force_delete", False),
        )
        try:
            report = trio.run(run_mirror, config, options)
        except SiteLocked as exc:
            # The next run of the channel publishes the change: its history records it then.
            approvals_waiting.leave(Site(config.output), changes)
            log.error("%s; the approvals file is updated and the next run publishes it", exc)
            return EXIT_LOCKED
        rendered = render_pages(config)
        if any(c.channel == gated.path and c.status == FROZEN for c in report.channels):
            # A revocation (a CVE, say) must not read as done while its packages are served.
            log.warning("%s is frozen: the change is published when it is unfrozen", gated.path)
        if any(c.status == HELD for c in report.channels) and not options.force_delete:
            # The guard's advice, "run again", would find the approval changed already.
            log.error(
                "the change is in the approvals file; to publish it: sitegen mirror --only %s"
                " --force-delete",
                mirror,
            )
        if report.failed:
            log.error("run %s finished with errors", report.id)
            return EXIT_FAILED
        return EXIT_OK if rendered else EXIT_FAILED

    def approve(args: argparse.Namespace) -> int:
        from sitegen.approvals.commands import change_record, gated_channel, grant, reach
        from sitegen.config import make_scrub
        from sitegen.wording import counted

        check_text("--by", args.by)
        check_text("--reason", args.reason)
        entry = grant(
            lambda: load(args),
            args.channel,
            args.spec,
            by=args.by,
            why=args.reason,
            with_dependencies=args.with_dependencies,
            expires=args.expires,
        )
        print(f"approved {entry.spec!r} for {entry.channel}")
        config = load(args)
        covered = reach(config, entry)
        source = gated_channel(config, entry.channel).approval
        assert source is not None
        if not covered.matched:
            # Kept (it approves a matching version once one arrives), but a typo such as
            # "nunpy" would otherwise pass unnoticed.
            log.warning(
                "%r matches no package %s publishes now: it approves nothing until one arrives",
                entry.spec,
                source.source,
            )
        elif not covered.published:
            # Kept too (the filters may change), but only the approved page would tell.
            log.warning(
                "%r matches %s of %s, but the channel's filters leave every one out:"
                " it publishes nothing",
                entry.spec,
                counted(covered.matched, "package"),
                source.source,
            )
        elif covered.lacking:
            # Published without what it needs, it does not install from the channel.
            log.warning(
                "%r needs what %s does not publish: %s; %s",
                entry.spec,
                entry.channel,
                ", ".join(covered.lacking),
                # Approved with its dependencies, what lacks is what the channel's filters
                # leave out or the source lacks, which the run's dependency report tells.
                "see the run's dependency report"
                if entry.with_dependencies
                else "approve that too, or this with --with-dependencies",
            )
        return publish(args, entry.channel, [change_record("approve", entry, make_scrub(config))])

    def revoke(args: argparse.Namespace) -> int:
        from sitegen.approvals.commands import change_record, withdraw
        from sitegen.config import make_scrub

        check_text("--by", args.by or "")
        check_text("--reason", args.reason or "")
        # The history names who revoked and why: never the approver and the approval's
        # reason, which would read as if the approver had revoked it for that reason.
        by, why = args.by or login_name(), args.reason or ""
        removed = withdraw(lambda: load(args), args.channel, args.spec)
        scrub = make_scrub(load(args))
        changes = [change_record("revoke", replace(e, by=by, why=why), scrub) for e in removed]
        print(f"revoked {args.spec!r} for {removed[0].channel}")
        return publish(args, removed[0].channel, changes)

    def pending(args: argparse.Namespace) -> int:
        from sitegen.approvals.commands import waiting
        from sitegen.sync.progress import human_bytes

        items, left_out = waiting(load(args), args.channel, limit=args.limit)
        for index, item in enumerate(items):
            raw = item.record.raw
            line = f"{item.subdir}/{item.record.fn}  {human_bytes(item.record.size)}"
            if raw.get("license"):
                line += f"  {raw['license']}"
            if index < args.limit:
                extra = ", ".join(f"{s}/{fn}" for s, fn in item.would_add)
                line += f"  would add: {extra or 'nothing else'}"
                if item.would_lack:
                    # Approved, it would not install: what it needs cannot be published.
                    line += f"  would lack: {', '.join(item.would_lack)}"
            print(line)
        verb = "waits" if len(items) == 1 else "wait"
        print(f"{counted(len(items), 'file')} {verb} for approval")
        if left_out:
            # Approving these would publish nothing: the gated channel's filters drop them.
            print(f"{left_out} more are not listed: the channel's filters leave them out")
        return EXIT_OK

    approve_parser = add("approve", "approve packages for an approval-gated channel, publish it")
    revoke_parser = add("revoke", "revoke an approval of an approval-gated channel, publish it")
    pending_parser = add("pending", "list what waits for approval in a gated channel, newest first")
    for parser in (approve_parser, revoke_parser, pending_parser):
        _common(parser, "the approval-gated channel, e.g. internal/approved")
    for parser in (approve_parser, revoke_parser):
        parser.add_argument("spec", help="a MatchSpec, e.g. 'numpy >=2.1'")
    approve_parser.add_argument("--by", required=True, help="who approves")
    approve_parser.add_argument("--reason", required=True, help="why")
    approve_parser.add_argument(
        "--with-dependencies",
        action="store_true",
        help="also approve what the matching packages need (as include_dependencies finds it)",
    )
    approve_parser.add_argument("--expires", help="last day the approval holds, e.g. 2027-06-30")
    approve_parser.set_defaults(func=approve)
    revoke_parser.add_argument(
        "--by", help="who revokes it, recorded in the history (default: the current user)"
    )
    revoke_parser.add_argument("--reason", help="why (recorded in the history)")
    revoke_parser.add_argument(
        "--force-delete",
        action="store_true",
        help="publish even when the channel would lose more than prune.max_fraction of its files",
    )
    revoke_parser.set_defaults(func=revoke)
    pending_parser.add_argument(
        "--limit",
        type=whole_number(0),
        default=50,
        help="work out what approving adds for this many",
    )
    pending_parser.set_defaults(func=pending)
