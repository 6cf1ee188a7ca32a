"""Access tokens from a stored grant: each way it can fail names the mailbox and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import Engine

from gateway.auth import grants, vault
from gateway.auth.providers import endpoints
from gateway.auth.signin import GrantTokens
from gateway.config import OAuthConfig
from gateway.errors import SignInError, TokenEndpointUnavailable
from store.models import utcnow
from tests.conftest import OAUTH_SECRET, new_app, store_grant
from tests.servers.oauth import TokenServer
from tests.servers.smtp import free_port


def _oauth(token_url: str, client_id: str = "app-x", **extra: Any) -> OAuthConfig:
    return OAuthConfig(provider="generic", client_id=client_id, client_secret="app-secret",
                       token_url=token_url, **extra)


async def test_an_unreachable_token_endpoint_is_temporary_and_recorded(engine: Engine) -> None:
    oauth = _oauth(f"http://127.0.0.1:{free_port()}/token")
    store_grant(engine, "box", oauth, "rt-whatever")
    with pytest.raises(TokenEndpointUnavailable) as caught:
        await GrantTokens("box", oauth, engine, OAUTH_SECRET, timeout=5).current()
    assert str(caught.value).startswith("box: token endpoint http://127.0.0.1:")
    row = grants.load(engine, "box")
    assert row is not None and row.last_error == str(caught.value)


@pytest.mark.parametrize(("case", "words"), [
    ("never signed in", "box: not signed in yet: run `ticketgate auth login box`"),
    ("other secret", "box: the stored grant cannot be opened with the configured secret"),
    ("other app", "box: the stored grant was made for client 'old-app'"),
])
async def test_a_grant_that_cannot_be_used_names_the_fix(engine: Engine, token_server: TokenServer,
                                                         case: str, words: str) -> None:
    client_id = new_app(token_server)
    oauth = _oauth(f"{token_server.url}/token", client_id)
    refresh = token_server.issue_grant("support", client_id)
    if case == "other secret":
        grants.save_sign_in(engine, "box", oauth, endpoints(oauth), vault.seal("another", refresh), utcnow())
    elif case == "other app":
        store_grant(engine, "box", _oauth(f"{token_server.url}/token", "old-app"), refresh)
    with pytest.raises(SignInError) as caught:
        await GrantTokens("box", oauth, engine, OAUTH_SECRET).current()
    assert str(caught.value).startswith(words) and "ticketgate auth login box" in str(caught.value)


async def test_microsoft_and_google_requests_carry_their_scopes(engine: Engine,
                                                                token_server: TokenServer) -> None:
    client_id = new_app(token_server)
    microsoft = OAuthConfig(provider="microsoft", client_id=client_id, client_secret="app-secret",
                            tenant="contoso.example", authority=token_server.url)
    google = OAuthConfig(provider="google", client_id=client_id, client_secret="app-secret",
                         token_url=f"{token_server.url}/token")
    for name, oauth in (("ms", microsoft), ("gm", google)):
        store_grant(engine, name, oauth, token_server.issue_grant("support", client_id))
        token = await GrantTokens(name, oauth, engine, OAUTH_SECRET).current()
        assert token_server.active(token.access_token) == "support"
    scopes = [form["scope"] for form in token_server.forms if form.get("client_id") == client_id]
    assert scopes == ["https://outlook.office.com/IMAP.AccessAsUser.All "
                      "https://outlook.office.com/SMTP.Send offline_access", "https://mail.google.com/"]
