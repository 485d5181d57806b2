"""The closed vocabularies of the domain, as enums: stages, roles, relations and the values of the
payload fields that take one of a fixed set of words.  A leaf module: it imports nothing of the
library, so the declaration, the payload classes and the fold can all use it."""

from __future__ import annotations

import enum

__all__ = ["NEW", "Relation", "Role", "Stage"]


class Stage(enum.Enum):
    """The six stages of the flow 申请—登记—会议—协商—协议—回访."""

    APPLY = ("apply", "申请")
    REGISTER = ("register", "登记")
    MEETING = ("meeting", "会议")
    NEGOTIATE = ("negotiate", "协商")
    AGREE = ("agree", "协议")
    FOLLOW_UP = ("follow_up", "回访")

    @property
    def en(self) -> str:
        return self.value[0]

    @property
    def zh(self) -> str:
        return self.value[1]


class Role(str, enum.Enum):
    """Global roles, asserted by the host app per committee."""

    MEDIATOR = "mediator"
    DIRECTOR = "director"
    GRID_WORKER = "grid_worker"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    SYSTEM = "system"


class Relation(str, enum.Enum):
    """Relations to one case, derived from that case's own event log."""

    APPLICANT = "applicant"
    RESPONDENT = "respondent"
    AGENT = "agent"
    LEAD_MEDIATOR = "lead_mediator"
    CO_MEDIATOR = "co_mediator"
    INVITEE = "invitee"


#: The state of a case before its first event (the "—" of DOMAIN.md); not a domain state.
NEW = "new"
