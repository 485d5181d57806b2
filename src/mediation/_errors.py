"""The one exception tree of the library.

Every error is a :class:`MediationError` and carries structured fields (``case``, ``state``,
``command``, ``actor``, ``seq``) so that a host app can log or translate it without parsing the
message.  Errors raised by foreign libraries (``sqlite3``, ``psycopg``, ``transitions``) are caught
where they occur and re-raised as one of these, with the original as ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "CaseExists",
    "CaseNotFound",
    "ClockSkew",
    "ConcurrencyConflict",
    "GuardFailed",
    "IllegalTransition",
    "IntegrityViolation",
    "InvalidCommand",
    "KeyDestroyed",
    "MediationError",
    "NotPermitted",
    "OutcomeUnknown",
    "RequestConflict",
    "SealBroken",
    "StoreError",
]


class MediationError(Exception):
    """Root of every error this library raises.

    ``message_zh`` is the Chinese rendering of the message where one exists; ``str(err)`` is English.
    """

    def __init__(
        self,
        message: str,
        *,
        message_zh: str | None = None,
        case: str | None = None,
        state: str | None = None,
        command: str | None = None,
        actor: str | None = None,
        seq: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh or message
        self.case = case
        self.state = state
        self.command = command
        self.actor = actor
        self.seq = seq

    def fields(self) -> dict[str, object]:
        """The structured fields, for logging."""
        out: dict[str, object] = {"error": type(self).__name__, "message": self.message}
        for name in ("case", "state", "command", "actor", "seq"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


class InvalidCommand(MediationError, ValueError):
    """Bad input: unknown command, wrong payload types, naive datetime, oversized text, unknown party.

    ``field`` names the offending field where one can be named.  Nothing was changed.
    """

    def __init__(self, message: str, *, field: str | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.field = field

    def fields(self) -> dict[str, object]:
        out = super().fields()
        if self.field is not None:
            out["field"] = self.field
        return out


class KeyDestroyed(InvalidCommand):
    """The sealing keys of a person of a case, or of the whole case, were destroyed (erasure,
    PIPL 47): nothing new is sealed for them, so a command carrying their personal data is
    refused.  Nothing was changed."""


class NotPermitted(MediationError):
    """The actor holds no role or relation that permits this command on this case now."""


class IllegalTransition(MediationError):
    """The command is not allowed from the case's current state (or the case is closed)."""


class GuardFailed(MediationError):
    """A guard of the workflow declaration failed; ``guard`` and ``basis`` say which and why."""

    def __init__(
        self,
        message: str,
        *,
        guard: str,
        basis: str,
        message_zh: str | None = None,
        **kw: object,
    ) -> None:
        super().__init__(message, message_zh=message_zh, **kw)  # type: ignore[arg-type]
        self.guard = guard
        self.basis = basis

    def fields(self) -> dict[str, object]:
        out = super().fields()
        out["guard"] = self.guard
        out["basis"] = self.basis
        return out


class CaseNotFound(MediationError, LookupError):
    """No case with this id in the store."""


class CaseExists(MediationError):
    """A case with this id already exists."""


class StoreError(MediationError):
    """The store failed (I/O, schema, a database error); the append did not happen."""


class ConcurrencyConflict(StoreError):
    """Another writer appended to this case first; nothing was written.  Reload and retry."""

    def __init__(self, message: str, *, expected_seq: int, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.expected_seq = expected_seq

    def fields(self) -> dict[str, object]:
        out = super().fields()
        out["expected_seq"] = self.expected_seq
        return out


class OutcomeUnknown(StoreError):
    """The store lost contact after the write was sent: it may or may not have been committed.

    Nothing the library holds is changed by it.  Retry the command with the same ``request_id``:
    if the first attempt was committed, the retry returns its event instead of writing it again.
    """


class RequestConflict(MediationError):
    """The request id was already used on this case by another command or another actor.

    ``request_id`` names it and ``seq`` the event that holds it.  Nothing was written.
    """

    def __init__(self, message: str, *, request_id: str, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.request_id = request_id

    def fields(self) -> dict[str, object]:
        out = super().fields()
        out["request_id"] = self.request_id
        return out


class ClockSkew(MediationError):
    """The host's clock reads further before the case's last event than the service tolerates.

    ``clock`` is the host clock's reading and ``last`` the time of the case's last event (both in
    the log's UTC format); ``tolerance`` is the service's limit in seconds.  Nothing was written.
    """

    def __init__(
        self, message: str, *, clock: str, last: str, tolerance: float, **kw: object
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.clock = clock
        self.last = last
        self.tolerance = tolerance

    def fields(self) -> dict[str, object]:
        out = super().fields()
        out.update(clock=self.clock, last=self.last, tolerance=self.tolerance)
        return out


class IntegrityViolation(MediationError):
    """A stored history failed verification; ``verdict`` holds the details."""

    def __init__(self, message: str, *, verdict: object, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.verdict = verdict


class SealBroken(IntegrityViolation):
    """A sealed value does not open with its key: its ciphertext, nonce or associated data (the
    case, event, member, subject or key epoch it is bound to) was changed."""

    def __init__(self, message: str, *, missing: bool = False, **kw: object) -> None:
        super().__init__(message, verdict=None, **kw)
        #: the key is not in the key store, and no erasure destroyed it (a key store that does
        #: not belong to the log, or a sealed value moved under a key that never existed)
        self.missing = missing
