"""Files an operator hands sitegen beside channels.yaml (approvals, advisories, lockfiles):
read whole, but only up to a size no honest file of its kind reaches."""

from __future__ import annotations

from pathlib import Path

# Tens of thousands of approvals, advisories or pins are still far below this.
MAX_FILE_BYTES = 16 * 1024 * 1024


class OperatorFileError(ValueError):
    """Why a file could not be read; the caller names the file and its kind."""


def read_capped(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path``; FileNotFoundError passes through, for callers to whom an absent
    file is fine."""
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise OperatorFileError(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise OperatorFileError(f"larger than {limit // (1024 * 1024)} MiB")
    return data


def read_text_capped(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """:func:`read_capped` as UTF-8 text."""
    try:
        return read_capped(path, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise OperatorFileError("not UTF-8 text") from None
