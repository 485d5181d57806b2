"""The reference web app (examples/webapp), in process through FastAPI's TestClient.

A whole case through the six stages over HTTP; every error status the app answers with, each an
RFC 9457 problem made by ``mediation.web.problem``; idempotent retries (the same Idempotency-Key
returns the same event and stores nothing new; a key reused for another command is a 409); the
command catalogue; the app's configuration from the environment, and an import without side
effects.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # examples/ is not installed: import it from the checkout
    sys.path.insert(0, str(ROOT))

with warnings.catch_warnings():  # recent Starlette would rather have httpx2; httpx works the same
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from examples.webapp.app import (  # noqa: E402
    Settings,
    create_app,
    load_directory,
    tcp_nodelay_on_listeners,
)
from examples.webapp.scenario import DIRECTOR, Step, drive, noise_case, request  # noqa: E402

from mediation import CaseService, MemoryStore, OutcomeUnknown, SQLiteStore, verify  # noqa: E402
from mediation.commands import COMMAND_TYPES  # noqa: E402

DIRECTORY = ROOT / "examples" / "webapp" / "directory.json"
PROBLEM = "application/problem+json"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "web.db")


@pytest.fixture
def client(db: str) -> Iterator[TestClient]:
    """The app as uvicorn would run it: configured by Settings, its service built at startup."""
    app = create_app(Settings(db=db, directory=str(DIRECTORY)))
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http


def post(
    http: TestClient,
    step: Step,
    case_id: str | None = None,
    *,
    key: str | None = None,
    **params: str,
) -> Any:
    path, body = request(step, case_id)
    headers = {"X-Actor": step.actor}
    if key is not None:
        headers["Idempotency-Key"] = key
    return http.post(path, json=body, headers=headers, params=params)


def open_case(http: TestClient, n: int = 0, **kw: Any) -> str:
    response = post(http, noise_case(n)[0][0], **kw)
    assert response.status_code == 201, response.text
    case_id: str = response.json()["case_id"]
    return case_id


def to_phase(http: TestClient, upto: int, n: int = 0) -> tuple[str, list[list[Step]]]:
    """Open case ``n`` and run its phases before ``upto``; returns the id and the phases."""
    phases = noise_case(n)
    case_id = drive(http, phases[:upto])
    return case_id, phases


def assert_problem(response: Any, status: int, kind: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem of ``status`` (and of type ``.../problems/<kind>``), in two languages."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    if kind is not None:
        assert body["type"] == f"https://mediation.invalid/problems/{kind}", body
        assert body["title_zh"] and body["detail_zh"]
    return body


def stored(db: str) -> list[Any]:
    with SQLiteStore(db) as store:
        return list(store.scan())


# -- the whole case -----------------------------------------------------------------------------


def test_a_case_through_all_six_stages(client: TestClient, db: str) -> None:
    phases = noise_case(0)
    case_id: str | None = None
    states = []
    for phase in phases:
        for step in phase:
            response = post(client, step, case_id)
            assert response.status_code == 201, response.text
            body = response.json()
            event = body["event"] if step.opens else body
            if step.opens:
                case_id = body["case_id"]
                assert response.headers["location"] == f"/cases/{case_id}"
            assert event["type"] == step.command
            states.append(event["state"])
    assert case_id is not None
    assert states[0] == "applied"
    for state in ("registered", "meeting_scheduled", "negotiating", "agreement_drafted"):
        assert state in states
    assert states[-4:] == ["agreement_effective", "following_up", "resolved", "resolved"]

    # what the lead mediator sees, and may do now
    view = client.get(f"/cases/{case_id}", headers={"X-Actor": "med-wang"})
    assert view.status_code == 200, view.text
    assert view.json()["state"] == "resolved"
    allowed = client.get(f"/cases/{case_id}/allowed", headers={"X-Actor": DIRECTOR})
    assert allowed.status_code == 200, allowed.text
    timeline = client.get(f"/cases/{case_id}/timeline", headers={"X-Actor": "res-0-15"})
    assert timeline.status_code == 200, timeline.text
    assert len(timeline.json()) == len(states)

    # the parties do not see the minutes (PML15(4)); the events endpoint redacts them too
    events = client.get(f"/cases/{case_id}/events", headers={"X-Actor": "res-0-14"}).json()
    assert [e["seq"] for e in events] == list(range(1, len(states) + 1))
    minutes = next(e for e in events if e["type"] == "record_minutes")
    assert "噪声污染防治法" not in json.dumps(minutes, ensure_ascii=False)
    mine = client.get(f"/cases/{case_id}/events", headers={"X-Actor": "med-wang"}).json()
    minutes = next(e for e in mine if e["type"] == "record_minutes")
    assert "噪声污染防治法" in json.dumps(minutes, ensure_ascii=False)
    assert [e["hash"] for e in mine] == [e["hash"] for e in events]
    assert all(e["prev"] == p["hash"] for p, e in itertools.pairwise(mine))
    # a supervisor sees the chain, but neither who did what nor the payloads
    chain = client.get(f"/cases/{case_id}/events", headers={"X-Actor": "sup-zhao"}).json()
    assert [e["hash"] for e in chain] == [e["hash"] for e in mine]
    assert {e["actor"] for e in chain} == {None} and {e["payload"] for e in chain} == {None}

    verdict = client.get(f"/cases/{case_id}/verify", headers={"X-Actor": "aud-sun"})
    assert verdict.status_code == 200, verdict.text
    assert verdict.json()["ok"] is True

    # and the store holds exactly those events, verified from its bytes
    records = stored(db)
    assert len(records) == len(states)
    assert verify(records, case_id).ok


def test_the_same_case_with_idempotency_keys(client: TestClient, db: str) -> None:
    case_id = drive(client, noise_case(1), key_prefix="k")
    assert verify(stored(db), case_id).ok
    assert all(
        r.request_id == f"k-{p}.{s}"
        for r, (p, s) in zip(
            stored(db),
            [(p, s) for p, phase in enumerate(noise_case(1)) for s in range(len(phase))],
            strict=True,
        )
    )


# -- errors --------------------------------------------------------------------------------------


def test_403_without_an_actor(client: TestClient) -> None:
    step = noise_case(0)[0][0]
    path, body = request(step, None)
    problem = assert_problem(client.post(path, json=body), 403, "not-permitted")
    assert "X-Actor" in problem["detail"]
    assert_problem(client.post(path, json=body, headers={"X-Actor": "not an id!"}), 403)
    case_id = open_case(client)
    assert_problem(client.get(f"/cases/{case_id}"), 403, "not-permitted")


def test_403_not_permitted(client: TestClient, db: str) -> None:
    case_id, _ = to_phase(client, 2)
    before = stored(db)
    # a resident is no director: registering is not theirs to do
    body = assert_problem(post(client, Step("res-0-15", "register"), case_id), 403, "not-permitted")
    assert (body["command"], body["actor"]) == ("register", "res-0-15")
    assert "state" not in body  # a refusal tells no one without standing where the case is
    assert body["basis"]  # the legal basis of the command
    # a stranger has no standing to see the case
    assert_problem(client.get(f"/cases/{case_id}", headers={"X-Actor": "res-9"}), 403)
    assert_problem(client.get(f"/cases/{case_id}/events", headers={"X-Actor": "res-9"}), 403)
    assert stored(db) == before


def test_404_no_such_case(client: TestClient) -> None:
    body = assert_problem(post(client, Step(DIRECTOR, "register"), "no-such-case"), 404)
    assert body["case"] == "no-such-case"
    for path in ("", "/allowed", "/timeline", "/events", "/verify"):
        response = client.get(f"/cases/no-such-case{path}", headers={"X-Actor": DIRECTOR})
        assert_problem(response, 404, "case-not-found")
    assert_problem(client.get("/no/such/route"), 404)


def test_409_illegal_transition(client: TestClient, db: str) -> None:
    case_id, phases = to_phase(client, 4)  # registered, lead mediator assigned
    before = stored(db)
    body = assert_problem(post(client, phases[2][0], case_id), 409, "illegal-transition")
    assert (body["command"], body["state"]) == ("register", "registered")
    assert_problem(post(client, Step("med-wang", "open_session"), case_id), 409)
    assert stored(db) == before


def test_409_guard_failed_names_the_guard_and_its_basis(client: TestClient, db: str) -> None:
    case_id, phases = to_phase(client, 6)  # invited, rights not yet notified
    before = stored(db)
    body = assert_problem(post(client, phases[7][0], case_id), 409, "guard-failed")
    assert (body["guard"], body["basis"], body["command"]) == ("G6", "R2002 30", "schedule_meeting")
    assert stored(db) == before


def test_409_opening_a_case_id_that_is_taken(client: TestClient) -> None:
    step = noise_case(0)[0][0]
    body = {"command": "apply", "payload": step.payload, "case_id": "case-1"}
    headers = {"X-Actor": step.actor}
    assert client.post("/cases", json=body, headers=headers).status_code == 201
    assert_problem(client.post("/cases", json=body, headers=headers), 409, "case-exists")


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        json.dumps({"mediator": "med-wang", "lead": "yes"}).encode(),
        json.dumps({"mediator": "med-wang", "colour": "red"}).encode(),
        json.dumps(["med-wang"]).encode(),
    ],
    ids=["not-json", "wrong-type", "unknown-field", "not-an-object"],
)
def test_422_bad_body(client: TestClient, db: str, content: bytes) -> None:
    case_id, _ = to_phase(client, 3)
    before = stored(db)
    response = client.post(
        f"/cases/{case_id}/commands/assign_mediator",
        content=content,
        headers={"X-Actor": DIRECTOR, "Content-Type": "application/json"},
    )
    assert_problem(response, 422, "invalid-command")
    assert stored(db) == before


def test_422_bad_opening_requests(client: TestClient) -> None:
    payload = noise_case(0)[0][0].payload
    headers = {"X-Actor": "res-0-15"}
    for body in (
        {"command": "register", "payload": payload},  # not an opening command
        {"command": "apply", "payload": {**payload, "category": "no such"}},
        {"command": "apply", "payload": payload, "colour": "red"},
        {"command": "apply", "payload": payload, "case_id": "bad id!"},
        "apply",
    ):
        assert_problem(client.post("/cases", json=body, headers=headers), 422)
    bad_key = {**headers, "Idempotency-Key": "not a key!"}
    assert_problem(
        client.post("/cases", json={"command": "apply", "payload": payload}, headers=bad_key), 422
    )


def test_an_unknown_command_is_refused(client: TestClient) -> None:
    case_id = open_case(client)
    body = assert_problem(post(client, Step(DIRECTOR, "no_such_command"), case_id), 422)
    assert body["field"] == "command"


class Broken(MemoryStore):
    """A store that fails: reads with a bug of the host's, appends with a lost connection."""

    def read(self, case_id: str, after_seq: int = 0) -> list[Any]:
        raise RuntimeError("secret internals")

    def append(self, summary: Any, records: Any, expected_seq: int) -> None:
        raise OutcomeUnknown("the connection was lost after COMMIT was sent")


def test_500_says_nothing_and_503_says_retry() -> None:
    service = CaseService(Broken(), directory=load_directory(str(DIRECTORY)))
    with TestClient(create_app(service=service), raise_server_exceptions=False) as http:
        body = assert_problem(http.get("/cases/c1", headers={"X-Actor": DIRECTOR}), 500)
        assert "secret" not in json.dumps(body)
        body = assert_problem(post(http, noise_case(0)[0][0], key="k"), 503, "outcome-unknown")
        assert "same request id" in body["title"]


# -- idempotency ---------------------------------------------------------------------------------


def test_a_retried_command_returns_the_same_event_and_stores_nothing(
    client: TestClient, db: str
) -> None:
    case_id, phases = to_phase(client, 2)
    first = post(client, phases[2][0], case_id, key="register-1")
    assert first.status_code == 201, first.text
    count = len(stored(db))
    again = post(client, phases[2][0], case_id, key="register-1")
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert first.json()["request_id"] == "register-1"
    assert len(stored(db)) == count
    # without the key, the same command is a new request: the case has moved on, so 409
    assert_problem(post(client, phases[2][0], case_id), 409)


def test_a_retried_opening_returns_the_same_case(client: TestClient, db: str) -> None:
    step = noise_case(0)[0][0]
    first = post(client, step, key="open-7")
    again = post(client, step, key="open-7")
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert len(stored(db)) == 1
    # the same key from someone else is someone else's request: another case
    other = Step(
        "res-0-14",
        "apply",
        {
            **step.payload,
            "applicants": step.payload["respondents"],
            "respondents": step.payload["applicants"],
        },
    )
    third = post(client, other, key="open-7")
    assert third.status_code == 201, third.text
    assert third.json()["case_id"] != first.json()["case_id"]


def test_a_key_reused_for_another_command_is_a_409(client: TestClient, db: str) -> None:
    case_id, phases = to_phase(client, 9)  # negotiating
    minutes, proposal = phases[9]
    assert post(client, minutes, case_id, key="k-1").status_code == 201
    count = len(stored(db))
    body = assert_problem(post(client, proposal, case_id, key="k-1"), 409, "request-conflict")
    assert body["request_id"] == "k-1"
    # the same command with another payload is another request too
    changed = Step(minutes.actor, minutes.command, {"text": "另一份笔录"})
    assert_problem(post(client, changed, case_id, key="k-1"), 409)
    assert len(stored(db)) == count


# -- the catalogue -------------------------------------------------------------------------------


def test_the_command_catalogue(client: TestClient) -> None:
    response = client.get("/commands")
    assert response.status_code == 200
    catalogue = response.json()
    assert set(catalogue) == set(COMMAND_TYPES)
    schema = client.get("/commands/assign_mediator/schema")
    assert schema.status_code == 200
    assert schema.json() == catalogue["assign_mediator"]
    assert "mediator" in schema.json()["required"]
    assert_problem(client.get("/commands/no_such_command/schema"), 422, "invalid-command")


# -- configuration -------------------------------------------------------------------------------


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEDIATION_DB", "MEDIATION_PG_DSN", "MEDIATION_DIRECTORY", "MEDIATION_PG_POOL"):
        monkeypatch.delenv(name, raising=False)
    assert Settings.from_env() == Settings()
    assert Settings().db == "mediation-web.db"
    monkeypatch.setenv("MEDIATION_DB", "/x/cases.db")
    monkeypatch.setenv("MEDIATION_PG_DSN", "postgresql://u@h/db")
    monkeypatch.setenv("MEDIATION_DIRECTORY", "people.json")
    assert Settings.from_env() == Settings(
        db="/x/cases.db", pg_dsn="postgresql://u@h/db", directory="people.json"
    )


def test_the_directory_file(tmp_path: Path) -> None:
    people = load_directory(str(DIRECTORY))
    assert {g.role.value for g in people.grants_of(DIRECTOR)} == {"director"}
    assert people.grants_of("res-1") == frozenset()
    assert load_directory(None).grants_of(DIRECTOR) == frozenset()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"dir-li": ["director"]}))
    with pytest.raises(ValueError):
        load_directory(str(bad))


def test_a_given_service_is_served_as_it_is() -> None:
    service = CaseService(MemoryStore(), directory=load_directory(str(DIRECTORY)))
    with TestClient(create_app(service=service)) as http:
        case_id = drive(http, noise_case(3)[:3])
    assert service.case(case_id).state == "registered"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_tcp_nodelay_is_set_on_the_inherited_listener() -> None:
    """What uvicorn --workers hands a worker: a bound TCP socket without TCP_NODELAY."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        assert not listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert tcp_nodelay_on_listeners() >= 1
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        listener.listen()  # still open and usable: the function only borrowed its descriptor
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                client.sendall(b"x")
                assert accepted.recv(1) == b"x"


def test_importing_the_app_opens_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", "import examples.webapp.app as m; print(type(m.app).__name__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "FastAPI"
    assert list(tmp_path.iterdir()) == []  # no database file until a worker starts
