"""Personal data sealed by default, then erased on request (PIPL 47), the history still valid.

The 天鹅堡 noise dispute (``mediation.demo.noise_dispute``) is recorded on a SQLite store: the
parties' names and phone numbers, the description, the minutes, the proposals and the agreement's
text are sealed in the log under keys kept in ``<db>.keys``.  The director sees them, an auditor
sees them masked; then 陈女士 asks for her personal data to be deleted.  The erasure is recorded,
the keys are destroyed, and every file of the store is scanned: her name and phone number are in
none of them, while the case still verifies, strictly, byte for byte as before.  See
docs/privacy.md.

    python examples/erasure.py [DIRECTORY]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from mediation import Actor, SQLiteStore, rosters_of, verify
from mediation.demo import DIRECTOR, new_service, noise_dispute, record_roster

NAME, PHONE = "陈女士", "13800001502"  # the applicant of the noise dispute (res-1502)


def main(directory: Path) -> int:
    db = directory / "cases.db"
    with SQLiteStore(db) as store:
        service = new_service(store)
        record_roster(service)
        case_id = noise_dispute(service)
        before = store.read(case_id)
        on_disk = b"".join(p.read_bytes() for p in directory.iterdir() if p.is_file())
        print(f"case {case_id}: {len(before)} events in {db.name}, keys in {db.name}.keys")
        print(f"  {NAME} in plain text in the store's files: {NAME.encode() in on_disk}")

        director = DIRECTOR
        auditor = Actor.with_roles("auditor-1", {"rongyue": ["auditor"]})
        applicant = service.view(director, case_id).parties[0]
        masked = service.view(auditor, case_id)
        print(f"  the director sees: {applicant['name']} {applicant['phone']}")
        print(f"  an auditor sees:   {masked.parties[0]['name']} {masked.parties[0]['phone']}")
        for member, rule in masked.masks.items():
            print(f"    {member}: {rule}")

        event = service.erase(
            director, case_id, basis="PIPL 47(1)3: 当事人撤回同意，请求删除", person="res-1502"
        )
        print(
            f"erased: event {event.seq} ({event.type}) by {event.actor}, basis {event.payload['basis']}"
        )
        after = service.view(director, case_id).parties[0]
        print(f"  the director now sees: {after['name']} {after['phone']}")

        records = store.read(case_id)
        assert records[: len(before)] == before  # not a byte of the history changed
        verdict = verify(records, case_id, strict=True, rosters=rosters_of(store))
    left = [
        p.name
        for p in directory.iterdir()
        if p.is_file() and (NAME.encode() in p.read_bytes() or PHONE.encode() in p.read_bytes())
    ]
    print(f"  files holding {NAME} or {PHONE} after the erasure: {left or 'none'}")
    print(verdict.describe("en"))
    print(verdict.describe("zh"))
    return 0 if verdict.ok and not left and after["name"] == "[erased]" else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory(prefix="mediation-erasure-") as tmp:
        sys.exit(main(Path(tmp)))
