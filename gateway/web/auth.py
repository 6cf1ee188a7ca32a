"""Bearer-token authentication and scopes for the API: 401 without a valid token, 403 without the scope."""

from __future__ import annotations

from fastapi import Request

from gateway.errors import store_errors
from gateway.web.context import context
from gateway.web.problems import Problem
from gateway.web.tokens import Client, authenticate
from store.db import transaction

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ticketgate"'}


class Scope:
    """A FastAPI dependency: the client, when its token is valid and carries the scope."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    def __call__(self, request: Request) -> Client:
        """Runs in the thread pool (one indexed query)."""
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise Problem(401, "unauthorized", "send Authorization: Bearer <token>",
                          field="Authorization", headers=_CHALLENGE)
        with store_errors(), transaction(context(request).engine) as session:
            client = authenticate(session, token.strip())
        if client is None:
            raise Problem(401, "unauthorized", "the token is unknown or revoked",
                          field="Authorization",
                          headers={**_CHALLENGE, "WWW-Authenticate": _CHALLENGE["WWW-Authenticate"]
                                   + ', error="invalid_token"'})
        if self.scope not in client.scopes:
            raise Problem(403, "forbidden", f"the token lacks the scope {self.scope!r}",
                          field="Authorization")
        request.state.client = client.name
        return client
