"""A store whose personal data is sealed by the vault is audited like any other.

Every party with a phone, an ID number or an address has those fields sealed (a sealed value is
far longer than the plaintext limit of its field); strict verification validates the shape of a
sealed payload, not the length of the ciphertext.  So `mediation verify --strict` passes,
`mediation checkpoint` signs the store, and `timeline`, `report`, `export` and `import` accept
every case it holds.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mediation import Actor, AESGCMVault, CaseService, SQLiteKeyStore, SQLiteStore, verify
from mediation import commands as cmd
from mediation.cli import main
from mediation.demo import StepClock, directory, leak_dispute, noise_dispute

pytest.importorskip("cryptography")


def run(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue() + err.getvalue()


@pytest.fixture
def sealed_db(tmp_path: Path) -> Path:
    path = tmp_path / "sealed.db"
    keys = SQLiteKeyStore(tmp_path / "keys.db")
    with SQLiteStore(path) as store:
        service = CaseService(
            store, directory=directory(), clock=StepClock(), vault=AESGCMVault(keys)
        )
        noise_dispute(service)
        leak_dispute(service)
        service.open(
            Actor("res-0301"),
            cmd.Apply(
                committee="rongyue",
                category="邻里",
                description="楼道堆物",
                applicants=(
                    cmd.Party(
                        "res-0301",
                        "吴女士",
                        phone="13512345678",
                        id_number="41090219800101123X",
                        address="荣悦小区 3 栋 1 单元 301",
                        employer="某某公司",
                    ),
                ),
                respondents=(cmd.Party("res-0302", "郑先生", phone="13612345678"),),
            ),
            case_id="case-sealed",
        )
        service.execute(
            Actor("res-0301"),
            "case-sealed",
            cmd.AppointAgent(
                cmd.Party("agent-0301", "吴先生", phone="13712345678"),
                cmd.DocRef("a" * 64, "application/pdf", "授权委托书"),
            ),
        )
        ids = store.case_ids()
        for case_id in ids:
            records = store.read(case_id)
            assert b'"sealed":' in records[0].body  # personal data is sealed in the log
            assert verify(records, case_id, strict=True).ok
    keys.close()
    return path


def test_a_sealed_store_verifies_strictly_and_checkpoints(sealed_db: Path, tmp_path: Path) -> None:
    code, text = run("verify", "--db", str(sealed_db), "--strict")
    assert code == 0, text
    code, text = run("keygen", "--out", str(tmp_path / "signer.key"))
    assert code == 0, text
    code, text = run("checkpoint", "--db", str(sealed_db), "--key", str(tmp_path / "signer.key"))
    assert code == 0, text
    code, text = run("verify", "--db", str(sealed_db), "--key", str(tmp_path / "signer.key.pub"))
    assert code == 0, text


def test_timeline_report_export_and_import_accept_every_sealed_case(
    sealed_db: Path, tmp_path: Path
) -> None:
    with SQLiteStore(sealed_db, create=False) as store:
        ids = store.case_ids()
    assert len(ids) == 3
    for case_id in ids:
        code, text = run("timeline", case_id, "--db", str(sealed_db))
        assert code == 0, text
        out = tmp_path / f"{case_id}.html"
        code, text = run("report", case_id, "--db", str(sealed_db), "--html", str(out))
        assert code == 0, text
        assert out.stat().st_size > 0
    export = tmp_path / "sealed.jsonl"
    code, text = run("export", "--db", str(sealed_db), "-o", str(export))
    assert code == 0, text
    assert "13512345678" not in export.read_text(encoding="utf-8")
    target = tmp_path / "imported.db"
    code, text = run("import", str(export), "--db", str(target))
    assert code == 0, text
    code, text = run("verify", "--db", str(target), "--strict")
    assert code == 0, text
    with SQLiteStore(target, create=False) as store:
        assert store.case_ids() == ids
        for case_id in ids:
            assert verify(store.read(case_id), case_id, strict=True).ok
