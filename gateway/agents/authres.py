"""Authentication-Results we may believe: decided by position, not by what a header says.

Anyone can write an ``Authentication-Results: mx.example.com; dkim=pass`` header into the
mail they send. Mail servers prepend their trace headers, so the headers our own servers
added sit on top, and the first ``Received:`` header added by a host outside our servers
marks the trust boundary (RFC 8601 section 5): nothing below it counts, whatever it claims.
Above it, each trusted authserv-id's topmost header is the one that counts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

_COMMENT = re.compile(r"\([^()]*\)")


def received_by(value: str) -> str:
    """The host that added a Received header (its ``by`` clause), lower-cased; "" if none.

    Comments are dropped first, so a HELO name or rDNS comment cannot play the ``by`` part.

    >>> received_by("from evil.example (by mx.example.com [192.0.2.1]) by relay.evil.example "
    ...             "(Postfix) with ESMTP id 42; Mon, 23 Nov 2026 10:00:00 +0100")
    'relay.evil.example'
    >>> received_by("from by (unknown [192.0.2.9])\\r\\n\\tby MX.Example.COM. with ESMTPS; Mon")
    'mx.example.com'
    >>> received_by("from somewhere with SMTP; Mon, 23 Nov 2026")
    ''
    """
    text = value.rpartition(";")[0] or value
    for _ in range(text.count("(")):  # innermost comments first; nested ones peel off in turn
        stripped = _COMMENT.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    words = text.split()
    start = 2 if words[:1] and words[0].lower() == "from" else 0  # "from HOST" is the sender's
    for index in range(start, len(words) - 1):
        if words[index].lower() == "by":
            return words[index + 1].strip("[]<>,").rstrip(".").lower()
    return ""


def trusted_results(fields: Sequence[tuple[str, str]], authservers: Collection[str],
                    relays: Collection[str] = ()) -> list[str]:
    """The result part of each trusted authserv-id's topmost Authentication-Results header
    inside the trust boundary.

    fields are the mail's header fields in order (top first), names lower-cased. Our servers
    are the authservers and the relays (hosts between them and the mailbox, such as the
    IMAP server's LMTP); a Received header any other host added ends the search.

    >>> fields = [("received", "from mx.example.com by imap.example.com with LMTP; Mon"),
    ...           ("authentication-results", "mx.example.com; dkim=pass header.d=example.com"),
    ...           ("received", "from x (x [192.0.2.7]) by mx.example.com with ESMTPS; Mon"),
    ...           ("authentication-results", "mx.example.com; spf=pass smtp.mailfrom=a@b.c"),
    ...           ("received", "from laptop by smtp.isp.example with ESMTPSA; Mon"),
    ...           ("authentication-results", "other.example; dkim=pass header.d=b.c")]
    >>> trusted_results(fields, {"mx.example.com"}, {"imap.example.com"})
    [' dkim=pass header.d=example.com']
    >>> trusted_results(fields, {"mx.example.com"})  # the LMTP hop is not ours: nothing counts
    []
    """
    ours = {*authservers, *relays}
    found: dict[str, str] = {}
    for name, value in fields:
        if name == "received":
            if received_by(value) not in ours:
                break  # added outside (or written by the sender): the boundary
        elif name == "authentication-results":
            server, _, results = value.partition(";")
            words = server.split()
            authserv = words[0].lower() if words else ""
            if authserv in authservers and authserv not in found:
                found[authserv] = results
    return list(found.values())
