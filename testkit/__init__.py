"""Real-parts infrastructure shared by the tests and the benchmarks (``bench/``).

An HTTP upstream, real nginx and Apache on free ports of 127.0.0.1, process termination,
repodata records built by hand and a real conda client. Not part of the sitegen wheel. At run
time only :mod:`testkit.require` imports pytest (a missing tool skips a test, or fails it in
CI); only the modules that may skip a test import it in turn (:mod:`testkit.apache` and
:mod:`testkit.private_site` through it, :mod:`testkit.axe`, :mod:`testkit.browser`), so the
benchmarks use the rest without pytest.
"""

from __future__ import annotations

from typing import Self


class StartStop:
    """``with server:`` starts a test server and stops it on the way out; subclasses define
    ``start()`` (returning the server) and ``stop()``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
