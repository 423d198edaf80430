"""The web server's token files kept in line with channels.yaml by every mirror run.

Who may read a private channel comes from the token store and from channels.yaml (``readers``,
``access.groups``). ``sitegen token`` rewrites the files when the store changes; a reader taken
out of channels.yaml must lose access too, without anyone remembering a command: each
``sitegen mirror`` (the scheduled job) rewrites them from both, and reloads the web server
with ``access.reload`` when a file changed (nginx reads them only then; Apache per request).
"""

from __future__ import annotations

import logging
import subprocess

from sitegen.access.server_files import (
    AccessError,
    token_guarded,
    unknown_readers_lines,
    write_server_files,
)
from sitegen.config import SiteConfig, child_environment

log = logging.getLogger("sitegen")

RELOAD_TIMEOUT = 120.0  # seconds; a reload that hangs must not hold the run


def reload_server(config: SiteConfig) -> str | None:
    """Run ``access.reload``; why it failed, or None. Without the mirrors' secret variables."""
    command = list(config.access.reload)
    try:
        result = subprocess.run(
            command, check=False, env=child_environment(config), timeout=RELOAD_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(command)}: {exc}"
    if result.returncode != 0:
        return f"{' '.join(command)} exited with status {result.returncode}"
    return None


def refresh_access(config: SiteConfig) -> bool:
    """Bring the token files in line before a run (neither the site nor a channel private:
    nothing to do); whether all went well. A failure is logged and fails the run's exit
    status, not the run."""
    if not token_guarded(config):
        return True
    try:
        written = write_server_files(config)
    except (AccessError, OSError) as exc:
        log.error("access: cannot write the web server's token files: %s", exc)
        return False
    for line in unknown_readers_lines(written.unknown):
        log.warning("access: %s", line)
    if not written.changed:
        return True
    if not config.access.reload:
        log.warning(
            "access: token files in %s changed; nginx applies them after a reload (set"
            " access.reload to have each run do it)",
            written.paths.dir,
        )
        return True
    problem = reload_server(config)
    if problem is not None:
        log.error("access: token files changed, but the reload failed: %s", problem)
        return False
    log.info("access: token files changed; ran %s", " ".join(config.access.reload))
    return True
