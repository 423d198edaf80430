"""The exit statuses of every sitegen command (README, Running it), one set for all rooms:
cron and systemd read them, so two commands never mean different things by one number."""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
