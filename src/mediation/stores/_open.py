"""Opening a store from a URL: :func:`open` (re-exported as ``mediation.stores.open``).

The forms, as the ``mediation`` command's ``--db`` takes them:

- ``postgresql://user:password@host:5432/db`` (or ``postgres://``): a :class:`PostgresStore`
  (install ``mediation[postgres]``);
- ``sqlite:///relative/path`` or ``sqlite:////absolute/path`` (percent-encoded): a
  :class:`SQLiteStore` on that file;
- anything else without ``://`` is a SQLite file path.

A libpq ``key=value`` string and any other ``scheme://`` are refused with :class:`InvalidStoreURL`
(a connection string is not a file name).  No message of this module ever shows a password: URLs
are quoted with the password masked, and a driver's error that quotes it is scrubbed.
"""

from __future__ import annotations

import builtins
import os
import re
import sqlite3
import urllib.parse
from typing import Any

import attrs

from .._errors import MediationError, StoreError
from ._base import Store
from .sqlite import SQLiteStore

__all__ = [
    "SQLITE_MAGIC",
    "InvalidStoreURL",
    "NotADatabase",
    "StoreURL",
    "check_sqlite_file",
    "mask_password",
    "open",
    "parse_url",
    "read_magic",
    "sqlite_url",
]

#: the first 16 bytes of every SQLite database file
SQLITE_MAGIC = b"SQLite format 3\x00"

_PG_SCHEMES = ("postgresql://", "postgres://")
_CONNINFO = re.compile(r"(\s*\w+=\S*)+\s*")
#: the value of a ``password=`` pair of a libpq key=value string (quoted or not)
_CONNINFO_PASSWORD = re.compile(r"\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


class InvalidStoreURL(MediationError, ValueError):
    """A store URL that names no store this library opens (the forms are in
    :func:`mediation.stores.open`).  The message quotes the URL with its password masked."""


class NotADatabase(StoreError):
    """The file a store URL names exists but is not a SQLite database."""


@attrs.frozen
class StoreURL:
    """A store URL, parsed: where the store is, and how to name it in a message."""

    #: True for PostgreSQL, False for a SQLite file
    postgres: bool
    #: the PostgreSQL URL as given, or the SQLite file's path (percent-decoded)
    target: str
    #: what messages show: the SQLite path, or the PostgreSQL URL with its password masked
    display: str

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite file's path (None for PostgreSQL)."""
        return None if self.postgres else self.target


def _secrets(url: str) -> list[str]:
    """The passwords ``url`` carries (in its user info, a ``password=`` query parameter or a
    ``password=`` conninfo pair), as written and percent-decoded, longest first."""
    found: list[str] = []
    scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://([^/]*)", url)
    if scheme is not None and "@" in scheme[1]:
        userinfo = scheme[1].partition("@")[0]
        if ":" in userinfo:
            found.append(userinfo.partition(":")[2])
    found += re.findall(r"[?&]password=([^&#]*)", url)
    if "://" not in url:  # key=value pairs
        found += [m.strip("'") for m in re.findall(_CONNINFO_PASSWORD, url)]
    out = {s for p in found for s in (p, urllib.parse.unquote(p)) if s}
    return sorted(out, key=len, reverse=True)


def mask_password(url: str) -> str:
    """``url`` with every password in it replaced by ``***`` (for messages and logs)."""
    masked = url
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/]*)", url)
    if scheme is not None and "@" in scheme[2]:
        userinfo, _, host = scheme[2].partition("@")
        if ":" in userinfo:
            user = userinfo.partition(":")[0]
            masked = scheme[1] + f"{user}:***@{host}" + url[scheme.end() :]
    masked = re.sub(r"([?&]password=)[^&#]*", r"\1***", masked)
    if "://" not in url:
        masked = re.sub(
            _CONNINFO_PASSWORD, lambda m: m[0][: m.start(1) - m.start()] + "***", masked
        )
    return masked


def _scrub(text: str, url: str) -> str:
    """``text`` without any password of ``url`` in it."""
    text = text.replace(url, mask_password(url))
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """The ``sqlite:////absolute/path`` URL of a SQLite file (percent-encoded)."""
    return "sqlite:///" + urllib.parse.quote(os.path.abspath(os.fspath(path)))


def parse_url(url: str | os.PathLike[str]) -> StoreURL:
    """Parse a store URL (the forms are in the module's documentation) without opening anything.

    Raises :class:`~mediation.stores.InvalidStoreURL` for a form this library does not open.
    """
    if not isinstance(url, str):
        path = os.fspath(url)
        return StoreURL(False, path, path)
    if url.startswith(_PG_SCHEMES):
        return StoreURL(True, url, mask_password(url))
    if url.startswith("sqlite:"):
        parsed = urllib.parse.urlsplit(url)
        if (
            not url.startswith("sqlite:///")
            or not parsed.path[1:]
            or parsed.query
            or parsed.fragment
        ):
            shown = mask_password(url)
            raise InvalidStoreURL(
                f"{shown!r} is not a SQLite URL: write sqlite:///relative/path or "
                "sqlite:////absolute/path",
                message_zh=f"{shown!r} 不是有效的 SQLite 地址（应为 sqlite:///相对路径 或 "
                "sqlite:////绝对路径）",
            )
        path = urllib.parse.unquote(parsed.path[1:])
        return StoreURL(False, path, path)
    if "://" in url or _CONNINFO.fullmatch(url):
        shown = mask_password(url)
        raise InvalidStoreURL(
            f"{shown!r} is neither a SQLite path, sqlite:///path nor postgresql://...",
            message_zh=f"{shown!r} 无法识别（应为 SQLite 路径、sqlite:///路径 或 postgresql://...）",
        )
    return StoreURL(False, url, url)


def open(
    url: str | os.PathLike[str],
    *,
    create: bool = False,
    read_only: bool = False,
    **options: Any,
) -> Store:
    """The store ``url`` names (the forms are in the module's documentation).

    - ``create=False`` (the default): the store must exist and hold the schema
      (:class:`~mediation.StoreError` otherwise); a SQLite file is never created.
    - ``create=True``: a missing SQLite file and a missing schema are created (an older schema
      is migrated), as ``SQLiteStore(path)`` and ``PostgresStore(url)`` do.
    - ``read_only=True``: a SQLite file is opened read-only (``mode=ro``: nothing can write through
      the store).  For PostgreSQL it only implies ``create=False``: use a role with read-only
      grants to enforce it there.

    ``options`` go to the store's constructor (``timeout`` for SQLite; ``pool_size``, ``timeout``,
    ``scan_batch`` for PostgreSQL).  ``sqlite:///:memory:`` with ``create=True`` is an empty
    in-memory database.

    Raises :class:`~mediation.stores.InvalidStoreURL` for a form it does not open,
    :class:`~mediation.stores.NotADatabase` for a file that is not a SQLite database, and
    :class:`~mediation.StoreError` when the store cannot be opened (no such file, no schema,
    PostgreSQL unreachable or not installed).  No message shows a password.
    """
    if create and read_only:
        raise ValueError("open(): create and read_only exclude each other")
    parsed = parse_url(url)
    if parsed.postgres:
        return _open_postgres(parsed.target, create=create, **options)
    path = parsed.target
    if create:
        if path != ":memory:" and os.path.exists(path):
            check_sqlite_file(path)
        return SQLiteStore(path, **options)
    check_sqlite_file(path)
    if not read_only:
        return SQLiteStore(path, create=False, **options)
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open SQLite database {path!r}: {exc}") from exc
    try:
        return _ReadOnlySQLite(conn, path, **options)
    except BaseException:
        conn.close()
        raise


def check_sqlite_file(path: str) -> None:
    """Refuse a missing or unreadable file (:class:`~mediation.StoreError`) and one that is not
    a SQLite database (:class:`~mediation.stores.NotADatabase`); an empty file passes (SQLite then
    reports the missing schema)."""
    magic = read_magic(path, "数据库文件", "database file")
    if magic and magic != SQLITE_MAGIC:
        raise NotADatabase(
            f"{path} is not a SQLite database", message_zh=f"{path} 不是 SQLite 数据库"
        )


def read_magic(path: str, what_zh: str = "文件", what_en: str = "file") -> bytes:
    """The first 16 bytes of the file at ``path`` (to tell a SQLite database from an export);
    :class:`~mediation.StoreError` when it cannot be read."""
    try:
        with builtins.open(path, "rb") as f:  # open() is this module's
            return f.read(16)
    except FileNotFoundError:
        raise StoreError(
            f"no such {what_en}: {path}", message_zh=f"找不到{what_zh} {path}"
        ) from None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from exc


class _ReadOnlySQLite(SQLiteStore):
    """A SQLite store on a read-only connection it owns and closes."""

    def __init__(self, conn: sqlite3.Connection, path: str, **options: Any) -> None:
        super().__init__(connection=conn, create=False, **options)
        self.path = path

    def close(self) -> None:
        self.connection.close()


def _postgres_module() -> Any:
    """``mediation.stores.postgres``, or :class:`~mediation.StoreError` without the extra."""
    try:
        from . import postgres
    except ImportError as exc:
        raise StoreError(
            f"PostgreSQL needs the 'postgres' extra: pip install 'mediation[postgres]' ({exc})",
            message_zh=f"PostgreSQL 需要安装 postgres 扩展：pip install 'mediation[postgres]'（{exc}）",
        ) from exc
    return postgres


def _scrubbed(exc: MediationError, url: str) -> MediationError | None:
    """An error like ``exc`` without the password of ``url`` its message (or cause) shows, and
    without the cause; None when it shows none.  Raise the result outside the ``except`` block,
    so that ``exc`` does not come along as its ``__context__``."""
    secrets = _secrets(url)
    texts = (exc.message, exc.message_zh, str(exc.__cause__ or ""))
    if not any(s in t for s in secrets for t in texts) and not any(url in t for t in texts):
        return None
    kind = type(exc) if type(exc) in (StoreError, MediationError) else StoreError
    return kind(_scrub(exc.message, url), message_zh=_scrub(exc.message_zh, url), case=exc.case)


def _open_postgres(url: str, *, create: bool, **options: Any) -> Store:
    postgres = _postgres_module()
    try:
        store: Store = postgres.PostgresStore(url, create=create, **options)
        return store
    except MediationError as exc:
        clean = _scrubbed(exc, url)
        if clean is None:
            raise
    raise clean
