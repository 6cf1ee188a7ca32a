"""Request bodies: a JSON document, or multipart/form-data with the document and files as parts.

Multipart requests carry the document either whole, as JSON in a part named ``data``, or as
flat fields named like its keys (``subject``, ``customer.email``); files come as parts named
``attachments``. Every problem names the field.
"""

from __future__ import annotations

import base64
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from gateway.web.api.models import media_type
from gateway.web.api.submit import Upload
from gateway.web.problems import Problem, invalid

Doc = TypeVar("Doc", bound=BaseModel)


async def read_document(request: Request, model: type[Doc], max_files: int,
                        max_bytes: int) -> tuple[Doc, list[Upload]]:
    """The validated document and its files, from JSON or multipart."""
    ctype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json")):
        try:
            doc = model.model_validate_json(await request.body())
        except ValidationError as exc:
            raise invalid(exc.errors()) from None
        uploads: list[Upload] = []
    elif ctype == "multipart/form-data":
        doc, uploads = await _multipart(request, model, max_files, max_bytes)
    else:
        raise Problem(415, "unsupported-media-type", "send application/json or multipart/form-data",
                      field="Content-Type")
    inline = getattr(doc, "attachments", [])
    if len(inline) + len(uploads) > max_files:
        raise Problem(422, "validation", f"at most {max_files} attachments ([http] max_attachments)",
                      field="attachments")
    uploads += [Upload(f.filename, f.content_type, base64.b64decode(f.content_base64)) for f in inline]
    return doc, uploads


async def _multipart(request: Request, model: type[Doc], max_files: int,
                     max_bytes: int) -> tuple[Doc, list[Upload]]:
    try:
        # One file more than allowed gets through, so the count is ours to report by field.
        form = await request.form(max_files=max_files + 1, max_fields=100, max_part_size=max_bytes)
    except HTTPException as exc:  # Starlette's word on a broken or oversized multipart body
        raise Problem(400, "multipart", f"unreadable multipart body: {exc.detail}",
                      field="body") from None
    fields: dict[str, Any] = {}
    uploads: list[Upload] = []
    document: str | None = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != "attachments":
                raise Problem(422, "validation", f"file part {name!r}: files go in parts named "
                              "attachments", field=name)
            uploads.append(Upload(value.filename or "", value.content_type or
                                  "application/octet-stream", await value.read()))
        elif name == "data":
            document = value
        else:
            _put(fields, name, value)
    try:
        doc = model.model_validate_json(document) if document is not None else \
            model.model_validate(fields)
    except ValidationError as exc:
        raise invalid(exc.errors()) from None
    if document is not None and fields:
        raise Problem(422, "validation", "send the document either as the data part or as fields, "
                      "not both", field=next(iter(fields)))
    return doc, [Upload(u.filename, _media(u.content_type), u.data) for u in uploads]


def _put(fields: dict[str, Any], name: str, value: str) -> None:
    """customer.email=x into {"customer": {"email": "x"}}."""
    *parents, leaf = name.split(".")
    target = fields
    for part in parents:
        nested = target.setdefault(part, {})
        if not isinstance(nested, dict):
            raise Problem(422, "validation", f"field {name!r} clashes with {part!r}", field=name)
        target = nested
    target[leaf] = value


def _media(value: str) -> str:
    """A part's media type, or octet-stream when it is not one."""
    try:
        return media_type(value)
    except ValueError:
        return "application/octet-stream"
