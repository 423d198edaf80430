"""sitegen: filtered, verified static mirrors of conda channels."""

__version__ = "0.1.0"
