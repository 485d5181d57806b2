"""Personal data sealed per case, so that it can be erased without breaking the chain (PIPL 47).

With a vault, the service replaces the personal fields of every party and agent (a person's name,
and anyone's phone, address and ID number) by a token ``sealed:v1:<base64url(nonce || ciphertext)>``
before the event is encoded: AES-256-GCM under a key of that case alone, with the case id as
associated data.  The log stores and hashes the token, never the plaintext; erasing the case's key
(:meth:`AESGCMVault.erase`) makes the personal data unrecoverable while every hash, and so every
verification, stays exactly as it was.  Views unseal for those entitled to see; without the key they
show ``[erased]``.

Keys live outside the event log, in any mutable mapping (``dict``) or in :class:`SQLiteKeyStore`,
which a host may keep in another database than the events.  ``cryptography`` is needed
(``pip install mediation[crypto]``).
"""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Protocol

from ._errors import MediationError, StoreError
from ._spec import CommandSpec

__all__ = [
    "SEALED",
    "AESGCMVault",
    "SQLiteKeyStore",
    "Vault",
    "is_sealed",
    "seal_payload",
    "unseal_party",
]

SEALED = "sealed:v1:"
#: the personal fields of a party or agent; a person's name too, not an organisation's
PERSONAL_FIELDS = ("phone", "address", "id_number")


class Vault(Protocol):
    """Seals and unseals text for one case; ``erase`` forgets the case's key for good."""

    def seal(self, case_id: str, plaintext: str) -> str: ...

    def unseal(self, case_id: str, token: str) -> str | None:
        """The plaintext, or None once the case's key was erased."""
        ...

    def erase(self, case_id: str) -> None: ...


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED)


class AESGCMVault:
    """A :class:`Vault` with one random 256-bit AES-GCM key per case, kept in ``keys``."""

    def __init__(self, keys: MutableMapping[str, bytes] | None = None) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise MediationError(
                "sealing personal data needs the cryptography package: "
                "pip install 'mediation[crypto]'"
            ) from exc
        self._aead = AESGCM
        self.keys: MutableMapping[str, bytes] = keys if keys is not None else {}

    def _key(self, case_id: str, create: bool) -> bytes | None:
        key = self.keys.get(case_id)
        if key is None and create:
            # setdefault, not assignment: of two writers sealing for one case at once (threads,
            # processes), both must end up with the key that was stored first
            key = self.keys.setdefault(case_id, self._aead.generate_key(bit_length=256))
        return key

    def seal(self, case_id: str, plaintext: str) -> str:
        key = self._key(case_id, create=True)
        assert key is not None
        nonce = os.urandom(12)
        sealed = self._aead(key).encrypt(nonce, plaintext.encode(), case_id.encode())
        return SEALED + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def unseal(self, case_id: str, token: str) -> str | None:
        key = self._key(case_id, create=False)
        if key is None:
            return None
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.urlsafe_b64decode(token[len(SEALED) :].encode("ascii"))
            return self._aead(key).decrypt(raw[:12], raw[12:], case_id.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise MediationError(
                f"a sealed value of case {case_id} does not open with its key", case=case_id
            ) from exc

    def erase(self, case_id: str) -> None:
        self.keys.pop(case_id, None)


def _seal_person(vault: Vault, case_id: str, party: dict[str, Any]) -> dict[str, Any]:
    out = dict(party)
    fields = PERSONAL_FIELDS + (("name",) if party.get("kind", "person") == "person" else ())
    for field in fields:
        value = party.get(field)
        if value and not is_sealed(value):
            out[field] = vault.seal(case_id, value)
    return out


#: what a sealed value stands for when a payload is validated again without its key
SEALED_STANDIN = "[sealed]"


def _standin_person(person: object) -> object:
    if not isinstance(person, dict):
        return person
    fields = (*PERSONAL_FIELDS, "name")
    return {k: SEALED_STANDIN if k in fields and is_sealed(v) else v for k, v in person.items()}


def map_persons(
    spec: CommandSpec, payload: dict[str, Any], each: Callable[[Any], Any]
) -> dict[str, Any]:
    """A copy of ``payload`` with ``each`` applied to every person object of the members its
    declaration names in ``persons`` (each one object or a list of them)."""
    if not spec.persons:
        return payload
    out = dict(payload)
    for key in spec.persons:
        value = out.get(key)
        if isinstance(value, list):
            out[key] = [each(p) for p in value]
        elif key in out:
            out[key] = each(value)
    return out


def with_sealed_standins(spec: CommandSpec, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with each sealed personal value replaced by a stand-in its field accepts.

    Strict replay validates payloads against their command class; a sealed value is longer than the
    plaintext the class allows (a phone of 40 characters seals to about 90), and the plaintext was
    validated before it was sealed.  So the shape of a sealed payload is checked, not the length
    of the ciphertext.  Only the personal fields of parties and agents are replaced.
    """
    return map_persons(spec, payload, _standin_person)


class _Erased(Exception):
    """A sealed value no longer opens: its case's key was erased."""


def unseal_payload(
    vault: Vault, case_id: str, spec: CommandSpec, payload: dict[str, Any]
) -> dict[str, Any] | None:
    """``payload`` with its sealed personal values opened, to compare it with a plaintext one;
    None if a value no longer opens (the case's key was erased)."""

    def opened(person: Any) -> Any:
        if not isinstance(person, dict):
            return person
        out = dict(person)
        for field, value in person.items():
            if is_sealed(value):
                plain = vault.unseal(case_id, value)
                if plain is None:
                    raise _Erased
                out[field] = plain
        return out

    try:
        return map_persons(spec, payload, opened)
    except _Erased:
        return None


def seal_payload(vault: Vault, case_id: str, spec: CommandSpec, payload: dict[str, Any]) -> None:
    """Replace, in place, the personal fields of the people a payload carries (the members its
    declaration names in ``persons``)."""
    payload.update(map_persons(spec, payload, lambda p: _seal_person(vault, case_id, p)))


def unseal_party(vault: Vault | None, case_id: str, party: dict[str, Any]) -> dict[str, Any]:
    """A party's payload with its sealed fields opened (or marked ``[sealed]``/``[erased]``)."""
    if not any(is_sealed(v) for v in party.values()):
        return party
    out = dict(party)
    for field, value in party.items():
        if is_sealed(value):
            opened = vault.unseal(case_id, value) if vault is not None else None
            out[field] = (
                opened if opened is not None else ("[erased]" if vault is not None else "[sealed]")
            )
    return out


class SQLiteKeyStore(MutableMapping[str, bytes]):
    """Case keys in a SQLite table that, unlike the event table, allows DELETE (erasure).

    Safe to share between threads (one connection, used under a lock) and between processes
    (``setdefault`` keeps the key that was stored first).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                os.fspath(path), isolation_level=None, timeout=30.0, check_same_thread=False
            )
            # erased keys are overwritten on disk, not just unlinked from the b-tree
            self._conn.execute("PRAGMA secure_delete=ON")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS mediation_case_keys "
                "(case_id TEXT PRIMARY KEY, key BLOB NOT NULL)"
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the key store {path!r}: {exc}") from exc

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self._conn.execute(sql, args)
            except sqlite3.Error as exc:
                raise StoreError(f"the key store failed: {exc}") from exc

    def __getitem__(self, case_id: str) -> bytes:
        with self._lock:
            row = self._execute(
                "SELECT key FROM mediation_case_keys WHERE case_id = ?", (case_id,)
            ).fetchone()
        if row is None:
            raise KeyError(case_id)
        return bytes(row[0])

    def __setitem__(self, case_id: str, key: bytes) -> None:
        self._execute(
            "INSERT OR REPLACE INTO mediation_case_keys (case_id, key) VALUES (?, ?)",
            (case_id, key),
        )

    def setdefault(self, case_id: str, key: bytes | None = None) -> bytes:
        """The stored key of the case; ``key`` is stored first if there is none (atomically)."""
        if key is None:
            raise TypeError("SQLiteKeyStore.setdefault needs a key")
        with self._lock:
            self._execute(
                "INSERT OR IGNORE INTO mediation_case_keys (case_id, key) VALUES (?, ?)",
                (case_id, key),
            )
            return self[case_id]

    def __delitem__(self, case_id: str) -> None:
        cur = self._execute("DELETE FROM mediation_case_keys WHERE case_id = ?", (case_id,))
        if cur.rowcount == 0:
            raise KeyError(case_id)

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            rows = self._execute(
                "SELECT case_id FROM mediation_case_keys ORDER BY case_id"
            ).fetchall()
        return iter([r[0] for r in rows])

    def __len__(self) -> int:
        with self._lock:
            return int(self._execute("SELECT count(*) FROM mediation_case_keys").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
