"""The subcommands of ``sitegen``, one module per group; :mod:`sitegen.cli` registers them.

Every process starts by building the whole parser, so the modules here (and
:mod:`sitegen.access.commands`) import at their top only what defining the arguments needs:
the standard library, :mod:`sitegen.commands.common`, and under ``TYPE_CHECKING`` what only
annotations name. A handler imports what it runs (trio, the configuration, the sync, web and
access code) in its own body, when it is called: imported at the top, those made up four
fifths of every start, ``--help`` and ``--version`` included, and cron starts
``sitegen mirror --due`` often. A test in ``tests/test_cli_startup.py`` holds the modules to it.
"""
