"""Personal data sealed in the log, so that it can be erased without breaking the chain (PIPL 47).

What is sealed is declared once, on the workflow: ``Workflow.personal`` lists the members of a
person object (a party, an agent) that hold personal information, each with its kind (name, phone,
ID number, address, employer, health, minor, bank account); ``CommandSpec.persons`` names the
payload members that hold person objects, and ``CommandSpec.sealed`` the free-text members (the
description, minutes, proposals, the agreement's text).  Before an accepted command's event is
encoded, the service replaces each such value that is not empty by a **sealed value**, an object of
its own type in the canonical body::

    {"key": 1, "sealed": "<base64url(nonce || ciphertext || tag)>"}

AES-256-GCM under a key of the case and the person (``subject``: the person object's ``id``; ``""``
for the case's free text) of key generation ``key`` (the epoch, :meth:`KeyStore.rotate`).  The
associated data binds the ciphertext to its place: the case, the event's seq, the member's JSON
pointer, the subject and the epoch, so a sealed value moved to another event, member, person or
case no longer opens.  User text is always a string, so it can never be taken for a sealed value.

The log stores and hashes the sealed value, never the plaintext; destroying the keys
(:meth:`Vault.erase`, after an ``erase_personal_data`` event) makes the values unreadable while every
hash, and so every verification, stays as it was.  Decisions never read a sealed value: the live
path decides on the payload with a stand-in (``"[sealed]"``) in place of each value it will seal,
as replay does on the sealed payload (:func:`standins`), so both decide alike.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, runtime_checkable

import attrs

from ._errors import InvalidCommand, MediationError, SealBroken
from ._keys import CASE, KeyStore, MemoryKeyStore

if TYPE_CHECKING:
    from ._events import Event
    from ._spec import CommandSpec, FieldKind, Workflow

__all__ = [
    "ERASED",
    "SEALED_STANDIN",
    "TAMPERED",
    "UNOPENED",
    "AESGCMVault",
    "Marker",
    "Opened",
    "SealBroken",
    "Vault",
    "check_sealed",
    "is_sealed",
    "open_payload",
    "person_places",
    "replace_places",
    "seal_payload",
    "sealed_places",
    "standins",
    "unopened",
]

#: what a decision and a strict replay see in place of a sealed value (a text every text field
#: accepts): the decision never reads personal data
SEALED_STANDIN = "[sealed]"


class Marker(str):
    """What a view shows in place of a sealed value it could not open: its own type, so that user
    text that happens to read ``[erased]`` is never taken for one (it is masked like any text)."""

    __slots__ = ()


#: what a view shows for a sealed value whose keys were destroyed (erasure)
ERASED = Marker("[erased]")
#: what a view shows for a sealed value it does not open (no vault, a viewer not entitled, or a
#: key store that lacks the key without an erasure having destroyed it)
UNOPENED = Marker("[sealed]")
#: what a view shows for a sealed value that does not authenticate (tampered with)
TAMPERED = Marker("[tampered]")

#: unpadded base64url in the one spelling an encoder writes: a last group of two or three
#: characters carries no bits beyond the blob's (so the text is the blob's only spelling)
_B64 = re.compile(
    r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?"
)
#: nonce (12) + tag (16): the shortest blob; the longest sealed text is far below the maximum
_MIN_BLOB, _MAX_BLOB = 28, 1 << 20
#: the text lengths of those blobs (4 characters for every 3 bytes, unpadded)
_MIN_TEXT, _MAX_TEXT = -(-_MIN_BLOB * 4 // 3), -(-_MAX_BLOB * 4 // 3)
_MAX_EPOCH = (1 << 31) - 1


@runtime_checkable
class Vault(Protocol):
    """Seals and opens the personal data of one case; a host plugs in its KMS or HSM here.

    ``context`` is the associated data the library binds (case, event, member, subject); the vault
    adds the key epoch it seals under and returns it with the blob (nonce, ciphertext and tag).
    """

    def seal(self, case_id: str, subject: str, plaintext: str, context: bytes) -> tuple[int, bytes]:
        """``(epoch, blob)``; raises :class:`~mediation.KeyDestroyed` once the subject's (or the
        case's) keys were destroyed."""
        ...

    def open(
        self, case_id: str, subject: str, epoch: int, blob: bytes, context: bytes
    ) -> str | None:
        """The plaintext; None once the key was destroyed (erasure); :class:`SealBroken` if it
        does not authenticate, or (``missing``) its key is not there though none was destroyed."""
        ...

    def erase(self, case_id: str, subject: str | None = None) -> int:
        """Destroy the keys of ``subject`` in the case (None: of the whole case) for good."""
        ...


class AESGCMVault:
    """A :class:`Vault` with one random 256-bit AES-GCM key per case, subject and epoch, kept in
    ``keys`` (a :class:`~mediation.KeyStore`; a :class:`~mediation.MemoryKeyStore` by default).
    Keys are read from the key store on every use and never cached, so that an erasure by any
    process takes effect in every other at once."""

    def __init__(self, keys: KeyStore | None = None) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise MediationError(
                "sealing personal data needs the cryptography package: pip install mediation"
            ) from exc
        from cryptography.exceptions import InvalidTag

        self._aead = AESGCM
        self._invalid = InvalidTag
        if keys is not None and not isinstance(keys, KeyStore):  # a dict, as before 0.2
            raise InvalidCommand(
                f"keys must be a KeyStore (get, create, destroy, destroyed, epoch, rotate), not "
                f"a {type(keys).__name__}: MemoryKeyStore, SQLiteKeyStore or the store's "
                "key_store()",
                field="keys",
            )
        self.keys: KeyStore = keys if keys is not None else MemoryKeyStore()

    @staticmethod
    def _aad(context: bytes, epoch: int) -> bytes:
        return context + b"\x00" + str(epoch).encode()

    def seal(self, case_id: str, subject: str, plaintext: str, context: bytes) -> tuple[int, bytes]:
        epoch = self.keys.epoch()
        key = self.keys.get(case_id, subject, epoch)
        if key is None:
            key = self.keys.create(case_id, subject, epoch, self._aead.generate_key(bit_length=256))
        nonce = os.urandom(12)
        sealed = self._aead(key).encrypt(nonce, plaintext.encode(), self._aad(context, epoch))
        return epoch, nonce + sealed

    def open(
        self, case_id: str, subject: str, epoch: int, blob: bytes, context: bytes
    ) -> str | None:
        key = self.keys.get(case_id, subject, epoch)
        if key is None:
            if self.keys.destroyed(case_id, subject):
                return None
            raise SealBroken(
                f"case {case_id}: no key of epoch {epoch} for "
                f"{'the case' if subject == CASE else subject}, and none was destroyed",
                case=case_id,
                missing=True,
            )
        try:
            opened = self._aead(key).decrypt(blob[:12], blob[12:], self._aad(context, epoch))
            return opened.decode()
        except (self._invalid, ValueError, UnicodeDecodeError) as exc:
            raise SealBroken(
                f"a sealed value of case {case_id} does not open with its key", case=case_id
            ) from exc

    def erase(self, case_id: str, subject: str | None = None) -> int:
        return self.keys.destroy(case_id, subject)

    def rotate(self) -> int:
        """Start a new key epoch: values sealed from now on use new keys; old ones keep theirs."""
        return self.keys.rotate()


# -- the sealed value ------------------------------------------------------------------------------


def is_sealed(value: object) -> bool:
    """Whether ``value`` is an object of a sealed value's two members (its form is checked by
    :func:`check_sealed`)."""
    return isinstance(value, dict) and value.keys() == {"key", "sealed"}


def check_sealed(value: object, where: str) -> tuple[int, bytes]:
    """``(epoch, blob)`` of a sealed value; :class:`~mediation.InvalidCommand` if it is not one in
    the form the service writes (exactly ``key`` and ``sealed``, unpadded base64url)."""
    epoch, text = _sealed_form(value, where)
    return epoch, base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sealed_form(value: object, where: str) -> tuple[int, str]:
    """``(epoch, text)`` of a sealed value whose form :func:`check_sealed` accepts (the text then
    decodes, to a blob of an allowed length); :class:`~mediation.InvalidCommand` if it is not."""
    if not isinstance(value, dict) or value.keys() != {"key", "sealed"}:
        raise InvalidCommand(
            f"{where}: not a sealed value (an object of key and sealed)", field=where
        )
    epoch, text = value["key"], value["sealed"]
    if type(epoch) is not int or not 1 <= epoch <= _MAX_EPOCH:
        raise InvalidCommand(f"{where}: a sealed value's key is an epoch from 1", field=where)
    if type(text) is not str or not _B64.fullmatch(text):
        raise InvalidCommand(f"{where}: a sealed value is unpadded base64url", field=where)
    if not _MIN_TEXT <= len(text) <= _MAX_TEXT:
        raise InvalidCommand(f"{where}: a sealed value of a wrong length", field=where)
    return epoch, text


def _encode(blob: bytes) -> str:
    return base64.urlsafe_b64encode(blob).decode("ascii").rstrip("=")


def context(case_id: str, seq: int, pointer: str, subject: str) -> bytes:
    """The associated data the library binds a sealed value to (the vault adds the epoch)."""
    return "\x00".join(("mediation/sealed/1", case_id, str(seq), pointer, subject)).encode()


# -- where sealed values are -----------------------------------------------------------------------


@attrs.frozen
class Place:
    """Where a payload holds (or may hold) a sealed value."""

    #: the JSON pointer of the member in the payload (``/applicants/0/phone``)
    pointer: str
    #: whose keys seal it: a person's id, or ``""`` (:data:`~mediation._keys.CASE`) for free text
    subject: str
    #: the kind of information, which sets its mask (:mod:`mediation._masks`)
    kind: FieldKind
    #: the member's name
    member: str


def _is_object(value: object) -> TypeGuard[Mapping[str, Any]]:
    """A JSON object (a ``dict`` first: the ``Mapping`` check is an ABC's, slow in a replay)."""
    return type(value) is dict or isinstance(value, Mapping)


def _people(payload: Mapping[str, Any], member: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    value = payload.get(member)
    if isinstance(value, list):
        for i, person in enumerate(value):
            if _is_object(person):
                yield f"/{member}/{i}", person
    elif _is_object(value):
        yield f"/{member}", value


def person_places(
    workflow: Workflow, base: str, person: Mapping[str, Any]
) -> Iterator[tuple[Place, Any]]:
    """The personal members of one person object (at ``base`` in its payload), with their values;
    an organisation's name is not personal."""
    subject = person.get("id")
    if not isinstance(subject, str):
        return  # not a person object (a strict replay refuses it as malformed)
    natural = person.get("kind", "person") == "person"
    for field in workflow.personal:
        name = field.name
        if name in person and (natural or not field.natural_only):
            yield Place(f"{base}/{name}", subject, field.kind, name), person[name]


def sealed_places(
    workflow: Workflow, spec: CommandSpec, payload: Mapping[str, Any]
) -> list[tuple[Place, Any]]:
    """Every place of ``payload`` the declaration seals, with the value there (present members
    only): the personal members of its person objects, then its free-text members."""
    from ._spec import FieldKind

    found: list[tuple[Place, Any]] = []
    for member in spec.persons:
        for base, person in _people(payload, member):
            found.extend(person_places(workflow, base, person))
    text = FieldKind.TEXT
    for outer, last in spec.sealed_steps:
        nodes: list[tuple[str, Any]] = [("", payload)]
        for part in outer:  # ``*``: every item of a list (``ties.*.note``)
            if part == "*":
                nodes = [
                    (f"{at}/{i}", item)
                    for at, node in nodes
                    if isinstance(node, list)
                    for i, item in enumerate(node)
                ]
            else:
                nodes = [
                    (f"{at}/{part}", node[part])
                    for at, node in nodes
                    if _is_object(node) and part in node
                ]
        for at, node in nodes:
            if _is_object(node) and last in node:
                found.append((Place(f"{at}/{last}", CASE, text, last), node[last]))
    return found


def replace_places(
    workflow: Workflow,
    spec: CommandSpec,
    payload: Mapping[str, Any],
    each: Callable[[Place, Any], Any],
    places: list[tuple[Place, Any]] | None = None,
) -> dict[str, Any]:
    """``payload`` with ``each(place, value)`` at every sealed place (``places``, when the caller
    has found them already): copied on write (only the containers on the way to a changed value
    are copied, each once; ``payload`` itself if nothing changed)."""
    out: dict[str, Any] = payload if isinstance(payload, dict) else dict(payload)
    if not spec.persons and not spec.sealed:  # nothing declared: the hot path of most commands
        return out
    fresh: set[int] = set() if out is payload else {id(out)}  # the containers copied so far
    for place, value in sealed_places(workflow, spec, payload) if places is None else places:
        new = each(place, value)
        if new is value:
            continue
        if not fresh:
            out = dict(payload)
            fresh.add(id(out))
        *steps, last = place.pointer[1:].split("/")
        node: Any = out
        for part in steps:
            key: Any = int(part) if isinstance(node, list) else part
            child = node[key]
            if id(child) not in fresh:
                child = list(child) if isinstance(child, list) else dict(child)
                fresh.add(id(child))
                node[key] = child
            node = child
        node[last] = new
    return out


def seal_payload(
    vault: Vault,
    workflow: Workflow,
    spec: CommandSpec,
    case_id: str,
    seq: int,
    payload: Mapping[str, Any],
    places: list[tuple[Place, Any]] | None = None,
) -> dict[str, Any]:
    """``payload`` with every value the declaration seals, when it is text that is not blank,
    replaced by its sealed value for event ``seq`` of ``case_id`` (``places``: the payload's
    :func:`sealed_places`, when the caller has them)."""
    own = type(vault) is AESGCMVault

    def seal(place: Place, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            return value  # blank text says nothing, and a guard must see that it is blank
        epoch, blob = vault.seal(
            case_id, place.subject, value, context(case_id, seq, place.pointer, place.subject)
        )
        sealed = {"key": epoch, "sealed": _encode(blob)}
        if own:  # AESGCMVault writes the form replay accepts
            return sealed
        try:  # a host's vault must write what replay accepts
            check_sealed(sealed, place.pointer)
        except InvalidCommand as exc:
            raise MediationError(
                f"the vault sealed {place.pointer} out of the format: {exc.message} (an epoch "
                f"from 1 to {_MAX_EPOCH}, a blob of {_MIN_BLOB} bytes to 1 MiB)",
                case=case_id,
            ) from exc
        return sealed

    return replace_places(workflow, spec, payload, seal, places)


def standins(
    workflow: Workflow,
    spec: CommandSpec,
    payload: Mapping[str, Any],
    *,
    plaintext: bool = False,
    places: list[tuple[Place, Any]] | None = None,
) -> dict[str, Any]:
    """``payload`` as a decision sees it: each sealed value replaced by :data:`SEALED_STANDIN`
    (after checking it is one in the service's form: :class:`~mediation.InvalidCommand` if not);
    with ``plaintext``, each text that sealing will replace too (the live path, before sealing).
    ``places``: the payload's :func:`sealed_places`, when the caller has them."""

    def standin(place: Place, value: Any) -> Any:
        if isinstance(value, dict):
            _sealed_form(value, place.pointer)
            return SEALED_STANDIN
        if plaintext and isinstance(value, str) and value.strip():
            return SEALED_STANDIN
        return value

    return replace_places(workflow, spec, payload, standin, places)


def _open(
    vault: Vault | None, case_id: str, seq: int, place: Place, value: dict[str, Any]
) -> tuple[str | None, Marker | None]:
    """The plaintext of a sealed value, or the marker a view shows instead (one of the two)."""
    if vault is None:
        return None, UNOPENED
    try:
        epoch, blob = check_sealed(value, place.pointer)
        opened = vault.open(
            case_id, place.subject, epoch, blob, context(case_id, seq, place.pointer, place.subject)
        )
    except SealBroken as exc:
        return None, UNOPENED if exc.missing else TAMPERED
    except InvalidCommand:
        return None, TAMPERED
    return (None, ERASED) if opened is None else (opened, None)


def open_value(vault: Vault | None, case_id: str, seq: int, place: Place, value: Any) -> Any:
    """The plaintext of the sealed value at ``place`` of event ``seq``; :data:`ERASED` once its
    keys were destroyed, :data:`UNOPENED` without a vault (or without the key, none destroyed),
    :data:`TAMPERED` if it does not authenticate or is not a sealed value.  Any other value is
    returned as it is."""
    if not isinstance(value, dict):
        return value
    plain, marker = _open(vault, case_id, seq, place, value)
    return marker if marker is not None else plain


def open_payload(
    vault: Vault | None,
    workflow: Workflow,
    spec: CommandSpec,
    case_id: str,
    seq: int,
    payload: Mapping[str, Any],
) -> dict[str, Any]:
    """``payload`` of event ``seq`` with its sealed values opened (or marked, :func:`open_value`)."""
    return replace_places(
        workflow, spec, payload, lambda place, v: open_value(vault, case_id, seq, place, v)
    )


def broken_seals(
    vault: Vault,
    workflow: Workflow,
    spec: CommandSpec,
    case_id: str,
    seq: int,
    payload: Mapping[str, Any],
    places: list[tuple[Place, Any]] | None = None,
) -> list[str]:
    """The JSON pointers of the sealed values of an event that do not authenticate with their
    key (``places``: the payload's :func:`sealed_places`, when the caller has them).  A value
    whose key the key store does not hold (a store restored or imported without its keys) cannot
    be checked, and is not reported."""
    return [
        place.pointer
        for place, value in (sealed_places(workflow, spec, payload) if places is None else places)
        if isinstance(value, dict) and _open(vault, case_id, seq, place, value)[1] is TAMPERED
    ]


def unopened(workflow: Workflow, spec: CommandSpec, opened: Mapping[str, Any]) -> bool:
    """Whether a payload :func:`open_payload` opened still holds a value it could not open."""
    return any(is_marker(v) for _, v in sealed_places(workflow, spec, opened))


def is_marker(value: object) -> bool:
    """Whether ``value`` is what a view shows for a value it could not open (never user text)."""
    return isinstance(value, Marker)


class Opened:
    """The sealed values of one case's history, opened once with ``vault`` (or marked): the event
    payloads (:meth:`payload`) and any value folded from them (:meth:`value`: a party of the case,
    its description, the agreement), found by the sealed text they carry."""

    def __init__(
        self,
        vault: Vault | None,
        workflow: Workflow,
        case_id: str,
        history: Iterable[Event],
        erased: frozenset[str] = frozenset(),
    ) -> None:
        self._payloads: dict[int, Mapping[str, Any]] = {}
        self._by_blob: dict[str, Any] = {}
        # whose data the log says was erased: shown erased even before (or without) the keys'
        # destruction (a host that crashed in between; a key store restored from a backup)
        gone = "*" in erased
        for event in history:
            spec = workflow.find(event.type)
            if spec is None or not (spec.persons or spec.sealed):
                self._payloads[event.seq] = event.payload
                continue

            def each(place: Place, value: Any, seq: int = event.seq) -> Any:
                if isinstance(value, dict) and (gone or place.subject in erased):
                    opened: Any = ERASED
                else:
                    opened = open_value(vault, case_id, seq, place, value)
                blob = value.get("sealed") if isinstance(value, dict) else None
                if isinstance(blob, str) and not (
                    blob in self._by_blob and is_marker(opened)  # a forged copy elsewhere
                ):
                    self._by_blob[blob] = opened
                return opened

            self._payloads[event.seq] = replace_places(workflow, spec, event.payload, each)

    def payload(self, seq: int) -> Mapping[str, Any] | None:
        return self._payloads.get(seq)

    def value(self, value: Any) -> Any:
        """``value`` with every sealed value in it opened (recursively through objects and lists);
        a sealed value not found in the history is :data:`TAMPERED`."""
        if isinstance(value, dict):
            if is_sealed(value):
                blob = value.get("sealed")
                return self._by_blob.get(blob, TAMPERED) if isinstance(blob, str) else TAMPERED
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
