"""Personal data sealed per case: never in the log in plain text, erasable without breaking it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediation import AESGCMVault, SQLiteKeyStore, SQLiteStore, verify
from mediation import commands as cmd
from mediation._privacy import SEALED
from mediation.testing import World

PHONE, ID_NUMBER, NAME = "13800001502", "410902198001011234", "陈女士"


def _open(world: World, service: object, case_id: str = "k1") -> None:
    from mediation import CaseService

    assert isinstance(service, CaseService)
    service.execute(
        world["p1"],
        case_id,
        cmd.Apply(
            committee=world.committee,
            category="邻里",
            description="楼上噪声",
            applicants=(cmd.Party("p1", NAME, phone=PHONE, id_number=ID_NUMBER),),
            respondents=(cmd.Party("org1", "天鹅堡物业公司", kind="organisation"),),
        ),
    )
    service.execute(world["org1"], case_id, cmd.RecordConsent())
    service.execute(world["director"], case_id, cmd.Register())
    service.execute(world["director"], case_id, cmd.AssignMediator("med1", lead=True))
    service.execute(
        world["p1"],
        case_id,
        cmd.AppointAgent(cmd.Party("agent1", "张律师", phone="13900000001"), _doc()),
    )


def _doc() -> cmd.DocRef:
    return cmd.DocRef("ab" * 32, "application/pdf", "授权委托书")


def _all_bytes(store: SQLiteStore) -> bytes:
    return b"".join(r.body for r in store.scan())


def test_the_log_holds_no_plaintext_personal_data(tmp_path: Path) -> None:
    world = World()
    store = SQLiteStore(tmp_path / "cases.db")
    service = world.service(store, vault=AESGCMVault())
    _open(world, service)
    stored = _all_bytes(store)
    for secret in (PHONE, ID_NUMBER, NAME, "张律师", "13900000001"):
        assert secret.encode() not in stored
    assert SEALED.encode() in stored
    # an organisation's name is not personal data and stays readable (G4 matches on it)
    assert "天鹅堡物业公司".encode() in stored
    assert verify(store.read("k1"), "k1").ok


def test_entitled_viewers_see_the_plaintext_through_the_vault() -> None:
    world = World()
    service = world.service(vault=AESGCMVault())
    _open(world, service)
    (applicant,) = [p for p in service.view(world["med1"], "k1").parties if p["id"] == "p1"]
    assert applicant["name"] == NAME and applicant["phone"] == PHONE
    assert applicant["id_number"].endswith("1234") and ID_NUMBER not in applicant["id_number"]
    audit = service.view(world["auditor"], "k1")
    (masked,) = [p for p in audit.parties if p["id"] == "p1"]
    assert masked["name"] == "陈**" and PHONE not in masked["phone"]


def test_erasure_keeps_every_hash_and_the_case_working(tmp_path: Path) -> None:
    world = World()
    keys = SQLiteKeyStore(tmp_path / "keys.db")
    store = SQLiteStore(tmp_path / "cases.db")
    vault = AESGCMVault(keys)
    service = world.service(store, vault=vault)
    _open(world, service)
    before = store.read("k1")
    vault.erase("k1")
    assert "k1" not in keys
    after = store.read("k1")
    assert after == before  # not a byte of the log changed
    assert verify(after, "k1").ok
    view = service.view(world["med1"], "k1")
    (applicant,) = [p for p in view.parties if p["id"] == "p1"]
    assert applicant["name"] == "[erased]" and applicant["phone"] == "[erased]"
    # the case goes on: the next command appends to the same chain
    service.execute(world["med1"], "k1", cmd.NotifyRights(("p1", "org1")))
    assert verify(store.read("k1"), "k1").ok


def test_without_a_vault_sealed_fields_show_as_sealed() -> None:
    world = World()
    sealing = world.service(vault=AESGCMVault())
    _open(world, sealing)
    reader = world.service(sealing.store)  # an auditor's tool without the keys
    (applicant,) = [p for p in reader.view(world["med1"], "k1").parties if p["id"] == "p1"]
    assert applicant["name"] == "[sealed]"


def test_a_token_of_another_case_does_not_open() -> None:
    vault = AESGCMVault()
    token = vault.seal("k1", "陈女士")
    vault.seal("k2", "x")
    from mediation import MediationError

    with pytest.raises(MediationError):
        vault.unseal("k2", token)  # the case id is bound as associated data
    assert vault.unseal("k1", token) == "陈女士"


def test_a_refused_opening_leaves_no_key_behind() -> None:
    world = World()
    vault = AESGCMVault()
    service = world.service(vault=vault)
    from mediation import MediationError

    with pytest.raises(MediationError):  # a stranger may not open a case for someone else
        service.execute(
            world["stranger"],
            "k9",
            cmd.Apply(
                committee=world.committee,
                category="邻里",
                description="噪声",
                applicants=(cmd.Party("p1", NAME, phone=PHONE),),
                respondents=(cmd.Party("p2", "刘先生"),),
            ),
        )
    assert "k9" not in vault.keys
