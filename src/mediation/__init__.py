"""mediation: community dispute mediation (人民调解) as an auditable state machine.

申请 — 登记 — 会议 — 协商 — 协议 — 回访, with role and relationship checks on every command and
an append-only, hash-chained event log.  Commands live in :mod:`mediation.commands`; hypothesis
strategies and the store conformance suite in :mod:`mediation.testing`.
"""

from . import commands
from ._audit import Fault, FaultKind, Verdict, replay, verify
from ._authz import Actor, Directory, Grant, StaticDirectory
from ._calendar import Calendar, CalendarNotCovered
from ._case import Case, CaseSummary
from ._deadlines import Deadline, Policy
from ._errors import (
    CaseExists,
    CaseNotFound,
    ClockSkew,
    ConcurrencyConflict,
    GuardFailed,
    IllegalTransition,
    IntegrityViolation,
    InvalidCommand,
    KeyDestroyed,
    MediationError,
    NotPermitted,
    OutcomeUnknown,
    RequestConflict,
    StoreError,
)
from ._events import Event, StoredEvent, canonical_bytes, event_hash
from ._keys import KeyStore, MemoryKeyStore, SQLiteKeyStore
from ._privacy import AESGCMVault, SealBroken, Vault
from ._roster import Roster, RosterEntry, rosters_of
from ._service import CaseService, Permission
from ._spec import Confidentiality, DeadlineSpec, FieldKind, PeopleRule, PersonalField, workflow_of
from ._spec import register as register_workflow
from ._stats import Statistics
from ._text import Text
from ._views import CaseView, TimelineEntry
from ._workflow import WORKFLOW, CommandSpec, GuardSpec, Relation, Role, Stage, StateSpec, Workflow
from .stores import MemoryStore, SQLiteStore, Store
from .stores._base import DeadlineWarning

__version__ = "0.1.0"

__all__ = [
    "WORKFLOW",
    "AESGCMVault",
    "Actor",
    "Calendar",
    "CalendarNotCovered",
    "Case",
    "CaseExists",
    "CaseNotFound",
    "CaseService",
    "CaseSummary",
    "CaseView",
    "ClockSkew",
    "CommandSpec",
    "ConcurrencyConflict",
    "Confidentiality",
    "Deadline",
    "DeadlineSpec",
    "DeadlineWarning",
    "Directory",
    "Event",
    "Fault",
    "FaultKind",
    "FieldKind",
    "Grant",
    "GuardFailed",
    "GuardSpec",
    "IllegalTransition",
    "IntegrityViolation",
    "InvalidCommand",
    "KeyDestroyed",
    "KeyStore",
    "MediationError",
    "MemoryKeyStore",
    "MemoryStore",
    "NotPermitted",
    "OutcomeUnknown",
    "PeopleRule",
    "Permission",
    "PersonalField",
    "Policy",
    "Relation",
    "RequestConflict",
    "Role",
    "Roster",
    "RosterEntry",
    "SQLiteKeyStore",
    "SQLiteStore",
    "SealBroken",
    "Stage",
    "StateSpec",
    "StaticDirectory",
    "Statistics",
    "Store",
    "StoreError",
    "StoredEvent",
    "Text",
    "TimelineEntry",
    "Vault",
    "Verdict",
    "Workflow",
    "__version__",
    "canonical_bytes",
    "commands",
    "event_hash",
    "register_workflow",
    "replay",
    "rosters_of",
    "verify",
    "workflow_of",
]
