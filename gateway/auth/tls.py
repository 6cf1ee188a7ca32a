"""TLS client contexts that verify certificates and host names, and clear words for failures."""

from __future__ import annotations

import ssl

__all__ = ["client_context", "tls_problem"]


def client_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A client context that checks the certificate chain and the host name (TLS 1.2 or newer).

    With ca_file only that bundle is trusted (a private CA), else the system's CAs.
    """
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def tls_problem(exc: BaseException, where: str, ca_file: str | None) -> str | None:
    """A sentence for a TLS failure at where (host:port), or None when exc is no TLS failure."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or str(exc)
        if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
            hint = "the certificate is for another host name: connect by the name it was issued for"
        elif ca_file:
            hint = f"the certificate is not signed by the CA in ca_file {ca_file!r}"
        else:
            hint = "the certificate is not signed by a CA this system trusts: for a private CA set ca_file"
        return f"TLS certificate of {where} rejected ({reason}): {hint}; not connecting without TLS"
    if isinstance(exc, ssl.SSLError):
        return (f"TLS handshake with {where} failed ({exc.reason or exc}): is the port right for the "
                "security setting (993 tls, 143 starttls)?; not connecting without TLS")
    return None
