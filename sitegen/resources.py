"""Where sitegen's templates are, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def templates_dir() -> Path:
    """The page templates (with ``assets/`` and ``webconf/`` below them).

    A wheel carries them inside the package, as ``sitegen/templates`` (see pyproject.toml); a
    checkout, and an editable install of one, keeps them at the top of the repository.
    """
    packaged = _PACKAGE / "templates"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "templates"
