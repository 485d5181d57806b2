"""A case that ends in ``failed``: mediation terminated, with the route the parties can take.

A water leak between two flats of 天鹅堡: the parties meet but cannot agree on compensation.  The lead
mediator proposes termination and records the referral route (litigation); the director terminates
with the parties informed in writing (PML26, guard G9), and archives the case.  The commands are in
``src/mediation/demo.py`` (:func:`mediation.demo.leak_dispute`).

    python examples/failed_case.py [DB_PATH]
"""

from __future__ import annotations

import os
import sys
import tempfile

from mediation import SQLiteStore, rosters_of, verify
from mediation.demo import DIRECTOR, leak_dispute, new_service, record_roster


def main(db_path: str) -> int:
    with SQLiteStore(db_path) as store:
        service = new_service(store)
        record_roster(service)  # who holds which role, recorded before anyone acts
        case_id = leak_dispute(service)

        case = service.case(case_id)
        print(f"case {case_id} ({case.category}/{case.subtype}) in {db_path}")
        for e in service.history(case_id):
            print(f"  {e.seq:>2} {e.type:<20} {e.actor:<9} as {e.acted_as:<13} -> {e.state}")
        assert case.termination is not None
        # the reason is free text, sealed in the log: read through the director's view
        (proposal,) = [
            t.payload
            for t in service.view(DIRECTOR, case_id).timeline
            if t.type == "propose_termination" and t.payload is not None
        ]
        print(f"terminated: {proposal['reason']} (route: {case.termination['route']})")
        print(
            f"parties informed of the route: {case.terminated_informed}; archived: {case.archived}"
        )

        verdict = verify(store.read(case_id), case_id, strict=True, rosters=rosters_of(store))
    print(verdict.describe("en"))
    print(verdict.describe("zh"))
    return 0 if verdict.ok and case.state == "failed" else 1


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.mkdtemp(), "mediation.db")
    sys.exit(main(path))
