"""Stores: one interface (:class:`Store`), one module per backend, and :func:`open`, which opens
the store a URL names (``sqlite:///path``, a path, or ``postgresql://...``).

``PostgresStore`` is imported lazily so that the core needs no PostgreSQL driver
(install ``mediation[postgres]``).
"""

import typing as _typing

from ._base import Store
from ._open import InvalidStoreURL, NotADatabase, open
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = [
    "InvalidStoreURL",
    "MemoryStore",
    "NotADatabase",
    "PostgresStore",
    "SQLiteStore",
    "Store",
    "open",
]


def __getattr__(name: str) -> _typing.Any:
    if name == "PostgresStore":
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(name)
