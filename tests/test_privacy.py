"""Personal data sealed in the log (PIPL 47): never stored in plain text, opened for those entitled,
masked for the others, refused when smuggled in as text, found when tampered with, and erasable by
destroying its keys without breaking the chain, with no copy left in any file.

The cast (:data:`P1`, :data:`P2`, :data:`AGENT`, the organisation :data:`ORG`) and every free text
here are distinctive, so that a byte scan for them means something.  PostgreSQL needs
``MEDIATION_PG_DSN`` (see tests/pg.py).
"""

from __future__ import annotations

import base64
import inspect
import io
import json
import re
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import pg
from helpers import C1, Env, content, doc, files, holding, unchanged, view_text
from mediation import (
    WORKFLOW,
    AESGCMVault,
    CaseService,
    FaultKind,
    FieldKind,
    GuardFailed,
    IntegrityViolation,
    InvalidCommand,
    KeyDestroyed,
    MediationError,
    MemoryKeyStore,
    MemoryStore,
    NotPermitted,
    SQLiteStore,
    StoredEvent,
    verify,
)
from mediation import commands as cmd
from mediation import demo as demo_module
from mediation._commands import from_payload, to_payload
from mediation._events import GENESIS, canonical_bytes, decode_event, event_hash
from mediation._masks import MASKS
from mediation._privacy import ERASED, TAMPERED, UNOPENED, check_sealed
from mediation._validators import REQUIRED_TEXT_PATTERN, TEXT_PATTERN
from mediation._views import view_case
from mediation.cli import ExitCode, main
from mediation.stores import Store

# -- the cast --------------------------------------------------------------------------------------

P1 = cmd.Party(
    "p1",
    "陈静怡",
    phone="13812345678",
    id_number="41090219850315362X",
    address="上海市浦东新区荣悦路88弄3号楼502室",
    employer="濮阳市第三中学",
    health="二型糖尿病史",
    minor="女儿刘小雨九岁",
    bank_account="6222020200112233445",
)
P2 = cmd.Party(
    "p2",
    "刘建国",
    phone="13987654321",
    id_number="410902197703214455",
    address="濮阳市华龙区胜利路天鹅堡小区5栋2单元1402",
    employer="中原油田物资公司",
)
#: an organisation: its name is not personal data (it stays readable); its phone is sealed
ORG = cmd.Party("org1", "天鹅堡物业服务有限公司", kind="organisation", phone="03938881234")
AGENT = cmd.Party("agent2", "赵慕远", phone="13700001111", id_number="410902198808080808")

DESCRIPTION = "十四楼住户夜间使用跑步机噪声持续三个月"
MINUTES = "双方陈述：刘建国承认夜间使用跑步机"
PROPOSAL = "调解方案：晚十点后停止使用跑步机"
REVISED = "修改后的方案：加装减震垫并限时使用"
GROUNDS = "调解员与被申请人系多年同事关系"
FOLLOW_UP = "回访记录：噪声已明显减少，双方满意"
AGREEMENT = {
    "facts": "十四楼住户夜间使用跑步机影响十五楼休息",
    "issues": "夜间噪声是否超过社会生活噪声标准",
    "responsibilities": "刘建国承担减少噪声的责任",
    "obligations": "晚十点后不使用跑步机并加装减震垫",
    "performance_method": "自行整改并由物业服务中心见证",
    "performance_place": "天鹅堡小区十四楼住户家中",
}


def _personal(party: cmd.Party) -> list[str]:
    """The values of ``party`` the service seals (its name only for a natural person)."""
    members = ["phone", "id_number", "address", "employer", "health", "minor", "bank_account"]
    if party.kind == "person":
        members.append("name")
    return [getattr(party, m) for m in members if getattr(party, m)]


PERSONAL = {p.id: _personal(p) for p in (P1, P2, ORG, AGENT)}
FREE_TEXT = [DESCRIPTION, MINUTES, PROPOSAL, REVISED, GROUNDS, FOLLOW_UP, *AGREEMENT.values()]
#: every plaintext of the rich case
ALL_PLAIN = [v for values in PERSONAL.values() for v in values] + FREE_TEXT
#: the members of a person object that hold personal data
MEMBERS = ("name", "phone", "id_number", "address", "employer", "health", "minor", "bank_account")


def opening() -> cmd.Apply:
    return cmd.Apply(
        committee=C1,
        category="邻里",
        description=DESCRIPTION,
        applicants=(P1,),
        respondents=(P2, ORG),
    )


def negotiating(store: Store | None = None, case_id: str = "case-1") -> Env:
    """The case of :data:`P1` against :data:`P2` and :data:`ORG`, negotiating."""
    e = Env(store=store if store is not None else MemoryStore(), case_id=case_id)
    e.drive("negotiating", opening())
    return e


def rich(store: Store | None = None, case_id: str = "case-1") -> Env:
    """Every kind of sealed value: the parties, an agent for p2, a recusal request, minutes, a
    proposal and its revision, the agreement (signed), a follow-up note; following up."""
    e = negotiating(store, case_id)
    e.run("p2", cmd.AppointAgent(AGENT, doc("授权委托书")))
    e.run("p1", cmd.RequestRecusal("med1", GROUNDS))
    e.run("director", cmd.DecideRecusal("med1", False, "理由不成立"))
    e.run("med1", cmd.RecordMinutes(MINUTES))
    e.run("med1", cmd.ShareProposal(PROPOSAL))
    e.run("med1", cmd.ReviseProposal(1, REVISED))
    e.run("med1", cmd.DraftAgreement(content(**AGREEMENT)))
    e.sign_all()
    e.run("med1", cmd.RecordFollowUp(FOLLOW_UP, "yes", 5))
    assert e.case.state == "following_up"
    return e


def bodies(store: Store) -> bytes:
    return b"\n".join(r.body for r in store.scan())


def found(data: bytes, values: list[str]) -> list[str]:
    return [v for v in values if v.encode() in data]


def sqlite_keys(path: Path) -> dict[tuple[str, str, int], bytes]:
    """The keys of a SQLite key file, read without writing to it."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT case_id, subject, epoch, key FROM mediation_keys").fetchall()
    finally:
        conn.close()
    return {(c, s, e): bytes(k) for c, s, e, k in rows}


def party_of(view: Any, pid: str) -> dict[str, Any]:
    (found_,) = [dict(p) for p in view.parties if p["id"] == pid]
    return found_


def payload_of(view: Any, type_: str) -> list[Any]:
    return [t.payload for t in view.timeline if t.type == type_]


def seq_of(store: Store, case_id: str, type_: str, nth: int = 0) -> int:
    """The seq of the ``nth`` event of ``type_`` of the case (by order: the log holds no plaintext
    to find it by)."""
    events = [decode_event(r) for r in store.read(case_id)]
    return [e.seq for e in events if e.type == type_][nth]


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIATION_LANG", "en")


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# -- sealed by default -----------------------------------------------------------------------------


def test_sealing_is_on_by_default_in_memory() -> None:
    store = MemoryStore()
    e = rich(store)
    vault = e.service.vault
    assert isinstance(vault, AESGCMVault) and vault.keys is store.key_store()
    stored = bodies(store)
    assert not found(stored, ALL_PLAIN)
    assert ORG.name.encode() in stored  # an organisation's name is not personal data
    keys = [vault.keys.get(e.case_id, subject, 1) for subject in ("p1", "p2", "org1", "agent2", "")]
    assert all(k is not None and len(k) == 32 for k in keys)
    assert not [k for k in keys if k is not None and k in stored]
    assert verify(store.read(e.case_id), strict=True, vault=vault).ok


def test_sealing_is_on_by_default_on_a_sqlite_file(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "cases.db")
    e = rich(store)
    assert not found(bodies(store), ALL_PLAIN)
    # the keys are in the key file beside the events', and nowhere else
    keys = sqlite_keys(tmp_path / "cases.db.keys")
    assert {s for _, s, _ in keys} == {"p1", "p2", "org1", "agent2", ""}
    needles = {f"{s or 'case'}@{n}": k for (_, s, n), k in keys.items()}
    needles |= {v: v.encode() for v in ALL_PLAIN}
    for when in ("open", "closed"):
        where = holding(tmp_path, needles)
        assert all(name == "cases.db.keys" for name, _ in where), (when, where)
        assert {n for _, n in where} == {n for n in needles if "@" in n}, when
        if when == "open":
            store.close()
    with sqlite3.connect(f"file:{tmp_path / 'cases.db'}?mode=ro", uri=True) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert not {t for t in tables if "key" in t}, tables
    again = SQLiteStore(tmp_path / "cases.db")
    view = CaseService(again, directory=e.world.directory).view(e["med1"], e.case_id)
    assert party_of(view, "p1")["name"] == P1.name and view.description == DESCRIPTION
    again.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg.fresh_schema() as url:
        yield url


@pytest.mark.postgres
def test_sealing_is_on_by_default_on_postgres(pg_url: str) -> None:
    import psycopg
    from psycopg import sql

    from mediation.stores.postgres import PostgresStore

    case_id = f"privacy-{uuid.uuid4().hex}"  # a key schema may be shared: a name of its own
    store = PostgresStore(pg_url)
    schema = store.key_store().schema  # type: ignore[attr-defined]
    try:
        e = rich(store, case_id)
        assert isinstance(e.service.vault, AESGCMVault)
        assert e.service.vault.keys is store.key_store()
        assert not found(bodies(store), ALL_PLAIN)
        assert not found(repr(store.cases()).encode(), ALL_PLAIN)
        with psycopg.connect(pg_url) as conn:
            keys = conn.execute(
                sql.SQL("SELECT subject, key FROM {}.keys WHERE case_id = %s").format(
                    sql.Identifier(schema)
                ),
                (case_id,),
            ).fetchall()
            events = conn.execute(
                "SELECT body::text FROM mediation_events WHERE case_id = %s", (case_id,)
            ).fetchall()
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            ).fetchall()
            here = conn.execute("SELECT current_schema()").fetchone()
        assert here is not None and schema != here[0]  # the keys are in a schema of their own
        assert {s for s, _ in keys} == {"p1", "p2", "org1", "agent2", ""}
        stored = "\n".join(b for (b,) in events)
        assert stored and not [v for v in ALL_PLAIN if v in stored]
        raw = b"".join(r.body for r in store.read(case_id))
        assert not [k for _, k in keys if bytes(k) in raw]
        assert not [t for (t,) in tables if "key" in t], tables
        view = e.service.view(e["med1"], case_id)
        assert party_of(view, "p1")["phone"] == P1.phone and view.description == DESCRIPTION
        assert verify(store.read(case_id), strict=True, vault=e.service.vault).ok
        e.service.erase(e["director"], case_id, basis="PIPL 47", person="p1")
        assert party_of(e.service.view(e["med1"], case_id), "p1")["phone"] == ERASED
    finally:
        store.close()
        if schema != "mediation_keys":  # a key schema of the test's own schema: dropped with it
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


def sealing_off(store: Store | None = None) -> Env:
    e = Env(store=store if store is not None else MemoryStore())
    e.service = CaseService(e.store, directory=e.world.directory, clock=e.clock, sealing=False)
    return e


def test_sealing_off_stores_plaintext() -> None:
    e = sealing_off()
    assert e.service.vault is None
    e.drive("negotiating", opening())
    e.run("med1", cmd.RecordMinutes(MINUTES))
    stored = bodies(e.store)
    assert set(found(stored, [*PERSONAL["p1"], *PERSONAL["p2"], DESCRIPTION, MINUTES])) == {
        *PERSONAL["p1"],
        *PERSONAL["p2"],
        DESCRIPTION,
        MINUTES,
    }
    assert b'"sealed"' not in stored
    view = e.service.view(e["med1"], e.case_id)
    assert party_of(view, "p1")["name"] == P1.name and view.description == DESCRIPTION
    assert verify(e.store.read(e.case_id), strict=True).ok


def test_a_vault_with_sealing_off_is_refused() -> None:
    with pytest.raises(InvalidCommand):
        CaseService(MemoryStore(), sealing=False, vault=AESGCMVault())


def test_another_key_store_is_plugged_in_through_the_vault() -> None:
    store, keys = MemoryStore(), MemoryKeyStore()
    e = Env(store=store)
    e.service = CaseService(
        store, directory=e.world.directory, clock=e.clock, vault=AESGCMVault(keys)
    )
    e.drive("registered", opening())
    assert keys.get(e.case_id, "p1", 1) is not None
    assert store.key_store().get(e.case_id, "p1", 1) is None
    assert not found(bodies(store), ALL_PLAIN)
    assert party_of(e.service.view(e["med1"], e.case_id), "p1")["name"] == P1.name


# -- who sees what ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def case() -> Env:
    return rich()


RULE = {kind: MASKS[kind].rule for kind in FieldKind}


def test_mediators_and_the_director_see_the_plaintext(case: Env) -> None:
    for who in ("med1", "director"):
        view = case.service.view(case[who], case.case_id)
        (appointed,) = payload_of(view, "appoint_agent")
        shown_people = [(P1, party_of(view, "p1")), (P2, party_of(view, "p2"))]
        shown_people.append((AGENT, appointed["agent"]))
        for party, shown in shown_people:
            for member in MEMBERS:
                if member != "id_number":
                    assert shown.get(member, "") == getattr(party, member), (who, party.id, member)
            # ID numbers are masked in every view (DOMAIN.md)
            assert shown["id_number"] == party.id_number[0] + "*" * 16 + party.id_number[-1]
        assert party_of(view, "org1") == to_payload(ORG)
        assert view.description == DESCRIPTION
        assert view.agreement is not None
        assert {k: view.agreement["content"][k] for k in AGREEMENT} == AGREEMENT
        assert payload_of(view, "record_follow_up")[0]["note"] == FOLLOW_UP
        assert payload_of(view, "request_recusal")[0]["grounds"] == GROUNDS
        assert view.masks == {"id_number": RULE[FieldKind.ID_NUMBER]}
    mediator = case.service.view(case["med1"], case.case_id)
    assert payload_of(mediator, "record_minutes")[-1]["text"] == MINUTES
    assert payload_of(mediator, "share_proposal")[-1]["text"] == PROPOSAL
    assert payload_of(mediator, "revise_proposal")[0]["text"] == REVISED
    director = case.service.view(case["director"], case.case_id)
    assert MINUTES not in view_text(director) and PROPOSAL not in view_text(director)


def test_a_party_sees_its_own_contact_and_the_others_masked(case: Env) -> None:
    view = case.service.view(case["p1"], case.case_id)
    own, other = party_of(view, "p1"), party_of(view, "p2")
    assert own["phone"] == P1.phone and own["bank_account"] == P1.bank_account
    assert other["name"] == P2.name  # a party sees the other parties' names
    assert other["phone"] == "*******4321"
    assert other["address"] == "濮阳市华龙区胜利路天鹅堡小区5栋***"
    assert other["employer"] == "***"
    assert view.masks["phone"] == RULE[FieldKind.PHONE]
    assert view.masks["address"] == RULE[FieldKind.ADDRESS]
    assert "name" not in view.masks
    assert view.description == DESCRIPTION
    assert P2.phone not in view_text(view) and P2.address not in view_text(view)
    (appointed,) = payload_of(view, "appoint_agent")
    assert appointed["agent"]["name"] == AGENT.name
    assert appointed["agent"]["phone"] == "*******1111"
    # an agent sees its principal's contact
    agent = case.service.view(case["agent2"], case.case_id)
    assert party_of(agent, "p2")["phone"] == P2.phone
    assert party_of(agent, "p1")["phone"] == "*******5678"


def test_auditors_see_personal_data_masked_with_the_rule_stated(case: Env) -> None:
    view = case.service.view(case["auditor"], case.case_id)
    p1 = party_of(view, "p1")
    assert p1 == {
        **p1,
        "name": "陈*",
        "phone": "*******5678",
        "id_number": "4" + "*" * 16 + "X",
        "address": "上海市浦东新区荣悦路88弄3号楼***",
        "employer": "***",
        "health": "***",
        "minor": "***",
        "bank_account": "****3445",
    }
    assert party_of(view, "org1")["name"] == ORG.name
    assert party_of(view, "org1")["phone"] == "*******1234"
    assert view.masks == {
        "address": RULE[FieldKind.ADDRESS],
        "bank_account": RULE[FieldKind.BANK],
        "description": RULE[FieldKind.TEXT],
        "employer": RULE[FieldKind.EMPLOYER],
        "grounds": RULE[FieldKind.TEXT],
        "health": RULE[FieldKind.HEALTH],
        "id_number": RULE[FieldKind.ID_NUMBER],
        "minor": RULE[FieldKind.MINOR],
        "name": RULE[FieldKind.NAME],
        "note": RULE[FieldKind.TEXT],
        "phone": RULE[FieldKind.PHONE],
        "place": RULE[FieldKind.TEXT],
        "reason": RULE[FieldKind.TEXT],
        "title": RULE[FieldKind.TEXT],
    }
    shown = view_text(view)
    assert not [v for v in ALL_PLAIN if v in shown]


def test_auditors_see_free_text_as_sealed(case: Env) -> None:
    view = case.service.view(case["auditor"], case.case_id)
    assert view.description == UNOPENED == "[sealed]"
    assert payload_of(view, "apply")[0]["description"] == UNOPENED
    assert payload_of(view, "request_recusal")[0]["grounds"] == UNOPENED
    assert payload_of(view, "record_follow_up")[0]["note"] == UNOPENED
    assert view.agreement is None
    for type_ in ("record_minutes", "share_proposal", "revise_proposal", "draft_agreement"):
        assert all("redacted" in p for p in payload_of(view, type_)), type_
    supervisor = case.service.view(case["supervisor"], case.case_id)
    assert supervisor.parties == () and supervisor.description is None
    assert all(t.payload is None for t in supervisor.timeline)


def test_a_store_read_without_keys_shows_sealed(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "cases.db")
    e = rich(store)
    # a service with sealing off, reading sealed data
    reader = CaseService(store, directory=e.world.directory, sealing=False)
    view = reader.view(e["med1"], e.case_id)
    assert party_of(view, "p1")["name"] == UNOPENED and view.description == UNOPENED
    assert payload_of(view, "record_minutes")[-1]["text"] == UNOPENED
    assert view.erased == () and not [v for v in ALL_PLAIN if v in view_text(view)]
    # the view of the records alone
    history = [decode_event(r) for r in store.read(e.case_id)]
    bare = view_case(e.case, history, e["director"], False)
    assert party_of(bare, "p2")["phone"] == UNOPENED and bare.agreement is not None
    assert bare.agreement["content"]["facts"] == UNOPENED
    store.close()
    # the events' file copied without its key file, read by the command line
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in tmp_path.glob("cases.db*"):
        if not path.name.endswith(".keys"):
            shutil.copy(path, copy / path.name)
    code, out, err = run("timeline", e.case_id, "--db", str(copy / "cases.db"), "--as", "director")
    assert code == 0, err
    assert UNOPENED in out and ERASED not in out
    assert not [v for v in ALL_PLAIN if v in out]


def test_a_service_on_a_copy_without_its_key_file_shows_sealed_not_erased(tmp_path: Path) -> None:
    """Nothing was erased: a value whose key is missing (the key file was not copied) is
    ``[sealed]``, not ``[erased]``; ``[erased]`` is for keys that were destroyed."""
    store = SQLiteStore(tmp_path / "cases.db")
    e = negotiating(store)
    store.close()
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in tmp_path.glob("cases.db*"):
        if not path.name.endswith(".keys"):
            shutil.copy(path, copy / path.name)
    other = SQLiteStore(copy / "cases.db")
    try:
        view = CaseService(other, directory=e.world.directory).view(e["med1"], e.case_id)
        assert view.erased == ()
        assert party_of(view, "p1")["name"] == UNOPENED
        assert view.description == UNOPENED
    finally:
        other.close()


# -- smuggling -------------------------------------------------------------------------------------

TOKENS = [
    "sealed:v1:AAAA",
    "sealed:v1:" + "A" * 40,
    "  sealed:v1:AAAA",
    "\tsealed:v2:xyz",
    "\nsealed:v1:AAAA",
    "\u3000sealed:v1:AAAA",
    "sealed:v12:AAAA",
]


@pytest.mark.parametrize("token", TOKENS)
def test_text_that_reads_like_a_former_token_is_refused(token: str) -> None:
    builders: list[Callable[[], object]] = [
        lambda: cmd.Party("p1", token),
        lambda: cmd.Party("p1", "陈静怡", phone=token),
        lambda: cmd.Party("p1", "陈静怡", address=token),
        lambda: attrs.evolve(opening(), description=token),
        lambda: cmd.RecordMinutes(token),
        lambda: cmd.ShareProposal(token),
        lambda: cmd.RecordFollowUp(token, "yes", 5),
        lambda: cmd.RequestRecusal("med1", token),
        lambda: content(facts=token),
    ]
    for build in builders:
        with pytest.raises(InvalidCommand):
            build()
    assert not re.match(TEXT_PATTERN, token) and not re.match(REQUIRED_TEXT_PATTERN, token)


def _payloads(text: Any) -> list[tuple[type[Any], dict[str, Any]]]:
    """Payloads of commands with ``text`` in a member that holds text (personal or free)."""
    apply = to_payload(opening())
    applicant, respondent = apply["applicants"][0], apply["respondents"][0]
    agent = to_payload(cmd.AppointAgent(AGENT, doc()))
    return [
        (cmd.Apply, {**apply, "description": text}),
        (cmd.Apply, {**apply, "applicants": [{**applicant, "name": text}]}),
        (cmd.Apply, {**apply, "applicants": [{**applicant, "phone": text}]}),
        (cmd.Apply, {**apply, "respondents": [{**respondent, "id_number": text}]}),
        (cmd.AppointAgent, {**agent, "agent": {**agent["agent"], "name": text}}),
        (cmd.RecordMinutes, {"text": text}),
        (cmd.ShareProposal, {"text": text}),
        (cmd.RecordOralAgreement, {"summary": text}),
        (cmd.RecordFollowUp, {"note": text, "performed": "yes"}),
        (cmd.DraftAgreement, {"content": {**to_payload(content()), "facts": text}}),
    ]


@pytest.mark.parametrize("token", TOKENS)
def test_from_payload_refuses_a_former_token(token: str) -> None:
    for (cls, good), (_, bad) in zip(_payloads("正常文字"), _payloads(token), strict=True):
        assert isinstance(from_payload(cls, good), cls)
        with pytest.raises(InvalidCommand):
            from_payload(cls, bad)


def test_text_mentioning_the_former_format_further_on_is_accepted() -> None:
    assert cmd.RecordMinutes("旧格式 sealed:v1:... 已不再使用").text.startswith("旧格式")
    assert cmd.Party("p1", "陈 sealed:v1:x").name == "陈 sealed:v1:x"


SEALED_OBJECT = {"key": 1, "sealed": "A" * 40}


def _spelled_as_written(text: str) -> bool:
    """The sealed value's form by decoding and encoding again: the text is unpadded base64url
    that an encoder writes for a blob of 28 bytes to 1 MiB."""
    try:
        blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return False
    encoded = base64.urlsafe_b64encode(blob).decode().rstrip("=")
    return encoded == text and 28 <= len(blob) <= 1 << 20


B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(
    st.one_of(
        st.binary(min_size=20, max_size=80).map(
            lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
        ),
        st.text(alphabet=B64_CHARS + "=+/ \n", min_size=30, max_size=110),
    )
)
@example("A" * 38)  # 28 bytes, the shortest
@example("A" * 37 + "B")  # 28 bytes and 4 bits beyond them set: not as written
@example("A" * 38 + "B")  # 29 bytes and 2 bits beyond them set
@example("A" * 39 + "\n")  # a newline where a pattern's ``$`` would still match
@example("A" * 36)  # 27 bytes: too short
@example("A" * 1_398_102)  # 1 MiB, the longest
@example("A" * 1_398_103)  # 1 MiB and a byte: too long
@example("A" * 1_398_104)
def test_a_sealed_value_is_accepted_exactly_as_an_encoder_writes_it(text: str) -> None:
    """The form check (a pattern, no decoding) accepts what decoding and encoding again gives
    back unchanged, and nothing else: one spelling per blob, so a forger cannot change a sealed
    value's bytes without changing what it decodes to."""
    value = {"key": 1, "sealed": text}
    if _spelled_as_written(text):
        assert check_sealed(value, "/x")[1] == base64.urlsafe_b64decode(
            text + "=" * (-len(text) % 4)
        )
    else:
        with pytest.raises(InvalidCommand):
            check_sealed(value, "/x")


def test_from_payload_refuses_a_sealed_object_in_a_text_member() -> None:
    for cls, payload in _payloads(SEALED_OBJECT):  # type: ignore[arg-type]
        with pytest.raises(InvalidCommand):
            from_payload(cls, payload)


def rechain(
    records: list[StoredEvent], change: Callable[[list[dict[str, Any]]], None]
) -> list[StoredEvent]:
    """``records`` with ``change`` made to their bodies, every hash and link recomputed from the
    first changed one on, as a forger with the database would."""
    bodies_ = [json.loads(r.body) for r in records]
    change(bodies_)
    out, prev = [], GENESIS
    for body in bodies_:
        body = {**body, "prev": prev}
        data = canonical_bytes(body, checked=False)
        out.append(StoredEvent(body["case"], body["seq"], event_hash(data), data))
        prev = out[-1].hash
    return out


def unchained(
    records: list[StoredEvent], change: Callable[[list[dict[str, Any]]], None]
) -> list[StoredEvent]:
    """``records`` with ``change`` made to their bodies, the hashes left as they were."""
    bodies_ = [json.loads(r.body) for r in records]
    change(bodies_)
    return [
        attrs.evolve(r, body=canonical_bytes(b, checked=False))
        for r, b in zip(records, bodies_, strict=True)
    ]


def reopened(records: list[StoredEvent], e: Env) -> CaseService:
    """A service over a store holding ``records`` (as forged), opening with ``e``'s keys."""
    case_id = records[0].case_id
    store = MemoryStore()
    summary = attrs.evolve(e.service.case(case_id).summary(), head=records[-1].hash)
    store.append(summary, records, 0)
    return CaseService(
        store, directory=e.world.directory, clock=e.clock, vault=AESGCMVault(e.store.key_store())
    )


def test_a_sealed_object_where_nothing_is_sealed_is_malformed() -> None:
    e = negotiating()
    e.run("med1", cmd.RecordMinutes(MINUTES))
    records = e.store.read(e.case_id)
    minutes = seq_of(e.store, e.case_id, "record_minutes", nth=-1)
    meeting = seq_of(e.store, e.case_id, "schedule_meeting")

    def into_place(bodies_: list[dict[str, Any]]) -> None:  # the meeting's time: not sealed
        bodies_[meeting - 1]["payload"]["at"] = bodies_[minutes - 1]["payload"]["text"]

    def into_org_name(bodies_: list[dict[str, Any]]) -> None:  # an organisation's name: neither
        apply = bodies_[0]["payload"]
        apply["respondents"][1]["name"] = apply["applicants"][0]["phone"]

    for change, seq in ((into_place, meeting), (into_org_name, 1)):
        forged = rechain(records, change)
        verdict = verify(forged, e.case_id, strict=True, vault=e.service.vault)
        assert verdict.fault is not None
        assert (verdict.fault.seq, verdict.fault.kind) == (seq, FaultKind.MALFORMED)
        service = reopened(forged, e)
        for who in ("med1", "director", "auditor", "p1", "supervisor"):
            try:  # shown, or refused as a log that does not replay: never another error
                service.view(e[who], e.case_id)
            except IntegrityViolation as exc:
                assert exc.case == e.case_id


def test_a_sealed_value_respelled_to_the_same_bytes_is_malformed() -> None:
    """Bits beyond the blob in the last character decode to the same ciphertext, which still
    opens: replay refuses the other spelling, with or without the keys, strict or not."""
    e = negotiating()
    e.run("med1", cmd.RecordMinutes(MINUTES))
    records = e.store.read(e.case_id)
    found = [
        (r.seq, pointer)
        for r in records
        for pointer, value in _sealed_texts(json.loads(r.body)["payload"], "")
        if len(value) % 4 in (2, 3)
    ]
    assert found, "no sealed value with spare bits in its last character"
    seq, pointer = found[0]

    def respell(bodies_: list[dict[str, Any]]) -> None:
        node: Any = bodies_[seq - 1]["payload"]
        *steps, last = pointer[1:].split("/")
        for step in steps:
            node = node[int(step)] if isinstance(node, list) else node[step]
        text = node[last]["sealed"]
        node[last]["sealed"] = text[:-1] + B64_CHARS[B64_CHARS.index(text[-1]) + 1]
        assert base64.urlsafe_b64decode(text + "==") == base64.urlsafe_b64decode(
            node[last]["sealed"] + "=="
        )

    forged = rechain(records, respell)
    for strict in (False, True):
        for vault in (None, e.service.vault):
            verdict = verify(forged, e.case_id, strict=strict, vault=vault)
            assert verdict.fault is not None
            assert (verdict.fault.seq, verdict.fault.kind) == (seq, FaultKind.MALFORMED)


def _sealed_texts(value: Any, at: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        if value.keys() == {"key", "sealed"}:
            yield at, value["sealed"]
            return
        for k, v in value.items():
            yield from _sealed_texts(v, f"{at}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _sealed_texts(v, f"{at}/{i}")


MARKER_TEXTS = ["[erased]", "[sealed]", "[tampered]", " [tampered]", json.dumps(SEALED_OBJECT)]


@pytest.mark.parametrize("text", MARKER_TEXTS)
def test_user_text_that_reads_like_a_marker_is_only_text(text: str) -> None:
    """A party may be called, or write, anything: the views show it (it is the plaintext), and
    the log verifies strictly, with the vault too."""
    e = Env()
    e.drive(
        "negotiating",
        attrs.evolve(
            opening(),
            description=text,
            applicants=(attrs.evolve(P1, name=text, address=text),),
        ),
    )
    e.run("med1", cmd.RecordMinutes(text))
    for who in ("med1", "director", "auditor", "p1", "p2", "supervisor"):
        e.service.view(e[who], e.case_id)
    view = e.service.view(e["med1"], e.case_id)
    assert view.description == text and party_of(view, "p1")["name"] == text
    assert payload_of(view, "record_minutes")[-1]["text"] == text
    assert view.erased == ()
    for vault in (None, e.service.vault):
        verdict = verify(e.store.read(e.case_id), strict=True, vault=vault)
        assert verdict.ok, verdict.describe()
    assert e.service.verify(e.case_id).ok


# -- tampering -------------------------------------------------------------------------------------


@attrs.frozen
class Tampered:
    """A pair of cases (k1, k2) with minutes, on one store and key store, and the seqs that
    matter."""

    e: Env
    other: Env
    minutes: int  # the first of k1's two minutes of its own
    second: int  # the second


#: an organisation with no personal data at all: no key of its own in the case
BARE_ORG = cmd.Party(ORG.id, ORG.name, kind="organisation")


def tampered_cases(rotated: bool = False) -> Tampered:
    e = Env(case_id="k1")
    e.drive("negotiating", attrs.evolve(opening(), respondents=(P2, BARE_ORG)))
    other = Env(store=e.store, world=e.world, clock=e.clock, case_id="k2")
    other.drive("negotiating", opening())
    if rotated:  # the minutes below are sealed under epoch 2; the description under epoch 1
        assert e.store.key_store().rotate() == 2
    e.run("med1", cmd.RecordMinutes(MINUTES))
    e.run("med1", cmd.RecordMinutes(PROPOSAL))
    other.run("med1", cmd.RecordMinutes(REVISED))
    first = seq_of(e.store, "k1", "record_minutes", nth=-2)
    return Tampered(e, other, first, first + 1)


def _blob(value: dict[str, Any]) -> bytearray:
    text = value["sealed"]
    return bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def _flip(value: dict[str, Any], at: int) -> None:
    blob = _blob(value)
    blob[at] ^= 0x01
    value["sealed"] = base64.urlsafe_b64encode(bytes(blob)).decode().rstrip("=")


def _flip_ciphertext(t: Tampered, b: list[dict[str, Any]]) -> tuple[int, str]:
    _flip(b[t.minutes - 1]["payload"]["text"], 12)  # the first byte after the 12-byte nonce
    return t.minutes, "/text"


def _flip_nonce(t: Tampered, b: list[dict[str, Any]]) -> tuple[int, str]:
    _flip(b[t.minutes - 1]["payload"]["text"], 0)
    return t.minutes, "/text"


def _other_event(t: Tampered, b: list[dict[str, Any]]) -> tuple[int, str]:
    b[t.minutes - 1]["payload"]["text"] = b[t.second - 1]["payload"]["text"]
    return t.minutes, "/text"


def _other_member(t: Tampered, b: list[dict[str, Any]]) -> tuple[int, str]:
    p1 = b[0]["payload"]["applicants"][0]
    p1["address"] = p1["phone"]  # the same person's key: only the member differs
    return 1, "/applicants/0/address"


def _other_person(t: Tampered, b: list[dict[str, Any]]) -> tuple[int, str]:
    apply = b[0]["payload"]
    apply["respondents"][0]["phone"] = apply["applicants"][0]["phone"]  # p1's phone to p2
    return 1, "/respondents/0/phone"


def _keyless_person(t: Tampered, b: list[dict[str, Any]]) -> tuple[int, str]:
    apply = b[0]["payload"]
    assert apply["respondents"][1]["phone"] == ""
    apply["respondents"][1]["phone"] = apply["applicants"][0]["phone"]  # to one with no key
    return 1, "/respondents/1/phone"


def _other_case(t: Tampered, b: list[dict[str, Any]]) -> tuple[int, str]:
    theirs = [json.loads(r.body) for r in t.e.store.read("k2")]
    last = next(x for x in reversed(theirs) if x["type"] == "record_minutes")
    b[t.minutes - 1]["payload"]["text"] = last["payload"]["text"]
    return t.minutes, "/text"


def _epoch(t: Tampered, b: list[dict[str, Any]]) -> tuple[int, str]:
    value = b[t.minutes - 1]["payload"]["text"]
    value["key"] = 2 if value["key"] == 1 else 1
    return t.minutes, "/text"


TAMPERINGS = {
    "ciphertext byte": (_flip_ciphertext, False),
    "nonce byte": (_flip_nonce, False),
    "moved to another event": (_other_event, False),
    "moved to another member": (_other_member, False),
    "moved to another person": (_other_person, False),
    "moved to a person with no key": (_keyless_person, False),
    "moved to another case": (_other_case, False),
    "epoch changed (both epochs have keys)": (_epoch, True),
    "epoch changed (to one with no key)": (_epoch, False),
}


def _at(payload: Any, pointer: str) -> Any:
    for part in pointer.strip("/").split("/"):
        payload = payload[int(part)] if isinstance(payload, list) else payload[part]
    return payload


@pytest.mark.parametrize("how", list(TAMPERINGS))
def test_a_tampered_sealed_value_is_found(how: str) -> None:
    change, rotated = TAMPERINGS[how]
    t = tampered_cases(rotated)
    records = t.e.store.read("k1")
    vault = AESGCMVault(t.e.store.key_store())
    where: list[tuple[int, str]] = []

    def tamper(b: list[dict[str, Any]]) -> None:
        where.append(change(t, b))

    # the hashes as they were: the chain finds the change, with or without the vault
    for key in (None, vault):
        verdict = verify(unchained(records, tamper), "k1", vault=key)
        seq, pointer = where[-1]
        assert verdict.fault is not None
        assert (verdict.fault.seq, verdict.fault.kind) == (seq, FaultKind.ALTERED)
    # the chain rebuilt over it: only opening the value finds it
    forged = rechain(records, tamper)
    seq, pointer = where[-1]
    assert forged[seq - 1].body != records[seq - 1].body
    assert verify(forged, "k1", strict=True).ok  # without the keys, nothing to see
    keyless = "no key" in how
    for strict in (False, True):
        verdict = verify(forged, "k1", strict=strict, vault=vault)
        if keyless:  # no key to open it with (as in a store restored without its keys): unchecked
            assert verdict.ok, verdict.describe()
            continue
        assert verdict.fault is not None, how
        assert (verdict.fault.seq, verdict.fault.kind) == (seq, FaultKind.SEALED), (
            verdict.describe()
        )
    service = reopened(forged, t.e)
    assert (service.verify("k1").fault is None) is keyless
    # the views show the value as tampered with (or, where no key exists for it and none was
    # destroyed, as sealed: a view cannot tell a moved value from a key store that lacks the
    # key; only signed checkpoints catch a chain rebuilt around it), and do not fail
    view = service.view(t.e["med1"], "k1")
    shown = _at(view.timeline[seq - 1].payload, pointer)
    assert shown == (TAMPERED if "no key" not in how else UNOPENED)
    for who in ("director", "auditor", "p1", "p2", "supervisor"):
        service.view(t.e[who], "k1")


# -- erasure ---------------------------------------------------------------------------------------


def test_an_erasure_records_who_when_and_on_what_basis() -> None:
    e = rich()
    request = doc("删除个人信息申请书")
    basis = "PIPL 47(1)3: 当事人撤回同意"
    e.clock.advance(hours=2)
    event = e.service.erase(e["director"], e.case_id, basis=basis, person="p1", request=request)
    assert (event.type, event.actor, event.acted_as) == (
        "erase_personal_data",
        "director",
        "director",
    )
    assert event.at == e.clock.now
    assert event.payload["basis"] == basis and event.payload["person"] == "p1"
    assert event.payload["request"]["sha256"] == request.sha256  # its title sealed (free text)
    assert event.payload["request"]["title"].keys() == {"key", "sealed"}
    assert e.service.history(e.case_id)[-1] == event
    assert verify(e.store.read(e.case_id), strict=True, vault=e.service.vault).ok
    (shown,) = payload_of(e.service.view(e["auditor"], e.case_id), "erase_personal_data")
    assert shown["basis"] == basis and shown["person"] == "p1"


def test_erasing_a_person_erases_that_persons_data_only() -> None:
    e = rich()
    keys = e.store.key_store()
    e.service.erase(e["director"], e.case_id, basis="PIPL 47", person="p1")
    assert keys.get(e.case_id, "p1", 1) is None and keys.destroyed(e.case_id, "p1")
    assert all(keys.get(e.case_id, s, 1) is not None for s in ("p2", "org1", "agent2", ""))
    for who in ("med1", "director", "auditor", "p2"):
        view = e.service.view(e[who], e.case_id)
        assert view.erased == ("p1",)
        p1 = party_of(view, "p1")
        assert {m: p1[m] for m in MEMBERS} == dict.fromkeys(MEMBERS, ERASED), who
        assert not [v for v in PERSONAL["p1"] if v in view_text(view)]
        (apply,) = payload_of(view, "apply")
        assert apply["applicants"][0]["phone"] == ERASED
    view = e.service.view(e["med1"], e.case_id)
    assert party_of(view, "p2")["phone"] == P2.phone
    assert payload_of(view, "appoint_agent")[0]["agent"]["name"] == AGENT.name
    assert party_of(view, "org1")["phone"] == ORG.phone
    assert view.description == DESCRIPTION
    assert payload_of(view, "record_minutes")[-1]["text"] == MINUTES
    assert view.agreement is not None and view.agreement["content"]["facts"] == AGREEMENT["facts"]
    assert e.service.verify(e.case_id).ok


def test_erasing_the_case_erases_everything_including_free_text() -> None:
    e = rich()
    e.service.erase(e["director"], e.case_id, basis="PIPL 47")
    keys = e.store.key_store()
    assert all(keys.get(e.case_id, s, 1) is None for s in ("p1", "p2", "org1", "agent2", ""))
    for who in ("med1", "director", "auditor", "p1", "agent2", "supervisor"):
        view = e.service.view(e[who], e.case_id)
        assert view.erased == ("*",)
        assert not [v for v in ALL_PLAIN if v in view_text(view)], who
    view = e.service.view(e["med1"], e.case_id)
    (appointed,) = payload_of(view, "appoint_agent")
    people = {"p1": party_of(view, "p1"), "p2": party_of(view, "p2"), "agent2": appointed["agent"]}
    for party in (P1, P2, AGENT):
        shown = people[party.id]
        assert {m: shown[m] for m in MEMBERS if getattr(party, m)} == {
            m: ERASED for m in MEMBERS if getattr(party, m)
        }
    assert party_of(view, "org1")["name"] == ORG.name  # not personal: kept
    assert party_of(view, "org1")["phone"] == ERASED
    assert view.description == ERASED
    assert view.agreement is not None
    assert {k: view.agreement["content"][k] for k in AGREEMENT} == dict.fromkeys(AGREEMENT, ERASED)
    assert view.agreement["content"]["performance_deadline"] == "2026-02-01"
    for type_, member in (
        ("record_minutes", "text"),
        ("share_proposal", "text"),
        ("revise_proposal", "text"),
        ("request_recusal", "grounds"),
        ("record_follow_up", "note"),
    ):
        assert {p[member] for p in payload_of(view, type_)} == {ERASED}, type_
    auditor = e.service.view(e["auditor"], e.case_id)
    assert auditor.description == ERASED and party_of(auditor, "p1")["phone"] == ERASED
    assert e.service.verify(e.case_id).ok
    assert verify(e.store.read(e.case_id), strict=True).ok


class CrashingVault(AESGCMVault):
    """A vault whose first destruction of keys fails (the process dies after the erasure was
    recorded, before the keys went)."""

    crashed = False

    def erase(self, case_id: str, subject: str | None = None) -> int:
        if not self.crashed:
            self.crashed = True
            raise OSError("the power went out")
        return super().erase(case_id, subject)


def test_erasing_again_returns_the_erasure_and_destroys_the_keys_again() -> None:
    e = rich()
    first = e.service.erase(e["director"], e.case_id, basis="PIPL 47", person="p1")
    n = len(e.store.read(e.case_id))
    again = e.service.erase(e["director"], e.case_id, basis="另一依据", person="p1")
    assert again == first and len(e.store.read(e.case_id)) == n
    # the event recorded, the keys not yet destroyed (a crash in between): erasing completes it
    e.service = CaseService(
        e.store,
        directory=e.world.directory,
        clock=e.clock,
        vault=CrashingVault(e.store.key_store()),
    )
    with pytest.raises(OSError):
        e.service.erase(e["director"], e.case_id, basis="PIPL 47", person="p2")
    recorded = e.service.history(e.case_id)[-1]
    assert (recorded.type, recorded.payload["person"]) == ("erase_personal_data", "p2")
    # recorded: the views show it erased already, though the keys are still there
    assert party_of(e.service.view(e["med1"], e.case_id), "p2")["phone"] == ERASED
    assert not e.store.key_store().destroyed(e.case_id, "p2")
    assert e.service.erase(e["director"], e.case_id, basis="PIPL 47", person="p2") == recorded
    assert party_of(e.service.view(e["med1"], e.case_id), "p2")["phone"] == ERASED
    assert e.store.key_store().destroyed(e.case_id, "p2")
    # the whole case after a person; a person after the whole case: the case's erasure
    whole = e.service.erase(e["director"], e.case_id, basis="PIPL 47")
    assert whole.payload["person"] == "" and whole.seq == recorded.seq + 1
    assert e.service.erase(e["director"], e.case_id, basis="PIPL 47", person="agent2") == whole
    assert e.service.erase(e["director"], e.case_id, basis="PIPL 47") == whole
    assert e.service.view(e["med1"], e.case_id).erased == ("*", "p1", "p2")
    assert verify(e.store.read(e.case_id), strict=True, vault=e.service.vault).ok


def test_between_the_erasure_and_the_keys_destruction_nothing_new_is_sealed() -> None:
    """A crash after the erasure's event, before the keys went: the decision itself refuses new
    personal data of the case (not only the key store's tombstone), and replay refuses it too."""
    e = negotiating()
    e.service = CaseService(
        e.store,
        directory=e.world.directory,
        clock=e.clock,
        vault=CrashingVault(e.store.key_store()),
    )
    with pytest.raises(OSError):
        e.service.erase(e["director"], e.case_id, basis="PIPL 47")
    assert not e.store.key_store().destroyed(e.case_id, "")  # the keys are still there
    with unchanged(e), pytest.raises(KeyDestroyed):
        e.run("med1", cmd.RecordMinutes("新的笔录内容"))
    # a forger who seals new minutes under the surviving key: replay refuses the event
    records = e.store.read(e.case_id)
    seq = len(records) + 1
    vault = AESGCMVault(e.store.key_store())
    from mediation._privacy import seal_payload

    spec = WORKFLOW.command("record_minutes")
    payload = seal_payload(
        vault, WORKFLOW, spec, e.case_id, seq, {"text": "新的笔录内容", "document": None}
    )

    def add(bodies_: list[dict[str, Any]]) -> None:
        last = bodies_[-1]
        bodies_.append(
            {
                **last,
                "seq": seq,
                "type": "record_minutes",
                "payload": payload,
                "as": "lead_mediator",
                "actor": "med1",
            }
        )

    forged = rechain(records, add)
    verdict = verify(forged, e.case_id, strict=True, vault=vault)
    assert verdict.fault is not None and verdict.fault.seq == seq
    assert verdict.fault.kind is FaultKind.ILLEGAL_TRANSITION
    assert isinstance(verdict.fault.error, KeyDestroyed)


@pytest.mark.parametrize(
    "who", ["med1", "p1", "agent2", "auditor", "supervisor", "stranger", "outsider-med"]
)
def test_only_the_director_erases(who: str) -> None:
    e = rich()
    with unchanged(e), pytest.raises(NotPermitted):
        e.service.erase(e[who], e.case_id, basis="PIPL 47", person="p1")
    with unchanged(e), pytest.raises(NotPermitted):
        e.service.erase(e[who], e.case_id, basis="PIPL 47")
    with unchanged(e), pytest.raises(NotPermitted):
        e.run(who, cmd.ErasePersonalData("PIPL 47"))
    assert e.store.key_store().get(e.case_id, "p1", 1) is not None
    assert e.service.view(e["med1"], e.case_id).erased == ()
    # nor repeats the director's erasure
    e.service.erase(e["director"], e.case_id, basis="PIPL 47", person="p2")
    with unchanged(e), pytest.raises(NotPermitted):
        e.service.erase(e[who], e.case_id, basis="PIPL 47", person="p2")


@pytest.mark.parametrize("person", ["p3", "med1", "inv1", "nobody", "director"])
def test_erasing_someone_not_in_the_case_is_refused(person: str) -> None:
    e = rich()
    with unchanged(e), pytest.raises(MediationError, match=person):
        e.service.erase(e["director"], e.case_id, basis="PIPL 47", person=person)
    assert e.service.view(e["med1"], e.case_id).erased == ()


def test_erasing_with_sealing_off_is_refused() -> None:
    e = sealing_off()
    e.drive("negotiating", opening())
    # the data was recorded in plain text: the decision refuses (as replay would)
    with unchanged(e), pytest.raises(GuardFailed, match="plain text"):
        e.service.erase(e["director"], e.case_id, basis="PIPL 47")
    with unchanged(e), pytest.raises(GuardFailed, match="plain text"):
        e.service.erase(e["director"], e.case_id, basis="PIPL 47", person="p1")
    # sealed data, but a service without a vault: it has no keys to destroy
    e = negotiating()
    e.service = CaseService(e.store, directory=e.world.directory, clock=e.clock, sealing=False)
    with unchanged(e), pytest.raises(InvalidCommand, match="sealing is off"):
        e.service.erase(e["director"], e.case_id, basis="PIPL 47", person="p1")


def test_data_recorded_with_sealing_off_is_not_reported_erased() -> None:
    """A case recorded while sealing was off holds its personal data in plain text: once sealing
    is on, erasing it cannot destroy anything.  The decision refuses the erasure (of that person,
    or of the whole case), and replay refuses the same erasure forged into the log, with the same
    error: the log itself shows the data was recorded in plain text."""
    e = sealing_off()
    e.drive("negotiating", opening())
    e.service = CaseService(e.store, directory=e.world.directory, clock=e.clock)  # sealing on
    for person in ("p1", ""):
        with unchanged(e), pytest.raises(GuardFailed, match="plain text") as refused:
            e.service.erase(e["director"], e.case_id, basis="PIPL 47", person=person)
        records = e.store.read(e.case_id)
        last = json.loads(records[-1].body)
        erasure = {
            **last,
            "seq": last["seq"] + 1,
            "type": "erase_personal_data",
            "actor": "director",
            "as": "director",
            "payload": to_payload(cmd.ErasePersonalData("PIPL 47", person)),
        }
        forged = rechain(records, lambda b, erasure=erasure: b.append(erasure))  # type: ignore[misc]
        for strict in (False, True):
            verdict = verify(forged, e.case_id, strict=strict)
            assert verdict.fault is not None
            assert (verdict.fault.seq, verdict.fault.kind) == (
                len(records) + 1,
                FaultKind.ILLEGAL_TRANSITION,
            )
            assert type(verdict.fault.error) is GuardFailed
            assert str(verdict.fault.error) == str(refused.value)
    # what sealing recorded afterwards does not make the earlier plain text erasable either
    e.run("med1", cmd.RecordMinutes(MINUTES))
    with unchanged(e), pytest.raises(GuardFailed, match="plain text"):
        e.service.erase(e["director"], e.case_id, basis="PIPL 47", person="p1")
    assert e.service.case(e.case_id).plain >= {"p1", "p2", ""}


def test_a_person_whose_data_was_always_sealed_is_erasable_beside_plain_text() -> None:
    """Plain text of one person (an agent recorded while sealing was off) does not keep another,
    whose data was sealed, from being erased; the whole case then is not erasable."""
    e = negotiating()
    assert e.service.case(e.case_id).plain == frozenset()
    off = CaseService(e.store, directory=e.world.directory, clock=e.clock, sealing=False)
    e.clock.advance(minutes=1)
    off.execute(e["p1"], e.case_id, cmd.AppointAgent(AGENT, doc("授权委托书")))
    plain = e.service.case(e.case_id).plain
    assert AGENT.id in plain and "p2" not in plain
    e.service.erase(e["director"], e.case_id, basis="PIPL 47", person="p2")
    with unchanged(e), pytest.raises(GuardFailed, match="plain text"):
        e.service.erase(e["director"], e.case_id, basis="PIPL 47")
    assert verify(e.store.read(e.case_id), e.case_id, strict=True).ok


def test_after_the_case_is_erased_new_personal_data_is_refused() -> None:
    e = negotiating()
    e.service.erase(e["director"], e.case_id, basis="PIPL 47")
    for who, command in (
        ("med1", cmd.RecordMinutes("新的笔录内容")),
        ("med1", cmd.ShareProposal("新的调解方案")),
        ("p1", cmd.AppointAgent(AGENT, doc("授权委托书"))),
        ("p1", cmd.RequestRecusal("med1", "新的回避理由")),
        ("med1", cmd.DraftAgreement(content())),
    ):
        with unchanged(e), pytest.raises(KeyDestroyed) as info:
            e.run(who, command)
        assert isinstance(info.value, InvalidCommand), command
    # what carries no personal data still goes on (a reason is free text: none is given)
    with unchanged(e), pytest.raises(KeyDestroyed):
        e.run("med1", cmd.ProposeTermination("双方分歧较大", "litigation"))
    e.run("med1", cmd.Pause("appraisal"))
    assert verify(e.store.read(e.case_id), strict=True, vault=e.service.vault).ok


def test_after_a_person_is_erased_their_data_is_refused_but_others_go_on() -> None:
    e = negotiating()
    e.run("p2", cmd.AppointAgent(AGENT, doc("授权委托书")))
    e.service.erase(e["director"], e.case_id, basis="PIPL 47", person="agent2")
    e.run("med1", cmd.RecordMinutes(MINUTES))  # the case's free text: its keys are intact
    e.run("p1", cmd.AppointAgent(attrs.evolve(AGENT, id="agent1", name="钱思远"), doc("委托书")))
    view = e.service.view(e["med1"], e.case_id)
    agents = {p["agent"]["id"]: p["agent"] for p in payload_of(view, "appoint_agent")}
    assert agents["agent1"]["name"] == "钱思远" and agents["agent2"]["name"] == ERASED
    assert view.erased == ("agent2",)


@pytest.mark.parametrize("person", ["p1", ""])
def test_a_case_whose_parties_were_erased_cannot_be_transferred(person: str) -> None:
    e = Env()
    e.drive("registered", opening())
    e.service.erase(e["director"], e.case_id, basis="PIPL 47", person=person)
    before = sorted(e.store.case_ids())
    # decided (replay refuses it too): the whole case erased, the transfer's reason cannot be
    # recorded; a party erased, the case it opens cannot carry them
    expected = KeyDestroyed if not person else GuardFailed
    with unchanged(e), pytest.raises(expected, match="erased") as info:
        e.run("director", cmd.Transfer("street_committee", "c2", "涉及多个社区"))
    assert getattr(info.value, "guard", "transfer_link") == "transfer_link"
    assert sorted(e.store.case_ids()) == before


def test_a_case_not_erased_is_transferred_sealed_under_the_new_cases_keys() -> None:
    e = Env()
    e.drive("registered", opening())
    event = e.run("director", cmd.Transfer("street_committee", "c2", "涉及多个社区"))
    new = event.payload["new_case"]
    assert not found(bodies(e.store), ALL_PLAIN)
    view = e.service.view(e["outsider-med"], new)
    assert party_of(view, "p1")["name"] == P1.name and view.description == DESCRIPTION
    assert verify(e.store.read(new), strict=True, vault=e.service.vault).ok


def test_key_rotation() -> None:
    e = negotiating()
    keys = e.store.key_store()
    vault = e.service.vault
    assert isinstance(vault, AESGCMVault)
    assert keys.epoch() == 1 and keys.rotate() == 2 and keys.epoch() == 2
    e.run("med1", cmd.RecordMinutes(MINUTES))
    assert vault.rotate() == 3
    e.run("med1", cmd.ShareProposal(PROPOSAL))
    stored = [json.loads(r.body) for r in e.store.read(e.case_id)]
    assert stored[0]["payload"]["description"]["key"] == 1
    assert stored[-2]["payload"]["text"]["key"] == 2
    assert stored[-1]["payload"]["text"]["key"] == 3
    view = e.service.view(e["med1"], e.case_id)
    assert view.description == DESCRIPTION  # sealed under epoch 1, still opens
    assert payload_of(view, "record_minutes")[-1]["text"] == MINUTES
    assert payload_of(view, "share_proposal")[-1]["text"] == PROPOSAL
    assert verify(e.store.read(e.case_id), strict=True, vault=vault).ok
    assert all(keys.get(e.case_id, "", n) for n in (1, 2, 3))
    e.service.erase(e["director"], e.case_id, basis="PIPL 47")
    assert not any(keys.get(e.case_id, s, n) for s in ("", "p1", "p2") for n in (1, 2, 3))
    view = e.service.view(e["med1"], e.case_id)
    assert view.description == ERASED
    assert payload_of(view, "record_minutes")[-1]["text"] == ERASED
    assert payload_of(view, "share_proposal")[-1]["text"] == ERASED


# -- no residue in any file --------------------------------------------------------------------------


@pytest.mark.parametrize("person", ["p1", ""])
def test_no_copy_of_erased_data_or_its_keys_stays_in_any_file(tmp_path: Path, person: str) -> None:
    db = tmp_path / "cases.db"
    store = SQLiteStore(db)
    e = negotiating(store)
    e.run("p2", cmd.AppointAgent(AGENT, doc("授权委托书")))
    e.run("med1", cmd.RecordMinutes(MINUTES))
    store.key_store().rotate()  # keys of two epochs
    e.run("med1", cmd.ShareProposal(PROPOSAL))
    e.run("med1", cmd.ReviseProposal(1, REVISED))
    assert run("export", "--db", str(db), "-o", str(tmp_path / "before.jsonl"))[0] == 0
    keys = sqlite_keys(Path(f"{db}.keys"))
    doomed = {f"{s or 'case'}@{n}": k for (_, s, n), k in keys.items() if person in ("", s)}
    kept = {f"{s or 'case'}@{n}": k for (_, s, n), k in keys.items() if person not in ("", s)}
    # p1's data was all sealed before the rotation; the case's free text under both epochs
    assert {name.split("@")[1] for name in doomed} == ({"1"} if person else {"1", "2"})
    assert holding(tmp_path, doomed), "the keys were in the key file"
    plain = (
        PERSONAL["p1"]
        if person
        else [
            *PERSONAL["p1"],
            *PERSONAL["p2"],
            *PERSONAL["agent2"],
            DESCRIPTION,
            MINUTES,
            PROPOSAL,
            REVISED,
        ]
    )

    e.service.erase(e["director"], e.case_id, basis="PIPL 47", person=person)
    for args in (
        ("export", "--db", str(db), "-o", str(tmp_path / "after.jsonl")),
        ("export", "--db", str(db), "--decrypted", "-o", str(tmp_path / "decrypted.jsonl")),
        ("verify", "--db", str(db)),
    ):
        code, out, err = run(*args)
        assert code == 0, (args, out, err)
    names = {p.name for p in files(tmp_path)}
    assert {"cases.db", "cases.db.keys", "before.jsonl", "after.jsonl", "decrypted.jsonl"} <= names
    needles = {**doomed, **{v: v.encode() for v in plain}}
    assert not holding(tmp_path, needles)
    if kept:  # the scan finds what is there
        assert {n for _, n in holding(tmp_path, kept)} == set(kept)
    decrypted = (tmp_path / "decrypted.jsonl").read_text()
    assert ERASED in decrypted
    store.close()
    assert not holding(tmp_path, needles)
    with SQLiteStore(db) as again:
        view = CaseService(again, directory=e.world.directory).view(e["med1"], e.case_id)
        assert party_of(view, "p1")["phone"] == ERASED
    assert not holding(tmp_path, needles)


# -- the demo --------------------------------------------------------------------------------------


def test_the_demo_writes_no_phone_or_id_number_in_plain_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = inspect.getsource(demo_module)
    numbers = re.findall(r"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{11})(?![0-9])", source)
    names = re.findall(r'cmd\.Party\(\s*"[^"]+",\s*"([^"]+)"', source)
    assert numbers and names
    monkeypatch.chdir(tmp_path)
    for args in (["demo"], ["demo", "--scenario", "leak"]):
        code, out, err = run(*args)
        assert code == 0, out + err
        assert not [n for n in numbers if n in out + err]
    written = files(tmp_path)
    assert {p.name for p in written} >= {"mediation-demo.db", "mediation-demo.db.keys"}
    needles = {v: v.encode() for v in (*numbers, *names)}
    assert not holding(tmp_path, needles)


# -- the command line ------------------------------------------------------------------------------


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    """The noise dispute as ``case-a``, with the committee's roster (so that role claims are
    checked against it)."""
    path = tmp_path / "cases.db"
    with SQLiteStore(path) as store:
        service = demo_module.new_service(store, new_id=lambda: "case-a")
        demo_module.record_roster(service)
        demo_module.noise_dispute(service)
    return path


def test_cli_keys_status_and_rotate(demo_db: Path) -> None:
    db = str(demo_db)
    assert run("keys", "status", "--db", db) == (0, "current key epoch: 1\n", "")
    code, out, _ = run("keys", "status", "--db", db, "--json")
    assert code == 0 and json.loads(out) == {"epoch": 1}
    assert run("keys", "rotate", "--db", db) == (0, "new key epoch: 2\n", "")
    code, out, _ = run("keys", "rotate", "--db", db, "--json")
    assert code == 0 and json.loads(out) == {"epoch": 3}
    assert run("keys", "status", "--db", db)[:2] == (0, "current key epoch: 3\n")
    with SQLiteStore(demo_db) as store:
        assert store.key_store().epoch() == 3
    assert run("keys", "--db", db)[0] == ExitCode.USAGE
    assert run("keys", "forget", "--db", db)[0] == ExitCode.USAGE


def test_cli_erase(demo_db: Path) -> None:
    db = str(demo_db)
    erase_p1 = ("erase", "--db", db, "--actor", "dir-li", "--basis", "PIPL 47", "case-a")
    erase_p1 += ("--person", "res-1502")
    code, out, err = run(*erase_p1)
    assert code == 0, err
    assert "res-1502" in out and "event 22" in out and not err
    with SQLiteStore(demo_db) as store:
        service = demo_module.new_service(store)
        case = service.case("case-a")
        assert case.erased == frozenset({"res-1502"})
        last = service.history("case-a")[-1]
        assert (last.type, last.actor, last.payload["basis"]) == (
            "erase_personal_data",
            "dir-li",
            "PIPL 47",
        )
        view = service.view(demo_module.DIRECTOR, "case-a")
        assert party_of(view, "res-1502")["phone"] == ERASED
        assert party_of(view, "res-1402")["phone"] == "13900001402"
    # again: the same event
    code, out, err = run(*erase_p1, "--json")
    assert code == 0 and json.loads(out)["seq"] == 22
    code, out, err = run(
        "erase", "--db", db, "--actor", "dir-li", "--basis", "PIPL 47", "case-a", "--json"
    )
    assert code == 0, err
    doc_ = json.loads(out)
    assert doc_["case"] == "case-a" and doc_["person"] == "" and doc_["seq"] == 23
    assert re.fullmatch("[0-9a-f]{64}", doc_["hash"])
    assert run("verify", "--db", db)[0] == 0
    code, out, _ = run("timeline", "case-a", "--db", db, "--as", "director")
    assert code == 0 and ERASED in out and "13900001402" not in out


def _records(path: Path) -> list[StoredEvent]:
    with SQLiteStore(path) as store:
        return list(store.scan())


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("case-zz",), ExitCode.INPUT, "no case case-zz"),
        (("not a case id!",), ExitCode.INPUT, "no case"),
        (("case-a", "--person", "res-9999"), ExitCode.INPUT, "res-9999"),
        (("case-a", "--person", "bad person!"), ExitCode.INPUT, "person"),
    ],
)
def test_cli_erase_refusals_are_clear(
    demo_db: Path, args: tuple[str, ...], code: int, says: str
) -> None:
    before = _records(demo_db)
    result = run("erase", "--db", str(demo_db), "--actor", "dir-li", "--basis", "PIPL 47", *args)
    assert result[0] == code, result
    assert says in result[2] and "Traceback" not in result[1] + result[2]
    assert result[2].count("\n") <= 1, result[2]
    assert _records(demo_db) == before


def test_cli_erase_by_someone_the_roster_does_not_name_director(demo_db: Path) -> None:
    before = _records(demo_db)
    for actor in ("med-wang", "stranger"):
        code, out, err = run(
            "erase", "--db", str(demo_db), "--actor", actor, "--basis", "PIPL 47", "case-a"
        )
        assert code == ExitCode.INPUT and actor in err and "Traceback" not in out + err
    code, out, err = run(
        "erase", "--db", str(demo_db), "--actor", "dir-li", "--basis", " ", "case-a"
    )
    assert code == ExitCode.INPUT and "basis" in err and "Traceback" not in out + err
    assert run("erase", "--db", str(demo_db), "case-a")[0] == ExitCode.USAGE
    assert _records(demo_db) == before


def test_cli_erase_on_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    code, out, err = run(
        "erase",
        "--db",
        str(tmp_path / "nope.db"),
        "--actor",
        "dir-li",
        "--basis",
        "PIPL 47",
        "case-a",
    )
    assert code in (ExitCode.IO, ExitCode.INPUT) and "Traceback" not in out + err
    assert not list(tmp_path.iterdir())


def test_the_cli_verifier_opens_every_sealed_value_unless_told_not_to(tmp_path: Path) -> None:
    """A ciphertext changed and the chain rebuilt over it: ``mediation verify --db`` (which uses
    ``<db>.keys``) reports the ``sealed`` fault at the event; ``--no-seals`` sees a valid chain."""
    from test_cli import reseal

    db = tmp_path / "cases.db"
    with SQLiteStore(db) as store:
        e = Env(store=store, case_id="k1")
        e.drive("registered", opening())
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER IF EXISTS mediation_events_no_update")
        (body,) = conn.execute(
            "SELECT body FROM mediation_events WHERE case_id = 'k1' AND seq = 1"
        ).fetchone()
        record = json.loads(body)
        blob = record["payload"]["applicants"][0]["name"]["sealed"]
        flipped = ("A" if blob[5] != "A" else "B").join((blob[:5], blob[6:]))
        record["payload"]["applicants"][0]["name"]["sealed"] = flipped
        forged = canonical_bytes(record, checked=False)
        conn.execute(
            "UPDATE mediation_events SET body = ?, hash = ? WHERE case_id = 'k1' AND seq = 1",
            (forged, event_hash(forged)),
        )
        reseal(conn, "k1", 2)  # every later hash and link recomputed, the summary row fixed
    finally:
        conn.close()
    code, out, _ = run("verify", "--db", str(db))
    assert code == 1 and "sealed" in out and "seq 1" in out, out
    code, out, _ = run("verify", "--db", str(db), "--no-seals")
    assert code == 0, out


def test_the_live_decision_sees_the_stand_ins_replay_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service decides on the payload with each value it will seal replaced by the stand-in a
    strict replay decides on: no guard can read, live, what replay cannot."""
    import mediation._service as service_module
    from mediation._privacy import SEALED_STANDIN, standins

    seen: list[dict[str, Any]] = []
    decide = service_module.decide

    def spy(case: Any, command: str, actor: str, payload: Any, *a: Any, **kw: Any) -> Any:
        seen.append(dict(payload))
        return decide(case, command, actor, payload, *a, **kw)

    monkeypatch.setattr(service_module, "decide", spy)
    e = Env()
    e.open(opening())
    (decided,) = seen
    assert decided["description"] == SEALED_STANDIN
    assert {p["name"] for p in decided["applicants"]} == {SEALED_STANDIN}
    stored = e.service.history(e.case_id)[0].payload
    assert decided == standins(WORKFLOW, WORKFLOW.command("apply"), stored)


def test_a_vault_is_refused_a_mapping_for_a_key_store() -> None:
    """Before sealing was the default a vault took a dict of keys: now a clear, typed error."""
    with pytest.raises(InvalidCommand, match="KeyStore") as info:
        AESGCMVault({})  # type: ignore[arg-type]
    assert info.value.field == "keys"
