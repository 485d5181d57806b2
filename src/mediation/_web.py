"""The web boundary's implementation; the public names are re-exported by :mod:`mediation.web`."""

from __future__ import annotations

import copy
import datetime as _dt
import enum
import functools
import hashlib
import inspect
import json
import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from . import _commands, _validators
from ._calendar import CalendarNotCovered
from ._commands import COMMAND_TYPES, Command, from_payload, to_payload
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
    SealBroken,
    StoreError,
)
from ._events import format_time
from ._views import CaseView, TimelineEntry
from ._vocab import JudicialStatus
from ._workflow import WORKFLOW

if TYPE_CHECKING:
    from ._audit import Verdict
    from ._events import Event
    from ._service import Permission

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "PROBLEM_BASE",
    "PROBLEM_CONTENT_TYPE",
    "PROBLEM_TYPES",
    "Problem",
    "ProblemType",
    "command_from_json",
    "command_schema",
    "command_schemas",
    "event_json",
    "permissions_json",
    "problem",
    "timeline_json",
    "verdict_json",
    "view_json",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
PROBLEM_BASE = "https://mediation.invalid/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"

# -- commands from JSON -----------------------------------------------------------------------------


def _unknown_command(name: object) -> InvalidCommand:
    shown = name if isinstance(name, str) and name.isidentifier() else _validators._show(name)
    return InvalidCommand(
        f"unknown command {shown}; the workflow's commands are {', '.join(COMMAND_TYPES)}",
        message_zh=f"未知命令 {shown}",
        field="command",
    )


def _command_class(name: object) -> type[Command]:
    if not isinstance(name, str) or name not in COMMAND_TYPES:
        raise _unknown_command(name)
    return COMMAND_TYPES[name]


def command_from_json(name: str, data: object) -> Command:
    """The command ``name`` (a workflow command name, ``"apply"``, ``"sign"``...) built from a
    JSON-decoded body: an object whose members are the command's fields.

    Dates are ``YYYY-MM-DD``; date-times are RFC 3339 with ``Z`` or an offset (a naive one is
    refused).  Unknown or missing members, wrong types and bad values raise
    :class:`~mediation.InvalidCommand`, with ``field`` set where one field is at fault (``command``
    for an unknown name); nothing else is raised, whatever ``data`` holds.
    """
    cls = _command_class(name)
    command: Command = from_payload(cls, data)
    return command


# -- JSON Schema ------------------------------------------------------------------------------------


def _describe(cls: type) -> str:
    return " ".join(inspect.cleandoc(cls.__doc__ or "").split())


def _default_json(field: attrs.Attribute[Any]) -> Any:
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    return _commands._json_value(default)


def _refs(schema: Any) -> Iterable[str]:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            yield ref.removeprefix("#/$defs/")
        for value in schema.values():
            yield from _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _refs(value)


def _object_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        prop = _validators.json_schema_of(field.validator)
        if field.default is attrs.NOTHING:
            required.append(field.name)
        else:
            prop["default"] = _default_json(field)
        properties[field.name] = prop
    out: dict[str, Any] = {
        "title": cls.__name__,
        "description": _describe(cls),
        "type": "object",
        "properties": properties,
    }
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    out.update(copy.deepcopy(dict(getattr(cls, "json_schema_extra", {}))))
    for name in _refs(properties):
        if name not in defs:
            nested = getattr(_commands, name)
            defs[name] = {}  # reserve the name first: a class may refer to itself
            defs[name] = _object_schema(nested, defs)
    return out


@functools.cache
def _schema(name: str) -> Mapping[str, Any]:
    cls = COMMAND_TYPES[name]
    defs: dict[str, Any] = {}
    body = _object_schema(cls, defs)
    spec = WORKFLOW.command(name)
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        **body,
        "title": f"{cls.__name__}: {name} ({spec.zh})",
        "examples": [_example_json(name)],
    }
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return MappingProxyType(schema)


def command_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the body of command ``name``; a fresh copy each call.

    Derived from the command class: one property per field, with the schema its validator
    declares, a ``default`` where the field has one (it may then be omitted), ``required``
    otherwise, ``additionalProperties: false``, value objects in ``$defs``; ``description`` is the
    class's docstring and ``examples`` holds one valid body.  An unknown name raises
    :class:`~mediation.InvalidCommand`.
    """
    _command_class(name)
    return copy.deepcopy(dict(_schema(name)))


def command_schemas() -> dict[str, dict[str, Any]]:
    """:func:`command_schema` of every command, by name, in the declaration's order."""
    return {spec.name: command_schema(spec.name) for spec in WORKFLOW.commands}


# -- examples ---------------------------------------------------------------------------------------


def _doc(title: str) -> _commands.DocRef:
    return _commands.DocRef(hashlib.sha256(title.encode()).hexdigest(), "application/pdf", title)


@functools.cache
def _examples() -> Mapping[str, Command]:
    """One valid command of every kind, from the 天鹅堡 noise dispute of the demo."""
    c = _commands
    upstairs = c.Party("res-1402", "刘先生", phone="13900001402")
    downstairs = c.Party("res-1502", "陈女士", phone="13800001502")
    opening: dict[str, Any] = dict(
        committee="rongyue",
        category="邻里",
        subtype="噪声",
        description="15 楼住户投诉 14 楼夜间噪声",
        applicants=(downstairs,),
        respondents=(upstairs,),
    )
    parties = (downstairs.id, upstairs.id)
    examples: tuple[Command, ...] = (
        c.Apply(**opening),
        c.Report(**opening, source="early_warning", source_ref="alert-0417"),
        c.ReceiveTransfer(
            **{**opening, "committee": "shengli-street"},
            level="L2",
            origin="case-0417",
            origin_committee="rongyue",
            reason="涉及多个小区，需街道协调",
        ),
        c.RecordConsent(),
        c.Refuse("不同意调解，准备直接起诉"),
        c.Register(c.Scope(civil=True), note="邻里噪声纠纷，属于受理范围"),
        c.NotAccept("纠纷已由人民法院受理", "litigation"),
        c.AppointAgent(c.Party("agent-zhang", "张律师"), _doc("授权委托书")),
        c.AssignMediator("med-wang", lead=True),
        c.RequestRecusal("med-li", "调解员与被申请人系兄弟", (c.Tie("res-1402", "sibling"),)),
        c.DeclareConflict((c.Tie("res-1402", "interest", "曾为其装修房屋"),)),
        c.DecideRecusal("med-li", upheld=True, reason="近亲属，应当回避"),
        c.Consent("invitee", "cadre-zhao"),
        c.Invite("cadre-zhao", "street_cadre", _doc("保密承诺书-赵")),
        c.NotifyRights(parties),
        c.ScheduleMeeting(_dt.datetime(2026, 3, 5, 11, tzinfo=_dt.timezone.utc), "荣悦调解室"),
        c.OpenSession(),
        c.RecordMinutes("双方陈述；赵科长讲解《噪声污染防治法》"),
        c.ShareProposal("晚十点后停止装修与健身器材使用"),
        c.ReviseProposal(1, "晚十点后停止；跑步机加装减震垫"),
        c.DraftAgreement(
            c.AgreementContent(
                facts="14 楼夜间使用跑步机，噪声影响 15 楼住户休息",
                issues="夜间噪声",
                responsibilities="刘先生承担减噪责任",
                obligations="晚十点后不使用跑步机；加装减震垫",
                performance_method="自行整改",
                performance_place="天鹅堡 14 楼",
                performance_deadline=_dt.date(2026, 3, 12),
            ),
            document=_doc("调解协议书"),
        ),
        c.Sign("fingerprint"),
        c.RecordOralAgreement("刘先生当场同意晚十点后停止使用跑步机", _dt.date(2026, 3, 12)),
        c.RecordFollowUp("减震垫已安装，夜间无噪声", "yes", 5),
        c.ConfirmPerformed("双方满意"),
        c.Reopen("减震垫未按期安装，双方同意重新调解"),
        c.ProposeTermination("双方对赔偿金额分歧过大，调解无法达成协议", "litigation"),
        c.Terminate(parties_informed=True, notice=_doc("终止调解告知书")),
        c.Withdraw("双方已自行和解"),
        c.Escalate("楼栋调解未果，涉及多户"),
        c.Transfer("street_committee", "shengli-street", "涉及多个小区，需街道协调"),
        c.ExtendTerm(15, "等待物业出具整改方案"),
        c.Pause("appraisal", "渗漏原因鉴定"),
        c.Resume("鉴定报告已出"),
        c.RecordJudicialConfirmation(JudicialStatus.APPLIED, parties, court="华龙区人民法院"),
        c.Archive(),
        c.ErasePersonalData("PIPL 47(1)3 当事人撤回同意", "res-1502"),
    )
    return MappingProxyType({e.name: e for e in examples})


def _minimal_json(obj: Any) -> dict[str, Any]:
    """``to_payload(obj)`` without the members that hold their field's default, except a value
    object held directly (the scope of ``register``), which is shown whole."""
    full = to_payload(obj)
    out: dict[str, Any] = {}
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        if field.name not in full:  # a member added later, omitted while empty
            continue
        if attrs.has(type(value)):
            out[field.name] = full[field.name]
        elif field.default is not attrs.NOTHING and full[field.name] == _default_json(field):
            continue
        elif isinstance(value, tuple):
            out[field.name] = [_minimal_json(v) if attrs.has(type(v)) else v for v in value]
        else:
            out[field.name] = full[field.name]
    return out


def _example_json(name: str) -> dict[str, Any]:
    return _minimal_json(_examples()[name])


# -- problems ---------------------------------------------------------------------------------------


class ProblemType(NamedTuple):
    """One row of :data:`PROBLEM_TYPES`: the HTTP status, the slug of the ``type`` URI, titles."""

    status: int
    slug: str
    title: str
    title_zh: str


#: error class -> problem type; an error takes the entry of the nearest class of its MRO
PROBLEM_TYPES: Mapping[type[BaseException], ProblemType] = MappingProxyType(
    {
        MediationError: ProblemType(500, "mediation-error", "Internal error", "内部错误"),
        InvalidCommand: ProblemType(422, "invalid-command", "Invalid command", "命令无效"),
        NotPermitted: ProblemType(403, "not-permitted", "Not permitted", "无权操作"),
        CaseNotFound: ProblemType(404, "case-not-found", "Case not found", "案件不存在"),
        IllegalTransition: ProblemType(
            409, "illegal-transition", "Not allowed in this state", "当前状态下不允许"
        ),
        GuardFailed: ProblemType(409, "guard-failed", "A condition is not met", "条件未满足"),
        ConcurrencyConflict: ProblemType(
            409, "concurrency-conflict", "The case changed meanwhile", "案件已被他人更新"
        ),
        CaseExists: ProblemType(409, "case-exists", "Case already exists", "案件已存在"),
        RequestConflict: ProblemType(
            409, "request-conflict", "Request id already used", "请求编号已被使用"
        ),
        StoreError: ProblemType(503, "store-unavailable", "Storage unavailable", "存储不可用"),
        OutcomeUnknown: ProblemType(
            503,
            "outcome-unknown",
            "Outcome unknown: retry with the same request id",
            "结果未知：请以相同的请求编号重试",
        ),
        ClockSkew: ProblemType(503, "clock-skew", "Server clock is behind", "服务器时钟滞后"),
        CalendarNotCovered: ProblemType(
            500, "calendar-not-covered", "No holiday data for that year", "缺少该年节假日数据"
        ),
        IntegrityViolation: ProblemType(
            500, "integrity-violation", "Stored history failed verification", "案件记录校验失败"
        ),
        KeyDestroyed: ProblemType(
            409,
            "personal-data-erased",
            "The personal data of that person or case was erased",
            "该当事人或案件的个人信息已删除",
        ),
        SealBroken: ProblemType(
            500,
            "sealed-value-broken",
            "A sealed value does not open with its key",
            "加密的个人信息无法通过认证",
        ),
    }
)
#: what any exception that is not a :class:`~mediation.MediationError` becomes
_INTERNAL = ProblemType(500, "internal-error", "Internal server error", "服务器内部错误")
_INTERNAL_DETAIL = ("The server could not complete the request.", "服务器未能完成该请求。")
#: members of RFC 9457 and of this module that an error's fields never overwrite
_RESERVED = frozenset(("type", "title", "title_zh", "status", "detail", "detail_zh", "instance"))


@attrs.frozen
class Problem:
    """An HTTP error response: ``status`` and an RFC 9457 ``body`` to send as ``content_type``."""

    status: int
    body: dict[str, Any]
    content_type: str = PROBLEM_CONTENT_TYPE


def _problem_type(error: BaseException) -> ProblemType:
    if isinstance(error, MediationError):
        for cls in type(error).__mro__:
            kind = PROBLEM_TYPES.get(cls)
            if kind is not None:
                return kind
    return _INTERNAL


def problem(error: BaseException, *, instance: str | None = None) -> Problem:
    """The HTTP status and RFC 9457 problem body for ``error``.

    ``type``, ``title``, ``status`` and ``detail`` (English) are RFC 9457's; ``title_zh`` and
    ``detail_zh`` say the same in Chinese, and every structured field the error carries
    (``error``, ``case``, ``state``, ``command``, ``actor``, ``seq``, ``guard``, ``basis``,
    ``field``, ``expected_seq``, ``request_id``, ``clock``, ``last``, ``tolerance``) is a member.
    For :class:`~mediation.NotPermitted` and :class:`~mediation.IllegalTransition` naming a
    command, ``basis`` is that command's legal basis.  An exception that is not a
    :class:`~mediation.MediationError` gives a 500 whose body says nothing about it.  ``instance``,
    if given, is RFC 9457's URI of this occurrence.
    """
    kind = _problem_type(error)
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind.slug,
        "title": kind.title,
        "title_zh": kind.title_zh,
        "status": kind.status,
    }
    if isinstance(error, MediationError):
        body["detail"] = error.message
        body["detail_zh"] = (
            error.message_zh
            if error.message_zh != error.message
            else f"{kind.title_zh}：{error.message}"
        )
        for key, value in error.fields().items():
            if key != "message" and key not in _RESERVED:
                body[key] = _jsonable(value)
        if (
            isinstance(error, (NotPermitted, IllegalTransition))
            and error.command is not None
            and WORKFLOW.has_command(error.command)
        ):
            body.setdefault("basis", WORKFLOW.command(error.command).basis)
    else:
        body["detail"], body["detail_zh"] = _INTERNAL_DETAIL
    if instance is not None:
        body["instance"] = instance
    return Problem(kind.status, body)


# -- JSON renderings --------------------------------------------------------------------------------


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _jsonable(value: Any) -> Any:
    """``value`` as JSON-native data: datetimes in the log's UTC format, dates ISO, tuples as lists,
    sets as sorted lists, enums by value, attrs instances as objects."""
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if value is None or type(value) in (bool, int, str):
        return value
    if isinstance(value, str):  # a view's marker (``[erased]``): plain text in JSON
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, _dt.datetime):
        return format_time(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(v) for v in value), key=_sort_key)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if attrs.has(type(value)):
        return {f.name: _jsonable(getattr(value, f.name)) for f in attrs.fields(type(value))}
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def event_json(event: Event) -> dict[str, Any]:
    """An event as recorded: ``case``, ``seq``, ``type``, ``at``, ``actor``, ``acted_as``,
    ``state``, ``payload``, ``prev``, ``hash``, ``workflow``, ``schema``, ``request_id`` (the
    client's request id) and ``clock`` (the host's reading, when the event was held at the previous
    event's time); the last two are ``null`` where the event has none, so every event has the same
    members.

    The payload is not redacted (sealed personal data stays sealed): this is the auditor's and the
    exporter's rendering.  For what one viewer may see, render :meth:`CaseService.view` with
    :func:`view_json`.
    """
    out: dict[str, Any] = {
        "case": event.case_id,
        "seq": event.seq,
        "type": event.type,
        "at": format_time(event.at),
        "actor": event.actor,
        "acted_as": event.acted_as,
        "state": event.state,
        "payload": _jsonable(event.payload),
        "prev": event.prev,
        "hash": event.hash,
        "workflow": event.workflow,
        "schema": event.schema,
        "request_id": event.request_id,
        "clock": None if event.clock is None else format_time(event.clock),
    }
    return out


def _entry_json(entry: TimelineEntry) -> dict[str, Any]:
    out: dict[str, Any] = _jsonable(entry)
    return out


def timeline_json(timeline: CaseView | Iterable[TimelineEntry]) -> list[dict[str, Any]]:
    """The rows of a view's timeline (or any :class:`~mediation.TimelineEntry` rows), in order."""
    entries = timeline.timeline if isinstance(timeline, CaseView) else timeline
    return [_entry_json(e) for e in entries]


def view_json(view: CaseView) -> dict[str, Any]:
    """A :class:`~mediation.CaseView`, every attribute by name, its timeline as
    :func:`timeline_json`."""
    out: dict[str, Any] = {}
    for field in attrs.fields(CaseView):
        value = getattr(view, field.name)
        out[field.name] = timeline_json(value) if field.name == "timeline" else _jsonable(value)
    return out


def permissions_json(permissions: Iterable[Permission]) -> list[dict[str, Any]]:
    """The answers of :meth:`CaseService.allowed`: ``command``, ``allowed``, ``acted_as``,
    ``reasons`` (a list of ``{"en": ..., "zh": ...}``) and ``pending_guards``."""
    return [
        {
            "command": p.command,
            "allowed": p.allowed,
            "acted_as": p.acted_as,
            "reasons": [{"en": r.en, "zh": r.zh} for r in p.reasons],
            "pending_guards": list(p.pending_guards),
        }
        for p in permissions
    ]


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """:meth:`Verdict.to_json`, with the fault's Chinese message beside the English one."""
    out: dict[str, Any] = _jsonable(verdict.to_json())
    if verdict.fault is not None and isinstance(out.get("fault"), dict):
        out["fault"]["message_zh"] = verdict.fault.message_zh
    return out
