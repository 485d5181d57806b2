"""A reference web app: the mediation library behind HTTP, as a 社区 platform would embed it.

Run it from the repository root (``pip install -e '.[web]'``)::

    uvicorn examples.webapp.app:app --workers 4

Configuration comes from the environment, read when a worker starts (see README.md beside this file):

- ``MEDIATION_PG_DSN``: a PostgreSQL connection string; when set, cases are kept there;
- ``MEDIATION_DB``: otherwise, the SQLite file (default ``mediation-web.db``);
- ``MEDIATION_DIRECTORY``: a JSON file of the host's grants, ``{"actor": {"committee": ["role"]}}``.

The pieces a host replaces:

- **who is asking**: the ``X-Actor`` header stands in for the host's login. A real host takes the
  actor id from its session or token, never from a header the client controls;
- **who holds which role**: the directory file stands in for the host's user table;
- **retries**: the ``Idempotency-Key`` header is passed to the library as the request id, so a
  client that lost a response (a timeout, a worker restart) sends the same request again and gets
  the event that was recorded the first time, instead of a second event.

Handlers are plain ``def`` functions: FastAPI runs them on its thread pool, and all of them share
one :class:`~mediation.CaseService` per worker process (README.md says why).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Annotated, Any

import attrs
from fastapi import Body, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mediation import (
    Actor,
    CaseService,
    InvalidCommand,
    MediationError,
    NotPermitted,
    SQLiteStore,
    StaticDirectory,
    Store,
    web,
)

__all__ = ["Settings", "app", "create_app", "load_directory", "tcp_nodelay_on_listeners"]


# -- configuration ----------------------------------------------------------------------------------


@attrs.frozen
class Settings:
    """Where the cases live and who holds which role; :meth:`from_env` reads the environment."""

    db: str = "mediation-web.db"
    pg_dsn: str | None = None
    directory: str | None = None
    #: connections per worker process (PostgreSQL); threads beyond it wait for one
    pg_pool_size: int = 8

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            db=env.get("MEDIATION_DB") or "mediation-web.db",
            pg_dsn=env.get("MEDIATION_PG_DSN") or None,
            directory=env.get("MEDIATION_DIRECTORY") or None,
            pg_pool_size=int(env.get("MEDIATION_PG_POOL") or 8),
        )

    def open_store(self) -> Store:
        if self.pg_dsn:
            from mediation.stores import PostgresStore  # the postgres extra, only when asked for

            store: Store = PostgresStore(self.pg_dsn, pool_size=self.pg_pool_size)
            return store
        return SQLiteStore(self.db)


def load_directory(path: str | None) -> StaticDirectory:
    """The host's grants from a JSON file, ``{"actor": {"committee": ["role", ...]}}`` (the format
    of ``mediation verify --directory``); no file, no roles (residents need none)."""
    directory = StaticDirectory()
    if path is None:
        return directory
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of actor ids")
    for actor_id, roles in data.items():
        if not isinstance(roles, dict) or not all(isinstance(r, list) for r in roles.values()):
            raise ValueError(f"{path}: {actor_id}: expected {{committee: [role, ...]}}")
        directory.add(Actor.with_roles(actor_id, roles))
    return directory


def tcp_nodelay_on_listeners() -> int:
    """Turn Nagle's algorithm off on the listening TCP socket this worker inherited.

    uvicorn ``--workers N`` binds its listening socket with ``proto`` 0, so asyncio does not set
    ``TCP_NODELAY`` on the connections a worker accepts (uvicorn issue #3149), and each answer on a
    keep-alive connection then waits about 40 ms for the client's delayed ACK. Linux copies
    ``TCP_NODELAY`` from a listening socket to the connections it accepts, so it is set there when
    a worker starts (on every bound, unconnected TCP socket: the first worker may start before any
    worker listens). Elsewhere (one process, the test client, no ``/proc``) it finds nothing and
    does nothing. Returns the number of sockets changed.
    """
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return 0
    changed = 0
    for fd in fds:
        try:
            sock = socket.socket(fileno=fd)  # borrowed: handed back by detach() below
        except OSError:
            continue  # not a socket, or already closed
        try:
            tcp = sock.family in (socket.AF_INET, socket.AF_INET6)
            if tcp and sock.type == socket.SOCK_STREAM and sock.getsockname()[1]:
                try:
                    sock.getpeername()
                except OSError:  # not connected: a listener
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    changed += 1
        except OSError:
            pass
        finally:
            sock.detach()
    return changed


# -- the app ----------------------------------------------------------------------------------------

#: the host's login, standing in: the id of the person making the request
ActorHeader = Annotated[str | None, Header(alias="X-Actor")]
#: a client's retry key: the same key on the same case means "the same request"
KeyHeader = Annotated[str | None, Header(alias="Idempotency-Key")]


def create_app(settings: Settings | None = None, *, service: CaseService | None = None) -> FastAPI:
    """The app. With ``service``, it serves that one (tests); otherwise each worker process builds
    its own from ``settings`` (default: the environment) when it starts, and closes it at exit."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if service is not None:
            app.state.service = service
            yield
            return
        tcp_nodelay_on_listeners()
        config = settings or Settings.from_env()
        directory = load_directory(config.directory)
        with config.open_store() as store:  # after the fork: connections do not survive one
            app.state.service = CaseService(store, directory=directory)
            yield

    app = FastAPI(
        title="人民调解 mediation — reference web app",
        summary="申请 — 登记 — 会议 — 协商 — 协议 — 回访, one HTTP request per command",
        lifespan=lifespan,
    )

    def service_of(request: Request) -> CaseService:
        svc: CaseService = request.app.state.service
        return svc

    def actor_of(svc: CaseService, actor_id: str | None) -> Actor:
        """The person behind the request, with the roles the directory grants them."""
        try:
            return Actor(actor_id or "", svc.directory.grants_of(actor_id or ""))
        except InvalidCommand:  # no header, or not an id: nobody the host has logged in
            raise NotPermitted(
                "no actor: the request does not say who is asking (X-Actor)",
                message_zh="未登录：请求未表明操作人（X-Actor）",
            ) from None

    # -- errors: every one is an RFC 9457 problem, made by the library ------------------------------

    def problem_response(exc: Exception) -> JSONResponse:
        p = web.problem(exc)
        return JSONResponse(p.body, status_code=p.status, media_type=p.content_type)

    @app.exception_handler(MediationError)
    async def mediation_error(request: Request, exc: MediationError) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # the body is not JSON at all (anything JSON goes to the library, which judges it)
        first = exc.errors()[0] if exc.errors() else {}
        reason = first.get("msg", "not JSON")
        return problem_response(
            InvalidCommand(f"bad request body: {reason}", message_zh=f"请求体无效：{reason}")
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # the framework's own answers (no such route, method not allowed), in the same shape
        title = HTTPStatus(exc.status_code).phrase
        detail = f"{request.method} {request.url.path}: {exc.detail}"
        body = {"type": "about:blank", "title": title, "status": exc.status_code, "detail": detail}
        return JSONResponse(
            body,
            status_code=exc.status_code,
            media_type="application/problem+json",
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(exc)  # a 500 that says nothing about the internals

    # -- writing: one request, one command ---------------------------------------------------------

    @app.post("/cases", status_code=201)
    def open_case(
        request: Request,
        body: Annotated[Any, Body()],
        x_actor: ActorHeader = None,
        idempotency_key: KeyHeader = None,
    ) -> JSONResponse:
        """Open a case: ``{"command": "apply" | "report", "payload": {...}, "case_id": optional}``.

        With an ``Idempotency-Key`` and no ``case_id`` the library derives the case id from the
        actor and the key, so a retried request finds the case its first attempt opened."""
        svc = service_of(request)
        actor = actor_of(svc, x_actor)
        if not isinstance(body, dict) or set(body) - {"command", "payload", "case_id"}:
            raise InvalidCommand(
                'expected {"command": "apply" | "report", "payload": {...}, "case_id": optional}',
                message_zh="请求体应为 {command, payload, case_id（可选）}",
            )
        name = body.get("command")
        if name not in ("apply", "report"):
            raise InvalidCommand(
                "a case opens with apply or report",
                message_zh="立案只能通过申请（apply）或报告（report）",
                field="command",
            )
        command = web.command_from_json(name, body.get("payload"))
        case = svc.open(actor, command, case_id=body.get("case_id"), request_id=idempotency_key)
        opening = svc.history(case.id)[0]
        return JSONResponse(
            {"case_id": case.id, "event": web.event_json(opening)},
            status_code=201,
            headers={"Location": f"/cases/{case.id}"},
        )

    @app.post("/cases/{case_id}/commands/{name}", status_code=201)
    def run_command(
        request: Request,
        case_id: str,
        name: str,
        payload: Annotated[Any, Body()] = None,
        acting_as: str | None = None,
        x_actor: ActorHeader = None,
        idempotency_key: KeyHeader = None,
    ) -> JSONResponse:
        """Issue command ``name`` on the case; the body is its payload (``{}`` or none when it
        takes nothing); ``?acting_as=`` picks the role or relation to act under."""
        svc = service_of(request)
        actor = actor_of(svc, x_actor)
        command = web.command_from_json(name, {} if payload is None else payload)
        event = svc.execute(
            actor, case_id, command, acting_as=acting_as, request_id=idempotency_key
        )
        return JSONResponse(web.event_json(event), status_code=201)

    # -- reading: each viewer sees what the confidentiality rules let them see ---------------------

    @app.get("/cases/{case_id}")
    def view(request: Request, case_id: str, x_actor: ActorHeader = None) -> JSONResponse:
        svc = service_of(request)
        return JSONResponse(web.view_json(svc.view(actor_of(svc, x_actor), case_id)))

    @app.get("/cases/{case_id}/allowed")
    def allowed(request: Request, case_id: str, x_actor: ActorHeader = None) -> JSONResponse:
        """For every command: may this actor issue it now, as what, and if not, why not."""
        svc = service_of(request)
        actor = actor_of(svc, x_actor)
        svc.view(actor, case_id)  # only those with standing in the case learn about it
        return JSONResponse(web.permissions_json(svc.allowed(actor, case_id)))

    @app.get("/cases/{case_id}/timeline")
    def timeline(request: Request, case_id: str, x_actor: ActorHeader = None) -> JSONResponse:
        svc = service_of(request)
        case_view = svc.view(actor_of(svc, x_actor), case_id)
        return JSONResponse(web.timeline_json(case_view.timeline))

    @app.get("/cases/{case_id}/events")
    def events(request: Request, case_id: str, x_actor: ActorHeader = None) -> JSONResponse:
        """The recorded events (hashes, links, request ids), with the payload and the actor of
        each as this viewer's timeline shows them (redacted, or withheld from a supervisor)."""
        svc = service_of(request)
        case_view = svc.view(actor_of(svc, x_actor), case_id)
        shown = {entry["seq"]: entry for entry in web.timeline_json(case_view.timeline)}
        out = []
        for event in svc.history(case_id):
            row = web.event_json(event)
            entry = shown.get(event.seq)  # a newer event than the view: not shown
            if entry is not None:
                row.update(payload=entry["payload"], actor=entry["actor"])
                out.append(row)
        return JSONResponse(out)

    @app.get("/cases/{case_id}/verify")
    def verify(request: Request, case_id: str, x_actor: ActorHeader = None) -> JSONResponse:
        """Replay and verify the stored history (hash chain, transitions, permissions, guards)."""
        svc = service_of(request)
        svc.view(actor_of(svc, x_actor), case_id)
        return JSONResponse(web.verdict_json(svc.verify(case_id)))

    # -- the command catalogue ----------------------------------------------------------------------

    @app.get("/commands")
    def commands() -> JSONResponse:
        return JSONResponse(web.command_schemas())

    @app.get("/commands/{name}/schema")
    def command_schema(name: str) -> JSONResponse:
        return JSONResponse(web.command_schema(name))

    return app


#: what ``uvicorn examples.webapp.app:app`` serves; no store is opened until a worker starts
app = create_app()
