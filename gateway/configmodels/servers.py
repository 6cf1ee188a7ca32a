"""Mail servers: IMAP mailboxes, SMTP, their OAuth sign-in, outbound limits."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.configmodels.fields import (
    SMTP_GRANT,
    SOURCES,
    Endpoint,
    Invalid,
    Language,
    Secret,
    Section,
    checked_ca_file,
    checked_imap_batch,
    checked_portal_link,
    is_loopback,
    one_of,
    show,
    with_env,
    with_server_defaults,
)


class OAuthConfig(Section):
    """[mailbox.oauth] / [smtp.oauth]: where the access tokens for SASL XOAUTH2/OAUTHBEARER come from."""

    provider: Annotated[str, one_of("microsoft", "google", "generic")]
    client_id: Annotated[str, StringConstraints(min_length=1)]
    client_secret: Secret | None = Field(default=None, repr=False)
    grant: Annotated[str, one_of("refresh_token", "client_credentials")] = "refresh_token"
    tenant: Annotated[str, StringConstraints(min_length=1)] = "organizations"  # microsoft only
    authority: Endpoint = "https://login.microsoftonline.com"  # microsoft only (national clouds)
    token_url: Endpoint | None = None  # generic: required; others: the provider's
    device_url: Endpoint | None = None  # device authorization endpoint (RFC 8628)
    authorize_url: Endpoint | None = None  # authorization endpoint (code flow, localhost redirect)
    scopes: tuple[str, ...] | None = Field(default=None, strict=False)  # None: the provider's

    @model_validator(mode="before")
    @classmethod
    def _file_defaults(cls, data: Any) -> Any:
        """client_secret_env may stand in for client_secret."""
        return with_env(data, "client_secret")

    @model_validator(mode="after")
    def _consistent(self) -> OAuthConfig:
        """Settings that only make sense together; each error names the key to change."""
        given = self.model_fields_set
        for key in ("tenant", "authority"):
            if key in given and self.provider != "microsoft":
                raise Invalid("is only used with provider = \"microsoft\"", below=key)
        if self.provider == "generic" and self.token_url is None:
            raise Invalid("is required with provider = \"generic\"", below="token_url")
        if self.grant == "client_credentials":
            if self.provider == "google":
                raise Invalid("Google has no client-credentials grant for mail; use "
                              "\"refresh_token\" (ticketgate auth login)", below="grant")
            if self.client_secret is None:
                raise Invalid("is required (or client_secret_env) with grant = \"client_credentials\"",
                              below="client_secret")
            if self.provider == "microsoft" and self.tenant in ("organizations", "common", "consumers"):
                raise Invalid("must be your tenant's id or domain with grant = \"client_credentials\", "
                              f"got {show(self.tenant)}", below="tenant")
        if self.provider == "google" and self.client_secret is None:
            raise Invalid("is required (or client_secret_env) with provider = \"google\"",
                          below="client_secret")
        return self


class _Server(Section):
    """What every mail server connection has: where, how secured, how we sign in."""

    host: str
    port: PositiveInt
    security: Annotated[str, one_of("tls", "starttls", "none")]
    username: str | None = None
    password: Secret | None = Field(default=None, repr=False)
    auth: Annotated[str, one_of("password", "oauth2")] = "password"
    oauth: OAuthConfig | None = None
    ca_file: str | None = None  # a private CA's PEM bundle, trusted instead of the system's
    allow_insecure: bool = False  # security = "none" to a host that is not this machine
    timeout_seconds: PositiveFloat = 30.0

    @field_validator("ca_file")
    @classmethod
    def _trusted_ca(cls, value: str, info: ValidationInfo) -> str:
        """The file must exist and load, so `check` finds a typo before the first connect."""
        return checked_ca_file(value, info)

    @model_validator(mode="after")
    def _sign_in(self) -> _Server:
        """The sign-in settings agree with auth and security; plain text only where it stays local."""
        if self.security == "none" and not self.allow_insecure and not is_loopback(self.host):
            raise Invalid("\"none\" would send the password or token in plain text over the network; "
                          "use \"tls\" or \"starttls\" (or set allow_insecure = true to insist)",
                          below="security")
        if self.ca_file is not None and self.security == "none":
            raise Invalid("has no effect with security = \"none\"", below="ca_file")
        if self.auth == "oauth2":
            if self.password is not None:
                raise Invalid("is not used with auth = \"oauth2\"; remove it", below="password")
            if self.username is None:
                raise Invalid("is required with auth = \"oauth2\" (the mailbox address)",
                              below="username")
        elif self.oauth is not None:
            raise Invalid("is only used with auth = \"oauth2\"", below="oauth")
        return self


class MailboxConfig(_Server):
    """One IMAP mailbox the service watches."""

    name: str
    username: str
    folder: str = "INBOX"
    processed_folder: str | None = None
    failed_folder: str | None = None
    channel: str = "support"
    source: Annotated[str, one_of(*SOURCES)] = "email"  # a portal delivering its form by mail: "portal"
    idle: bool = True
    poll_seconds: PositiveFloat = 60.0
    batch_size: Annotated[PositiveInt, AfterValidator(checked_imap_batch)] = 100
    connect_timeout_seconds: PositiveFloat = 10.0  # to the greeting; timeout_seconds is per command

    @model_validator(mode="before")
    @classmethod
    def _file_defaults(cls, data: Any) -> Any:
        """The file may give password_env instead of password, and leave security and port out."""
        ports = {"tls": 993, "starttls": 143, "none": 143}
        return with_server_defaults(with_env(data, "password"), "tls", ports)

    @model_validator(mode="after")
    def _oauth_needed(self) -> MailboxConfig:
        """A mailbox signs in somehow: with a password, or with an [mailbox.oauth] table."""
        if self.auth == "oauth2" and self.oauth is None:
            raise Invalid("is required with auth = \"oauth2\" (a [mailbox.oauth] table)", below="oauth")
        if self.auth == "password" and self.password is None:
            raise Invalid("is required (or password_env)", below="password")
        return self


class LimitsConfig(Section):
    """Guards against oversized input and against the support address as a broadcaster."""

    # The raw mail: 50 MiB lets a 25 MB attachment through (base64 makes it about 34 MiB),
    # as the big providers accept; a large attachment costs about twice its mail in memory.
    max_message_bytes: PositiveInt = 50 * 1024 * 1024
    watchers_per_mail: PositiveInt = 20  # people copied on one customer mail who become watchers
    watchers_per_ticket: PositiveInt = 30  # no copied person joins a ticket with this many watchers
    recipients_per_mail: PositiveInt = 30  # To and Cc of one outbound mail to customers
    recipients_per_event: PositiveInt = 60  # customer-side recipients of all mails one event causes


class SmtpConfig(_Server):
    """Where outbound mail is handed over."""

    oauth_mailbox: str | None = None  # auth = "oauth2": use this mailbox's grant instead of [smtp.oauth]

    @model_validator(mode="after")
    def _oauth_source(self) -> SmtpConfig:
        """OAuth for SMTP needs a grant: its own [smtp.oauth], or a mailbox's (oauth_mailbox)."""
        if self.auth == "oauth2" and (self.oauth is None) == (self.oauth_mailbox is None):
            raise Invalid("give either a [smtp.oauth] table or oauth_mailbox = \"NAME\" with "
                          "auth = \"oauth2\"", below="oauth")
        if self.auth != "oauth2" and self.oauth_mailbox is not None:
            raise Invalid("is only used with auth = \"oauth2\"", below="oauth_mailbox")
        return self

    @property
    def grant_name(self) -> str | None:
        """The name of the OAuth grant SMTP signs in with (None: no OAuth)."""
        if self.auth != "oauth2":
            return None
        return self.oauth_mailbox or SMTP_GRANT

    @model_validator(mode="before")
    @classmethod
    def _file_defaults(cls, data: Any) -> Any:
        """The file may give password_env instead of password, and leave security and port out."""
        ports = {"tls": 465, "starttls": 587, "none": 25}
        return with_server_defaults(with_env(data, "password"), "starttls", ports)


class OutboundConfig(Section):
    """Outbound mail policy: ids, language, loop limits, retries."""

    message_id_domain: str = "ticketgate.localhost"  # from a file: the first channel's domain
    language: Language = "en"
    portal_url: Annotated[str, AfterValidator(checked_portal_link)] = ""  # "https://…/tickets/{number}"
    ack_limit_per_recipient_hour: PositiveInt = 3
    ack_limit_per_ticket: PositiveInt = 2
    bounce_suppress_days: PositiveInt = 7
    retry_base_seconds: PositiveFloat = 30.0
    retry_max_attempts: PositiveInt = 10
    batch_size: PositiveInt = 50  # mails per claim, and at most per SMTP connection
    flush_seconds: PositiveFloat = 5.0  # look for mail queued by other processes this often
    connections: Annotated[int, Field(ge=1, le=32)] = 4  # SMTP connections sending at once
    relay_attachments: bool = True  # an agent's files travel with the reply to the customer
    # Total bytes of files on one relayed reply; files past it stay behind and the agent is told.
    relay_max_bytes: NonNegativeInt = 20 * 1024 * 1024
    # A customer's files are attached to agent notifications up to this total, else listed.
    notify_attach_max_bytes: NonNegativeInt = 10 * 1024 * 1024
