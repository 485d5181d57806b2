"""Every bundled store passes the one conformance suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediation import MemoryStore, SQLiteStore, Store
from mediation.testing import StoreConformance


class TestMemoryStore(StoreConformance):
    def make_store(self) -> Store:
        return MemoryStore()


class TestSQLiteStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.path = tmp_path / "cases.db"

    def make_store(self) -> Store:
        return SQLiteStore(self.path)

    def reopen(self, store: Store) -> Store:
        return SQLiteStore(self.path)
