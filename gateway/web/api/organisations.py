"""Organisation routes: read one, and grant or withdraw organisation-wide ticket visibility."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import TypeAdapter, ValidationError
from sqlmodel import select

from gateway.errors import store_errors
from gateway.web.api.models import Domain, OrganisationOut, OrganisationPatch
from gateway.web.api.reading import BASE
from gateway.web.auth import Scope
from gateway.web.context import context
from gateway.web.problems import Problem
from gateway.web.tokens import Client
from store.db import transaction
from store.models import Organisation
from store.queries import set_organisation

router = APIRouter(prefix=BASE, tags=["organisations"])
_DOMAIN = TypeAdapter(Domain)


def _domain(value: str) -> str:
    try:
        return str(_DOMAIN.validate_python(value))
    except ValidationError as exc:
        raise Problem(422, "validation", f"domain: {exc.errors()[0]['msg']}", field="domain") from None


@router.get("/organisations/{domain}", response_model=OrganisationOut)
def get_organisation(request: Request, domain: str,
                     client: Annotated[Client, Depends(Scope("organisations:read"))]) -> OrganisationOut:
    """An organisation and whether its contacts see all its tickets."""
    wanted = _domain(domain)
    with store_errors(), transaction(context(request).engine) as session:
        org = session.exec(select(Organisation).where(Organisation.domain == wanted)).first()
        if org is None:
            raise Problem(404, "not-found", f"no organisation {wanted!r}", field="domain")
        return OrganisationOut(domain=org.domain, name=org.name, share_tickets=org.share_tickets)


@router.patch("/organisations/{domain}", response_model=OrganisationOut)
def patch_organisation(request: Request, domain: str, change: OrganisationPatch,
                       client: Annotated[Client, Depends(Scope("organisations:write"))]) -> OrganisationOut:
    """Create or change an organisation (an entry in [[organisation]] wins again at the next start)."""
    wanted = _domain(domain)
    with store_errors(), transaction(context(request).engine) as session:
        org = set_organisation(session, wanted, name=change.name, share_tickets=change.share_tickets)
        assert org is not None  # freemail domains were refused above
        return OrganisationOut(domain=org.domain, name=org.name, share_tickets=org.share_tickets)
