"""Reading portal forms: size and file limits, the CSRF check first, errors as pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from gateway.web.api.models import media_type
from gateway.web.api.submit import Upload
from gateway.web.context import context
from gateway.web.portal.guard import csrf_ok
from gateway.web.portal.pages import PageError
from gateway.web.problems import Problem
from store.models import PortalSession

_FORM_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MB = 1024 * 1024


@dataclass(frozen=True)
class Form:
    """A checked form: its text fields and files."""

    fields: FormData
    files: list[Upload]

    def text(self, name: str, limit: int = 100_000) -> str:
        """A text field (missing: empty), cut at limit characters."""
        value = self.fields.get(name, "")
        return value[:limit] if isinstance(value, str) else ""

    def form_id(self) -> str | None:
        """The form's one-time id (the idempotency key of what it submits), if well-formed."""
        value = self.text("form_id", 100)
        return value if _FORM_ID.match(value) else None


async def read_form(request: Request, signed_in: PortalSession | None, files: bool = False) -> Form:
    """The form, after its CSRF token checked out (403 otherwise); files within the portal's limits."""
    portal = context(request).config.portal
    assert portal is not None
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > portal.max_attachments * portal.max_file_mb * MB + MB:
        raise PageError(413)
    try:
        data = await request.form(max_files=portal.max_attachments + 1 if files else 0,
                                  max_fields=30, max_part_size=portal.max_file_mb * MB)
    except HTTPException:
        raise PageError(413 if files else 400) from None
    if not csrf_ok(request, data.get("csrf"), signed_in):
        raise PageError(403)
    uploads: list[Upload] = []
    for name, value in data.multi_items():
        if isinstance(value, UploadFile) and (value.filename or value.size):
            uploads.append(await _upload(request, name, value))
    if len(uploads) > portal.max_attachments:
        raise PageError(422, f"attachments: at most {portal.max_attachments}")
    return Form(data, uploads)


async def _upload(request: Request, name: str, value: UploadFile) -> Upload:
    portal = context(request).config.portal
    assert portal is not None
    if name != "attachments":
        raise PageError(400)
    data = await value.read()
    if len(data) > portal.max_file_mb * MB:
        raise PageError(413)
    try:
        ctype = media_type(value.content_type or "application/octet-stream")
    except ValueError:
        ctype = "application/octet-stream"
    return Upload(value.filename or "attachment", ctype, data)


@contextmanager
def as_pages() -> Iterator[None]:
    """The shared submission path's problems (404, 403, 413, 409, ...) as error pages."""
    try:
        yield
    except Problem as exc:
        raise PageError(exc.status, exc.detail if exc.status == 422 else "") from None
