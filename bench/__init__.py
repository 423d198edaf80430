"""Benchmarks of sitegen, run by ``make bench`` (``python -m bench``); not part of the tests.

Workloads (inputs generated here, reproducible from ``--seed``, cached under ``build/bench``):

- ``sync``: full sync of a ~2,100-file, ~300 MB channel over loopback nginx and through a
  delaying, bandwidth-capping proxy, against conda-mirror 0.10.0 and a ``curl --parallel``
  floor; then a no-op resync and a 1 % resync (:mod:`bench.sync`, :mod:`bench.sync_resync`).
- ``metadata``: an 800,000-record ``linux-64`` repodata, mirrored passively with heavy filters;
  stage times and peak RSS, and a stdlib ``json`` baseline (:mod:`bench.metadata`).
- ``shards``: the same repodata mirrored whole with its ~34,000 shards beside a floor that only
  writes those shards from the upstream file (:mod:`bench.shards_floor`), an incremental run
  after 10 names changed, and py-rattler solving ``python numpy pandas`` from the mirror
  through the shards and through ``repodata.json`` (:mod:`bench.shards`).
- ``render``: pages for ~34,000 names, full and incremental (:mod:`bench.render`).

Results print as a table and are written to ``bench-results/`` (:mod:`bench.results`).
"""
