"""The signer's own memory, outside the database: per store, the last tree head it signed.

Whoever runs the database can roll the store back and the checkpoint log beside it together, or
rewrite a chain and delete the log; the log alone cannot show either to the signer.  The signer
therefore keeps a small **state file** of its own (by default beside its private key, written
atomically with mode 0600), recording for each store it signs the size, root and hash of the last
store checkpoint it issued, and refuses (:class:`CheckpointRefused`) to sign a store whose log does
not hold that checkpoint: a deleted, rolled-back or replaced log.  The store itself must then still
extend every case head of the log's tree (:func:`~mediation.audit.issue_checkpoint`).

A store is named by a **store id** the signer chooses (``--store-id``), by default
:func:`default_store_id`: the database's location without credentials.  It is signed into every
store checkpoint; nothing in the database decides it, so a database administrator cannot make the
signer take a rolled-back store for a new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from .._files import atomic_write_text
from .keys import CheckpointError
from .records import StoreCheckpoint

__all__ = [
    "CheckpointRefused",
    "SignedHead",
    "SignerState",
    "SignerStateError",
    "default_store_id",
    "locked",
]

_FORMAT = "mediation-signer-state"
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


class CheckpointRefused(CheckpointError):
    """The signer (or a witness) refuses a checkpoint: the store or its checkpoint log is not
    consistent with what it signed (or saw) before.  An integrity finding: the command exits 1.

    ``reason`` is one of ``log_missing`` (the log holds none of the checkpoints the signer last
    issued), ``log_rolled_back`` (the log ends before it), ``log_diverged`` (the log holds another
    tree), ``log_altered`` (the log's leaves do not hash to its signed roots), ``unknown_store``
    (a log signed by this key, but no state for the store: pass ``adopt``), ``witness_ahead`` /
    ``witness_diverged`` (a witness has seen a larger or different tree) and ``inconsistent``
    (a witness refused a tree head that does not extend its latest).  ``store_id`` names the store,
    ``signed_size`` the tree size signed (or witnessed) before and ``found_size`` the one found."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        store_id: str,
        signed_size: int | None = None,
        found_size: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.reason = reason
        self.store_id = store_id
        self.signed_size = signed_size
        self.found_size = found_size

    def fields(self) -> dict[str, object]:
        out = super().fields()
        out.update(reason=self.reason, store_id=self.store_id)
        for name in ("signed_size", "found_size", "line"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


class SignerStateError(CheckpointError):
    """The signer's state file cannot be used (not JSON, not a state file, another key's)."""


def default_store_id(url: str | os.PathLike[str]) -> str:
    """A store's default id: ``sqlite:`` and the database file's absolute, resolved path, or
    ``postgresql://HOST:PORT/DBNAME`` (no user, no password, no other option; with
    ``?search_path=SCHEMA`` when the connection sets one).  What the signer's command line names,
    not anything the database says."""
    from ..stores._open import parse_url

    parsed = parse_url(url)
    if not parsed.postgres:
        return "sqlite:" + os.path.realpath(parsed.target)
    from psycopg.conninfo import conninfo_to_dict  # a PostgreSQL store needs psycopg anyway

    try:
        values = {k: str(v) for k, v in conninfo_to_dict(parsed.target).items() if v is not None}
    except Exception as exc:  # psycopg.ProgrammingError: not a connection string
        raise CheckpointError(
            f"cannot name the store {parsed.display}: {exc}; give a store id"
        ) from exc
    host = values.get("host", "localhost")
    port = values.get("port", "5432")
    dbname = values.get("dbname", values.get("user", ""))
    path = re.search(r"search_path\s*=\s*([^\s,]+)", values.get("options", ""))
    schema = f"?search_path={path[1]}" if path else ""
    return f"postgresql://{host}:{port}/{dbname}{schema}"


@attrs.frozen
class SignedHead:
    """What the signer remembers of one store: the last store checkpoint it issued."""

    size: int
    root: str
    head: str  # the checkpoint's hash (what the next one names as ``prev``)
    issued_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": self.root,
            "head": self.head,
            "issued_at": self.issued_at,
        }


@attrs.frozen
class SignerState:
    """The signer's state file: for one key, the last tree head signed per store id.

    :meth:`load` reads it (a missing file is an empty state), :meth:`with_head` records a new
    checkpoint, :meth:`save` writes it atomically (:func:`mediation._files.atomic_write`: mode
    0600, fsynced, put in place only when complete; the old one stays on failure)."""

    path: str
    key: str = ""  # the key id it was written for; "" for a new file
    stores: Mapping[str, SignedHead] = attrs.field(factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str], key: str = "") -> SignerState:
        """Read the state at ``path`` for the key whose id is ``key``: a state written for another
        key is refused (:class:`SignerStateError`)."""
        where = os.fspath(path)
        try:
            with open(where, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return cls(where, key, {})
        except OSError as exc:
            raise SignerStateError(f"cannot read the signer state {where}: {exc.strerror}") from exc
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SignerStateError(f"{where} is not a signer state file: {exc}") from exc
        stores: dict[str, SignedHead] = {}
        try:
            if not isinstance(obj, dict) or obj.get("format") != _FORMAT or obj.get("version") != 1:
                raise ValueError("not a mediation signer state (format, version 1)")
            written_for = obj.get("key")
            if not isinstance(written_for, str) or not _HEX64.match(written_for):
                raise ValueError("no key id")
            raw = obj.get("stores")
            if not isinstance(raw, dict):
                raise ValueError("no stores")
            for store_id, entry in raw.items():
                if not isinstance(entry, dict) or set(entry) != {
                    "size",
                    "root",
                    "head",
                    "issued_at",
                }:
                    raise ValueError(f"store {store_id!r}: expected size, root, head, issued_at")
                size, root, head, at = (entry[k] for k in ("size", "root", "head", "issued_at"))
                if (
                    type(size) is not int
                    or size < 0
                    or not isinstance(root, str)
                    or not _HEX64.match(root)
                    or not isinstance(head, str)
                    or not _HEX64.match(head)
                    or not isinstance(at, str)
                ):
                    raise ValueError(f"store {store_id!r}: a field has the wrong form")
                stores[store_id] = SignedHead(size, root, head, at)
        except ValueError as exc:
            raise SignerStateError(f"{where} is not a usable signer state: {exc}") from exc
        if key and written_for != key:
            raise SignerStateError(
                f"{where} is the state of key {written_for[:16]}, not of key {key[:16]}: "
                "give each key its own state file",
                message_zh=f"{where} 是密钥 {written_for[:16]} 的签名状态，不是密钥 {key[:16]} 的",
            )
        return cls(where, written_for, stores)

    def with_head(self, store_id: str, checkpoint: StoreCheckpoint) -> SignerState:
        """The state after signing ``checkpoint`` of ``store_id``."""
        head = SignedHead(checkpoint.size, checkpoint.root, checkpoint.hash, checkpoint.issued_at)
        return attrs.evolve(self, key=checkpoint.key, stores={**self.stores, store_id: head})

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": 1,
            "key": self.key,
            "stores": {k: v.to_json() for k, v in sorted(self.stores.items())},
        }

    def save(self) -> None:
        """Write the state atomically, mode 0600."""
        text = json.dumps(self.to_json(), ensure_ascii=False, indent=1, sort_keys=True) + "\n"
        try:
            with atomic_write_text(self.path) as f:  # mode 0600, fsynced, renamed into place
                f.write(text)
        except OSError as exc:
            raise SignerStateError(
                f"cannot write the signer state {self.path}: {exc.strerror}"
            ) from exc


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` + ``.lock`` (created, 0600) for the block, so that two
    signers (or two publishers to one witness) do not interleave; a no-op where ``fcntl`` is
    missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise CheckpointError(f"cannot lock {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
