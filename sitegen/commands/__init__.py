"""The subcommands of ``sitegen``, one module per group; :mod:`sitegen.cli` registers them."""
