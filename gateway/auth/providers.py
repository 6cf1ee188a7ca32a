"""Where each provider issues tokens, and the scopes mail needs there."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import OAuthConfig

__all__ = ["GOOGLE_SCOPES", "MICROSOFT_APP_SCOPES", "MICROSOFT_SCOPES", "Endpoints", "endpoints"]

MICROSOFT_SCOPES = ("https://outlook.office.com/IMAP.AccessAsUser.All",
                    "https://outlook.office.com/SMTP.Send", "offline_access")
MICROSOFT_APP_SCOPES = ("https://outlook.office365.com/.default",)
GOOGLE_SCOPES = ("https://mail.google.com/",)
_GOOGLE_TOKEN = "https://oauth2.googleapis.com/token"
_GOOGLE_AUTHORIZE = "https://accounts.google.com/o/oauth2/v2/auth"


@dataclass(frozen=True)
class Endpoints:
    """The URLs and scopes of one grant; device_url/authorize_url None when the flow is not offered."""

    token_url: str
    device_url: str | None
    authorize_url: str | None
    scopes: tuple[str, ...]
    authorize_params: tuple[tuple[str, str], ...] = ()  # extra query parameters of the browser flow


def endpoints(cfg: OAuthConfig) -> Endpoints:
    """The provider's endpoints, with any URL the config names instead.

    >>> from gateway.config import OAuthConfig
    >>> e = endpoints(OAuthConfig(provider="microsoft", client_id="c", tenant="contoso.example"))
    >>> e.token_url, e.device_url
    ('https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token', 'https://login.microsoftonline.com/contoso.example/oauth2/v2.0/devicecode')
    >>> e.scopes[0]
    'https://outlook.office.com/IMAP.AccessAsUser.All'
    >>> g = endpoints(OAuthConfig(provider="google", client_id="c", client_secret="s"))
    >>> g.token_url, g.device_url, g.scopes, dict(g.authorize_params)["access_type"]
    ('https://oauth2.googleapis.com/token', None, ('https://mail.google.com/',), 'offline')
    """
    if cfg.provider == "microsoft":
        base = f"{cfg.authority}/{cfg.tenant}/oauth2/v2.0"
        scopes = MICROSOFT_APP_SCOPES if cfg.grant == "client_credentials" else MICROSOFT_SCOPES
        found = Endpoints(f"{base}/token", f"{base}/devicecode", f"{base}/authorize", scopes)
    elif cfg.provider == "google":  # Google's device flow does not allow the mail scope
        found = Endpoints(_GOOGLE_TOKEN, None, _GOOGLE_AUTHORIZE, GOOGLE_SCOPES,
                          (("access_type", "offline"), ("prompt", "consent")))
    else:
        found = Endpoints(cfg.token_url or "", None, None, ())
    return Endpoints(
        token_url=cfg.token_url or found.token_url,
        device_url=cfg.device_url or found.device_url,
        authorize_url=cfg.authorize_url or found.authorize_url,
        scopes=cfg.scopes if cfg.scopes is not None else found.scopes,
        authorize_params=found.authorize_params,
    )
