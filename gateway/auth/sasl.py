"""SASL XOAUTH2 and OAUTHBEARER (RFC 7628): initial responses and the servers' error challenges."""

from __future__ import annotations

import base64
import binascii
import json

__all__ = ["abort_reply", "failure_detail", "initial_response"]


def initial_response(mechanism: str, user: str, token: str, host: str, port: int) -> str:
    """The base64 client response that carries the bearer token.

    >>> base64.b64decode(initial_response("XOAUTH2", "u@x", "T", "h", 993))
    b'user=u@x\\x01auth=Bearer T\\x01\\x01'
    >>> base64.b64decode(initial_response("OAUTHBEARER", "u@x", "T", "h", 993))
    b'n,a=u@x,\\x01host=h\\x01port=993\\x01auth=Bearer T\\x01\\x01'
    """
    if mechanism == "XOAUTH2":
        raw = f"user={user}\x01auth=Bearer {token}\x01\x01"
    else:  # RFC 7628: a GS2 header naming the user, then key=value pairs
        authzid = user.replace("=", "=3D").replace(",", "=2C")
        raw = f"n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(raw.encode()).decode("ascii")


def abort_reply(mechanism: str) -> str:
    """What the client answers to an error challenge, so the server sends its final NO.

    XOAUTH2 wants an empty line; OAUTHBEARER a single %x01 (RFC 7628 section 3.2.3).

    >>> abort_reply("XOAUTH2"), abort_reply("OAUTHBEARER")
    ('', 'AQ==')
    """
    return "" if mechanism == "XOAUTH2" else base64.b64encode(b"\x01").decode()


def failure_detail(challenge: str) -> str:
    """The server's error challenge (base64 JSON) in words, e.g. ``invalid_token``.

    >>> failure_detail(base64.b64encode(b'{"status":"invalid_token","schemes":"bearer"}').decode())
    'status invalid_token'
    >>> failure_detail("not base64 at all!")
    'no details'
    """
    try:
        found = json.loads(base64.b64decode(challenge.strip(), validate=True))
    except (binascii.Error, ValueError):
        return "no details"
    if not isinstance(found, dict) or "status" not in found:
        return "no details"
    return f"status {str(found['status'])[:100]}"
