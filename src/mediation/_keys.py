"""Key stores: where the per-case sealing keys live, apart from the events (PIPL 47).

A key is named by ``(case_id, subject, epoch)``:

- ``subject`` is the person the sealed values belong to (a party's or agent's id), or ``""`` for
  what belongs to the case as a whole (its free text);
- ``epoch`` is the store-wide key generation (:meth:`KeyStore.rotate` starts a new one); new values
  are sealed under the current epoch, old ones keep naming the epoch they were sealed under.

:meth:`KeyStore.destroy` erases the keys of a person of a case, or of the whole case, for good: it
leaves a tombstone, so that a key is never created again under a destroyed name (a value sealed
under the old key would then fail to open as if tampered with, instead of showing as erased) and
sealing anything new for that person (or case) is refused with :class:`KeyDestroyed`.

The library ships three: :class:`MemoryKeyStore` (a process's memory), :class:`SQLiteKeyStore` (its
own file, mode 0600) and :class:`~mediation.stores.postgres_keys.PostgresKeyStore` (its own schema);
each store offers one by default (:meth:`mediation.stores.Store.key_store`), and a host plugs in a
KMS or HSM by implementing :class:`KeyStore` (or :class:`mediation.Vault` as a whole).
:class:`mediation.testing._conformance.KeyStoreConformance` checks a key store against the contract.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from ._errors import KeyDestroyed, StoreError

__all__ = [
    "CASE",
    "KeyDestroyed",
    "KeyStore",
    "MemoryKeyStore",
    "ReadThrough",
    "SQLiteKeyStore",
    "destroyed_error",
    "key_file",
]

#: the subject of what belongs to the case as a whole (free text)
CASE = ""


@runtime_checkable
class KeyStore(Protocol):
    """Where sealing keys live.  Every method is safe to call from several threads and, for the
    persistent stores, from several processes at once."""

    def get(self, case_id: str, subject: str, epoch: int) -> bytes | None:
        """The key, or None when there is none (never created, or destroyed)."""
        ...

    def create(self, case_id: str, subject: str, epoch: int, key: bytes) -> bytes:
        """Store ``key`` under that name unless one is there; return the stored key (of two
        writers at once, both get the first one's).  :class:`KeyDestroyed` if the subject's (or
        the case's) keys were destroyed."""
        ...

    def destroy(self, case_id: str, subject: str | None = None) -> int:
        """Destroy every epoch's key of ``subject`` in the case (``None``: every key of the case),
        leave a tombstone, and leave no copy of the key bytes in the store's files or tables;
        return how many keys were destroyed.  Destroying again is not an error."""
        ...

    def destroyed(self, case_id: str, subject: str) -> bool:
        """Whether the subject's keys (or the whole case's) were destroyed."""
        ...

    def epoch(self) -> int:
        """The current epoch (1 until the first rotation)."""
        ...

    def rotate(self) -> int:
        """Start a new epoch (atomically, for every process sharing the store); return it."""
        ...

    def close(self) -> None: ...


def key_file(events: str) -> str:
    """The file of the key store a SQLite store at ``events`` keeps beside itself."""
    return events + ".keys"


def destroyed_error(case_id: str, subject: str) -> KeyDestroyed:
    """The error of sealing anything new for a destroyed subject (or case)."""
    whose = f"person {subject}" if subject else "the case"
    return KeyDestroyed(
        f"the keys of {whose} in case {case_id} were destroyed: nothing new is sealed for them",
        message_zh=f"案件 {case_id} 中{'当事人 ' + subject if subject else '案件'}的密钥已销毁，不再加密新的内容",
        case=case_id,
    )


class MemoryKeyStore:
    """Keys in this process's memory: for tests and a :class:`~mediation.stores.MemoryStore`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str, int], bytes] = {}
        self._tombs: set[tuple[str, str | None]] = set()
        self._epoch = 1

    def _dead(self, case_id: str, subject: str) -> bool:
        return (case_id, None) in self._tombs or (case_id, subject) in self._tombs

    def get(self, case_id: str, subject: str, epoch: int) -> bytes | None:
        with self._lock:
            return (
                None if self._dead(case_id, subject) else self._keys.get((case_id, subject, epoch))
            )

    def create(self, case_id: str, subject: str, epoch: int, key: bytes) -> bytes:
        with self._lock:
            if self._dead(case_id, subject):
                raise destroyed_error(case_id, subject)
            return self._keys.setdefault((case_id, subject, epoch), bytes(key))

    def destroy(self, case_id: str, subject: str | None = None) -> int:
        with self._lock:
            doomed = [k for k in self._keys if k[0] == case_id and subject in (None, k[1])]
            for k in doomed:
                del self._keys[k]
            self._tombs.add((case_id, subject))
            return len(doomed)

    def destroyed(self, case_id: str, subject: str) -> bool:
        with self._lock:
            return self._dead(case_id, subject)

    def epoch(self) -> int:
        with self._lock:
            return self._epoch

    def rotate(self) -> int:
        with self._lock:
            self._epoch += 1
            return self._epoch

    def close(self) -> None:
        pass


#: the key store's tables in SQLite; prefixed, because a host may keep them in a file of its own
#: tables (the events' file, say).  A tombstone's subject is NULL for the whole case.
_SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS mediation_keys (
        case_id TEXT    NOT NULL,
        subject TEXT    NOT NULL,
        epoch   INTEGER NOT NULL CHECK (epoch >= 1),
        key     BLOB    NOT NULL,
        PRIMARY KEY (case_id, subject, epoch)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS mediation_key_tombstones (
        case_id TEXT NOT NULL,
        subject TEXT
    )""",
    """CREATE UNIQUE INDEX IF NOT EXISTS mediation_key_tombstones_name
        ON mediation_key_tombstones (case_id, coalesce(subject, ''), subject IS NULL)""",
    """CREATE TABLE IF NOT EXISTS mediation_key_meta (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        epoch INTEGER NOT NULL CHECK (epoch >= 1)
    )""",
    "INSERT OR IGNORE INTO mediation_key_meta (id, epoch) VALUES (1, 1)",
)
#: whether a tombstone covers (case_id, subject): the subject's own, or the whole case's
_SQLITE_DEAD = (
    "EXISTS (SELECT 1 FROM mediation_key_tombstones WHERE case_id = ? "
    "AND (subject IS NULL OR subject = ?))"
)


@contextlib.contextmanager
def _sqlite_errors(failed: str, case: str | None = None) -> Iterator[None]:
    """The one place where :class:`SQLiteKeyStore`'s ``sqlite3`` errors become
    :class:`~mediation.StoreError` (the original as ``__cause__``); ``failed`` begins the message."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"{failed}: {exc}", case=case) from exc


def _create_private(path: str) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (an existing file keeps its mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class SQLiteKeyStore:
    """Keys in a SQLite file of their own (``path``; created with mode 0600), apart from the events.

    Threads share one connection under a lock; processes share the file: :meth:`create`,
    :meth:`destroy` and :meth:`rotate` are ``BEGIN IMMEDIATE`` transactions, so writers wait for
    each other (up to ``timeout`` seconds) and, of two creating the same key, both get the
    first one's.

    No copy of a destroyed key stays in the files: deleted content is overwritten
    (``secure_delete``), the file of its own uses a rollback journal that is deleted at each commit
    (``journal_mode=DELETE``), temporary tables stay in memory, and when the file is in WAL mode
    (a host may keep the keys in the events' file, which is) the log is checkpointed into the
    database and truncated after a destroy.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        #: the key store's file
        self.path = os.fspath(path)
        self._lock = threading.RLock()
        failed = f"cannot open the key store {self.path!r}"
        try:
            if self.path != ":memory:":
                _create_private(self.path)
        except OSError as exc:
            raise StoreError(f"{failed}: {exc}") from exc
        with _sqlite_errors(failed):
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=timeout, check_same_thread=False
            )
            try:
                for pragma in (
                    f"busy_timeout={int(timeout * 1000)}",
                    "secure_delete=ON",
                    "temp_store=MEMORY",
                    "synchronous=FULL",
                ):
                    self._conn.execute(f"PRAGMA {pragma}")
                # WAL is a property of the file (the host's): keep it; else no journal outlives
                # its transaction
                (mode,) = self._conn.execute("PRAGMA journal_mode").fetchone()
                if str(mode).lower() != "wal":
                    self._conn.execute("PRAGMA journal_mode=DELETE")
                with self._writing(failed) as conn:
                    for statement in _SQLITE_SCHEMA:
                        conn.execute(statement)
            except BaseException:
                self._conn.close()
                raise

    @contextlib.contextmanager
    def _writing(self, failed: str, case: str | None = None) -> Iterator[sqlite3.Connection]:
        """The connection, held by this thread, in a ``BEGIN IMMEDIATE`` transaction that commits
        when the block ends and rolls back when it raises (its own errors are left as they are)."""
        with self._lock:
            with _sqlite_errors(failed, case):
                self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                with _sqlite_errors(failed, case):
                    self._conn.execute("COMMIT")
            finally:
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")

    def get(self, case_id: str, subject: str, epoch: int) -> bytes | None:
        with self._lock, _sqlite_errors(f"reading a key of case {case_id} failed", case_id):
            row = self._conn.execute(
                "SELECT key FROM mediation_keys WHERE case_id = ? AND subject = ? AND epoch = ? "
                f"AND NOT {_SQLITE_DEAD}",
                (case_id, subject, epoch, case_id, subject),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def create(self, case_id: str, subject: str, epoch: int, key: bytes) -> bytes:
        failed = f"creating a key of case {case_id} failed"
        with self._writing(failed, case_id) as conn, _sqlite_errors(failed, case_id):
            if conn.execute(f"SELECT {_SQLITE_DEAD}", (case_id, subject)).fetchone()[0]:
                raise destroyed_error(case_id, subject)
            conn.execute(
                "INSERT OR IGNORE INTO mediation_keys (case_id, subject, epoch, key) "
                "VALUES (?, ?, ?, ?)",
                (case_id, subject, epoch, bytes(key)),
            )
            (stored,) = conn.execute(
                "SELECT key FROM mediation_keys WHERE case_id = ? AND subject = ? AND epoch = ?",
                (case_id, subject, epoch),
            ).fetchone()
        return bytes(stored)

    def destroy(self, case_id: str, subject: str | None = None) -> int:
        """See :meth:`KeyStore.destroy`.  When the file is in WAL mode, the log is then
        checkpointed and truncated; if readers keep that from finishing within the timeout,
        :class:`~mediation.StoreError` says so (the keys are destroyed, but a copy may remain in
        the log: destroy again once they are done)."""
        failed = f"destroying the keys of case {case_id} failed"
        with self._lock:
            with self._writing(failed, case_id) as conn, _sqlite_errors(failed, case_id):
                cur = conn.execute(
                    "DELETE FROM mediation_keys WHERE case_id = ? AND (? IS NULL OR subject = ?)",
                    (case_id, subject, subject),
                )
                count = cur.rowcount
                conn.execute(
                    "INSERT OR IGNORE INTO mediation_key_tombstones (case_id, subject) "
                    "VALUES (?, ?)",
                    (case_id, subject),
                )
            with _sqlite_errors(failed, case_id):
                # outside WAL mode this does nothing (and answers 0, -1, -1)
                busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise StoreError(
                f"the keys of case {case_id} were destroyed, but readers of {self.path!r} kept "
                "the write-ahead log (which may still hold them) from being truncated: destroy "
                "them again once the readers are done",
                case=case_id,
            )
        return count

    def destroyed(self, case_id: str, subject: str) -> bool:
        with self._lock, _sqlite_errors(f"reading the tombstones of case {case_id} failed"):
            row = self._conn.execute(f"SELECT {_SQLITE_DEAD}", (case_id, subject)).fetchone()
        return bool(row[0])

    def epoch(self) -> int:
        with self._lock, _sqlite_errors("reading the key epoch failed"):
            (epoch,) = self._conn.execute(
                "SELECT epoch FROM mediation_key_meta WHERE id = 1"
            ).fetchone()
        return int(epoch)

    def rotate(self) -> int:
        failed = "rotating the key epoch failed"
        with self._writing(failed) as conn, _sqlite_errors(failed):
            conn.execute("UPDATE mediation_key_meta SET epoch = epoch + 1 WHERE id = 1")
            (epoch,) = conn.execute("SELECT epoch FROM mediation_key_meta WHERE id = 1").fetchone()
        return int(epoch)

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SQLiteKeyStore({self.path!r})"


class ReadThrough:
    """A read-only view of a key store that remembers what it read of one case at a time: for one
    verification run, which opens every sealed value of a store case by case and would otherwise
    read each case's keys once per value (asking for another case forgets the last one's, so a
    run over any number of cases holds a few keys).  One per verifying thread: it is not safe to
    share between threads.  Never for the live path: a key remembered here would outlive its
    erasure."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys
        self._case: str | None = None
        self._read: dict[tuple[str, int], bytes | None] = {}
        self._dead: dict[str, bool] = {}

    def _of(self, case_id: str) -> None:
        if case_id != self._case:
            self._case = case_id
            self._read.clear()
            self._dead.clear()

    def get(self, case_id: str, subject: str, epoch: int) -> bytes | None:
        self._of(case_id)
        name = (subject, epoch)
        if name not in self._read:
            self._read[name] = self._keys.get(case_id, subject, epoch)
        return self._read[name]

    def destroyed(self, case_id: str, subject: str) -> bool:
        self._of(case_id)
        if subject not in self._dead:
            self._dead[subject] = self._keys.destroyed(case_id, subject)
        return self._dead[subject]

    def create(self, case_id: str, subject: str, epoch: int, key: bytes) -> bytes:
        raise TypeError("a read-through key store is read-only")

    def destroy(self, case_id: str, subject: str | None = None) -> int:
        raise TypeError("a read-through key store is read-only")

    def epoch(self) -> int:
        return self._keys.epoch()

    def rotate(self) -> int:
        raise TypeError("a read-through key store is read-only")

    def close(self) -> None:
        pass
