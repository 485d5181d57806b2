"""Stores: one interface (:class:`Store`), one module per backend.

``PostgresStore`` is imported lazily so that the core needs no PostgreSQL driver
(install ``mediation[postgres]``).
"""

import typing as _typing

from ._base import Store
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = ["MemoryStore", "PostgresStore", "SQLiteStore", "Store"]


def __getattr__(name: str) -> _typing.Any:
    if name == "PostgresStore":
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(name)
