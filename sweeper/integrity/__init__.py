"""Proving what a store holds: ``sweeper verify`` (every chunk decoded and checked, optionally
every trace simulated again) and ``sweeper repair`` (damaged points made pending).

Reading and checking a store never imports or calls code named in it: checks that need the
network use the spec the user passes (``--spec``); the spec kept in the store is only expanded
into its points (values, expressions and samplers, no network, no builder).
"""

from .report import Report
from .verify import verify, verify_store

__all__ = ["Report", "verify", "verify_store"]
