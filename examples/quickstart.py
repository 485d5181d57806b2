"""Quickstart: the 天鹅堡 noise dispute through all six stages, on SQLite, printed and verified.

申请 — 登记 — 会议 — 协商 — 协议 — 回访: the platform's early warning opens the case, the committee
registers it, a street cadre is invited ("1+N"), the parties meet, negotiate, sign, and a follow-up
visit confirms performance.  The case itself is told, command by command, in
``src/mediation/demo.py`` (:func:`mediation.demo.noise_dispute`); ``mediation demo`` runs it too.

    python examples/quickstart.py [DB_PATH]
"""

from __future__ import annotations

import os
import sys
import tempfile

from mediation import SQLiteStore, rosters_of, verify
from mediation.demo import new_service, noise_dispute, record_roster


def main(db_path: str) -> int:
    with SQLiteStore(db_path) as store:
        service = new_service(store)
        record_roster(service)  # who holds which role, recorded before anyone acts
        case_id = noise_dispute(service)

        case = service.case(case_id)
        print(f"case {case_id} ({case.category}/{case.subtype}) in {db_path}")
        for e in service.history(case_id):
            print(
                f"  {e.seq:>2} {e.at:%Y-%m-%d %H:%M} {e.type:<18} {e.actor:<9} "
                f"as {e.acted_as:<13} -> {e.state:<19} {e.hash[:12]}"
            )

        # verify from the stored bytes: the hash chain, every transition, guard and role claim
        # (the roles against the roster recorded in the same store)
        verdict = verify(store.read(case_id), case_id, strict=True, rosters=rosters_of(store))
    print(verdict.describe("en"))
    print(verdict.describe("zh"))
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.mkdtemp(), "mediation.db")
    sys.exit(main(path))
