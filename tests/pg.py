"""PostgreSQL for the tests: the server named by ``MEDIATION_PG_DSN``, one fresh schema per test.

On a developer machine without the variable (or without a reachable server) the PostgreSQL tests
skip, saying how to enable them; when ``CI`` is set they fail instead, so a CI run can never pass
without having run them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

ENV = "MEDIATION_PG_DSN"
HOW = (
    f"start PostgreSQL and export {ENV}=postgresql://mediation:mediation@127.0.0.1:5432/"
    "mediation_test (see the README; .ci/run shows the setup)"
)

_reachable: dict[str, str | None] = {}  # DSN -> why it cannot be used (None: it can)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _problem(value: str) -> str | None:
    if not value:
        return f"{ENV} is not set"
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'mediation[postgres]')"
    if value not in _reachable:
        try:
            with psycopg.connect(value, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            _reachable[value] = None
        except psycopg.Error as exc:
            _reachable[value] = f"cannot reach the PostgreSQL server in {ENV}: {exc}"
    return _reachable[value]


def dsn() -> str:
    """The DSN of the test server; skips the test (or fails it, under CI) when there is none."""
    value = os.environ.get(ENV, "").strip()
    problem = _problem(value)
    if problem is not None:
        message = f"PostgreSQL tests: {problem}. To run them, {HOW}."
        if in_ci():
            pytest.fail(message + " CI is set, so they are required.", pytrace=False)
        pytest.skip(message)
    return value


@contextlib.contextmanager
def fresh_schema(prefix: str = "t") -> Iterator[str]:
    """Create an empty schema, yield a conninfo whose ``search_path`` is that schema, drop it."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    base = dsn()
    name = f"mediation_{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(base, options=f"-c search_path={name}")
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            # a test that leaked an open transaction must not hang the run here
            admin.execute("SET lock_timeout = '30s'")
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
            # the store's key store, where a test opened one (Store.key_store)
            admin.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name + "_keys"))
            )
