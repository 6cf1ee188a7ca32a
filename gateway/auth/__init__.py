"""Mailbox sign-in: passwords, OAuth2 tokens, TLS contexts.

Used by the IMAP source (``gateway.intake.imap``) and the SMTP sender
(``gateway.outbound.smtp``); it knows nothing of mail, only how to get in.

- ``tls``: certificate-verifying client contexts and clear words for TLS failures;
- ``sasl``: the XOAUTH2 and OAUTHBEARER initial responses and the servers' error challenges;
- ``providers``: token, device and authorization endpoints and scopes of Microsoft, Google, generic;
- ``tokens``: the token endpoint requests (refresh, client credentials, device code, code + PKCE);
- ``vault``: refresh tokens sealed with the configured secret (Fernet, PBKDF2-derived key);
- ``grants``: the ``oauth_grant`` rows: sealed refresh token, expiry, last error;
- ``signin``: credentials for a mailbox: a password, or an access token refreshed before expiry;
- ``login``: ``ticketgate auth login`` (device code, or a browser with a localhost redirect).
"""
