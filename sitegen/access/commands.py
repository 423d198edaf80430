"""``sitegen token add|list|revoke``: tokens for a private site and private channels.

``add`` prints the new token once, on stdout and nowhere else (the store keeps hashes); it is
generated here, so it never passes through a command line or an environment. ``check`` and
``revoke --stdin`` take a token on standard input, never as an argument (process arguments
are visible to every user), and find it by comparing hashes in constant time. ``add`` and
``revoke`` rewrite the web server's token files; Apache reads them per request, nginx when it reloads,
which ``--reload`` does with ``access.reload`` from channels.yaml (otherwise the command says
what to run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sitegen.exit_status import EXIT_CONFIG, EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from sitegen.access.tokens import TokenRecord
    from sitegen.config import SiteConfig

# What a token reads when the whole site is private (``access: {site: private}``), in the
# CHANNELS column of ``token list`` and ``token check``: no channel path has parentheses.
SITE_SCOPE_LABEL = "(site)"

AddParser = Callable[[str, str], argparse.ArgumentParser]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def add_token_commands(add_parser: AddParser) -> None:
    token = add_parser("token", "manage the tokens that may read private channels")
    actions = token.add_subparsers(dest="token_command", required=True)

    def common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("-c", "--config", default="channels.yaml", help="channels.yaml")
        # -v/-q after `token add|list|revoke|check` too; SUPPRESS keeps one given before it.
        for flags, help in (
            (("-v", "--verbose"), "debug logging"),
            (("-q", "--quiet"), "warnings and errors only"),
        ):
            parser.add_argument(*flags, action="store_true", default=argparse.SUPPRESS, help=help)
        return parser

    add = common(actions.add_parser("add", help="issue a token (printed once)"))
    add.add_argument("name", help="a name for the token (letters, digits, . _ -)")
    add.add_argument(
        "--channel",
        action="append",
        default=[],
        metavar="PATH",
        help="a private channel it may read (repeatable; channels.yaml readers add more)",
    )
    add.add_argument("--expires", metavar="DATE", help="last valid day (UTC), e.g. 2027-01-31")
    add.add_argument("--reload", action="store_true", help="run access.reload afterwards")
    add.set_defaults(func=_reported(cmd_add))

    listing = common(actions.add_parser("list", help="names, scopes, dates and states"))
    listing.add_argument(
        "--access-log",
        action="append",
        default=[],
        metavar="FILE",
        help="the web server's access log (sitegen_stats format): adds LAST USED (repeatable)",
    )
    listing.set_defaults(func=_reported(cmd_list))

    revoke = common(actions.add_parser("revoke", help="revoke a token (403 from then on)"))
    revoke.add_argument("name", nargs="?", help="the token's name")
    revoke.add_argument(
        "--stdin",
        action="store_true",
        help="revoke the token read from standard input (e.g. one found leaked), by value",
    )
    revoke.add_argument("--reload", action="store_true", help="run access.reload afterwards")
    revoke.set_defaults(func=_reported(cmd_revoke))

    check = common(
        actions.add_parser("check", help="which token the one on standard input is, and its state")
    )
    check.set_defaults(func=_reported(cmd_check))


def cmd_add(args: argparse.Namespace) -> int:
    from sitegen.access.server_files import AccessPaths
    from sitegen.access.tokens import parse_expiry
    from sitegen.config import load_config
    from sitegen.config.access import TOKEN_NAME_RE

    config = load_config(args.config)
    if not TOKEN_NAME_RE.fullmatch(args.name):
        return _fail(f"invalid token name {args.name!r}: letters, digits, '.', '_', '-'")
    private = {c.path for c in config.channels if c.private}
    for path in args.channel:
        if path.strip("/") not in private:
            return _fail(f"{path!r} is not a private channel of {args.config}")
    # An empty --expires (a script's unset variable) is refused, not taken for no expiry.
    expires = parse_expiry(args.expires) if args.expires is not None else None
    when = now()
    if expires is not None and expires <= when:
        return _fail(f"--expires {args.expires} is in the past")
    paths = AccessPaths.of(config)
    paths.gid()  # a misconfigured group fails before a token exists
    token = paths.store.add(args.name, [p.strip("/") for p in args.channel], when, expires)
    record = next(r for r in paths.store.load() if r.name == args.name)
    scope = _scope(config, record)
    if not scope:
        print(f"sitegen: token {args.name!r} reads no channel yet", file=sys.stderr)
    print(token)
    sys.stdout.flush()
    print(
        f"sitegen: token {args.name!r} for {', '.join(scope) or '-'}: shown once, not stored",
        file=sys.stderr,
    )
    return _apply(config, args.reload)


def cmd_revoke(args: argparse.Namespace) -> int:
    from sitegen.access.server_files import AccessPaths
    from sitegen.config import load_config

    config = load_config(args.config)
    store = AccessPaths.of(config).store
    if args.stdin == bool(args.name):
        return _fail("give either a token name or --stdin")
    name = args.name
    if args.stdin:
        record = store.find(_read_token())
        if record is None:
            return _fail("the token on standard input is not in the store")
        name = record.name
    store.revoke(name, now())
    print(f"sitegen: token {name!r} revoked", file=sys.stderr)
    return _apply(config, args.reload)


def cmd_check(args: argparse.Namespace) -> int:
    """Name, state and channels of the token on stdin (never an argument: argv is public)."""
    from sitegen.access.server_files import AccessPaths
    from sitegen.config import load_config

    config = load_config(args.config)
    record = AccessPaths.of(config).store.find(_read_token())
    if record is None:
        print("unknown token")
        return EXIT_FAILED
    channels = ",".join(_scope(config, record)) or "-"
    print(f"{record.name} {record.state(now())} {channels}")
    return EXIT_OK if record.state(now()) == "active" else EXIT_FAILED


def _read_token() -> str:
    return sys.stdin.readline().strip()


def cmd_list(args: argparse.Namespace) -> int:
    from sitegen.access.server_files import AccessPaths, unknown_readers
    from sitegen.access.usage import last_used
    from sitegen.config import load_config

    config = load_config(args.config)
    when = now()
    records = AccessPaths.of(config).store.load()
    used: dict[str, dt.datetime] = {}
    for log_path in args.access_log:
        try:
            with open(log_path, encoding="utf-8", errors="replace") as handle:
                for name, time in last_used(handle, records).items():
                    used[name] = max(time, used.get(name, time))
        except OSError as exc:
            return _fail(f"cannot read {log_path}: {exc.strerror}")
    header = ("NAME", "STATE", "CHANNELS", "CREATED", "EXPIRES")
    rows = [header + (("LAST USED",) if args.access_log else ())]
    for record in records:
        row = (
            record.name,
            record.state(when),
            ",".join(_scope(config, record)) or "-",
            record.created,
            record.expires or "never",
        )
        if args.access_log:
            last = used.get(record.name)
            row += (last.astimezone(dt.UTC).isoformat() if last else "-",)
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    _warn_unknown_readers(unknown_readers(config, records))
    return EXIT_OK


def _scope(config: SiteConfig, record: TokenRecord) -> list[str]:
    """What the token may read: ``(site)`` when the whole site is private (every token may),
    and the private channels whose readers it is among."""
    from sitegen.access.server_files import readers_of

    site = [SITE_SCOPE_LABEL] if config.access.site_private else []
    return site + [c.path for c in config.channels if c.private and readers_of(config, c, [record])]


def _apply(config: SiteConfig, reload: bool) -> int:
    """Rewrite the web server's files; reload the server when asked, else say how."""
    from sitegen.access.refresh import reload_server
    from sitegen.access.server_files import write_server_files

    written = write_server_files(config)
    paths = written.paths
    _warn_unknown_readers(written.unknown)
    command = config.access.reload
    if not reload:
        print(
            f"sitegen: token files updated in {paths.dir}; Apache applies them at once, nginx"
            " after a reload (`nginx -s reload`, or pass --reload with access.reload set)",
            file=sys.stderr,
        )
        return EXIT_OK
    if not command:
        return _fail("--reload needs access.reload in channels.yaml, e.g. [nginx, -s, reload]")
    problem = reload_server(config)
    if problem is not None:
        return _fail(problem)
    print(f"sitegen: token files updated; ran {' '.join(command)}", file=sys.stderr)
    return EXIT_OK


def _warn_unknown_readers(unknown: Iterable[tuple[str, tuple[str, ...]]]) -> None:
    from sitegen.access.server_files import unknown_readers_lines

    for line in unknown_readers_lines(unknown):
        print(f"sitegen: token: warning: {line}", file=sys.stderr)


def _reported(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``command``, its token and access errors (an unknown name, a store it cannot read, an
    unknown group) reported in one line instead of a traceback."""

    def run(args: argparse.Namespace) -> int:
        from sitegen.access.server_files import AccessError
        from sitegen.access.tokens import TokenError

        try:
            return command(args)
        except (TokenError, AccessError) as exc:
            return _fail(str(exc))

    return run


def _fail(message: str) -> int:
    print(f"sitegen: token: {message}", file=sys.stderr)
    # An unknown name, an unreadable store or an unknown group is bad usage or configuration.
    return EXIT_CONFIG
