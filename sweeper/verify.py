"""Integrity checks of a sweep store (``sweeper verify``): see :mod:`sweeper.integrity`."""

from .integrity import Report, verify, verify_store

__all__ = ["Report", "verify", "verify_store"]
