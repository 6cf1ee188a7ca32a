"""The HTTP application: the API under /api/v1, the customer portal under /portal, /healthz and
/metrics; API errors as problem+json, portal errors as pages.

``create_app`` is the one place the parts are put together; the service serves it
(``gateway.web.server``) and tests serve it the same way, on a real socket.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from gateway.config import Config
from gateway.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_DUE
from gateway.outbound.backlog import outbox_backlog
from gateway.rules.loader import RuleBook, vocabulary
from gateway.web import problems
from gateway.web.api import organisations, tickets
from gateway.web.api.models import CloseIn, MessageIn, TicketIn
from gateway.web.context import WebContext
from gateway.web.health import Health, check, probe_engine
from gateway.web.middleware import BodyLimit, RequestMetrics
from gateway.web.portal import mount as portal
from gateway.web.portal.mailer import LinkMailer

TITLE = "ticketgate"
VERSION = "1"
_BODIES: tuple[type[BaseModel], ...] = (TicketIn, MessageIn, CloseIn)


def create_app(engine: Engine, config: Config, *, health: Health | None = None,
               rules: RuleBook | None = None, mailer: LinkMailer | None = None) -> FastAPI:
    """The app for one service: its engine, config, rules in force and health record."""
    docs = config.http.docs if config.http else True
    app = FastAPI(title=TITLE, version=VERSION, redoc_url=None,
                  openapi_url="/api/v1/openapi.json" if docs else None,
                  docs_url="/api/docs" if docs else None,
                  description="Tickets for portals, web forms and other systems: the same "
                              "pipeline, rules and notifications as mail.")
    book = rules or RuleBook(config.rules_folder, vocabulary(config))
    web = WebContext(engine, config, book)
    app.state.web = web
    probe = probe_engine(engine)
    problems.install(app, page=portal.error_pages if config.portal else None)
    app.include_router(tickets.router)
    app.include_router(organisations.router)
    portal.install(app, engine, config, mailer)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> JSONResponse:
        """Database reachable, mailboxes drained, backlogs; 503 when unhealthy."""
        healthy, report = await run_in_threadpool(check, probe, config, health)
        return JSONResponse(report, status_code=200 if healthy else 503,
                            headers={"Cache-Control": "no-store"})

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics in the text exposition format (the outbox backlog read now)."""
        await run_in_threadpool(measure_outbox, probe)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, limit=web.max_request_bytes)
    app.add_middleware(RequestMetrics)
    return app


def measure_outbox(engine: Engine) -> None:
    """Set the outbox gauges from the database: right whichever process does the sending."""
    try:
        with Session(engine) as session:
            backlog = outbox_backlog(session, datetime.now(UTC))
    except SQLAlchemyError:  # the database is away: /healthz says so; the rest still answers
        return
    for state, count in (("due", backlog.due), ("retrying", backlog.retrying),
                         ("sending", backlog.sending)):
        OUTBOX_BACKLOG.labels(state).set(count)
    OUTBOX_OLDEST_DUE.set(backlog.oldest_due_seconds)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the request documents the routes read themselves (JSON or multipart)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in _BODIES:
        found = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(found.pop("$defs", {}))
        components[model.__name__] = found
    app.openapi_schema = schema
    return schema
