"""Untrusted input: JSON read with size and depth limits, and one JSON answer for every refusal.

Every view of the package answers a request it refuses with
``{"error": "<message>", "field": "<name>" or null}`` (:func:`error_response`): a
:class:`~active_users.exceptions.BadRequest` the package raised, and the errors Django raises
while parsing a request (a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, too many fields, a
malformed multipart body, bytes that are not UTF-8) alike (:func:`json_errors`). WebSocket
messages are read by :func:`read_message` and refused with an error frame of the same keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import BadRequest as DjangoBadRequest
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.http.request import RawPostDataException, UnreadablePostError

from active_users.exceptions import BadRequest

#: The largest JSON document (request body or WebSocket message) the package parses, in bytes.
MAX_JSON_BYTES = 64 * 1024
#: The deepest nesting of arrays and objects it parses; the package's own documents have 2.
MAX_JSON_DEPTH = 10

# A JSON string (escapes included), and the brackets left once strings are removed.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep ``text`` nests arrays and objects, counted without parsing (so without
    recursion), stopping once past ``limit``."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def parse_json(
    data: str | bytes,
    field: str = "body",
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """``data`` parsed, or :class:`BadRequest` (``field``) when it is larger than
    ``max_bytes`` (413), not UTF-8, nested deeper than ``max_depth``, or not JSON
    (``NaN`` and ``Infinity`` included)."""
    if isinstance(data, str):
        size = len(data) if len(data) > max_bytes else len(data.encode("utf-8", "surrogatepass"))
    else:
        size = len(data)
    if size > max_bytes:
        raise BadRequest(field, f"{size} bytes; at most {max_bytes} are accepted", status=413)
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(field, "is not UTF-8") from None
    openings = data.count("[") + data.count("{")  # fewer cannot nest deeper: no scan
    if openings > max_depth and json_depth(data, max_depth) > max_depth:
        raise BadRequest(field, f"nested deeper than {max_depth} levels")
    try:
        return json.loads(data, parse_constant=_no_constant)
    except ValueError as exc:
        raise BadRequest(field, f"malformed JSON: {exc}") from None


def error_response(status: int, message: str, field: str | None = None) -> JsonResponse:
    """The package's one error shape."""
    return JsonResponse({"error": message, "field": field}, status=status)


def refused(exc: BadRequest) -> JsonResponse:
    return error_response(exc.status, str(exc), exc.field)


def request_error(exc: Exception, request: HttpRequest) -> BadRequest:
    """The :class:`BadRequest` for an error Django raised while parsing ``request``."""
    part = "body" if request.method not in ("GET", "HEAD") else "query"
    if isinstance(exc, RequestDataTooBig):
        return BadRequest("body", "larger than this server accepts", status=413)
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return BadRequest(part, "too many fields")
    if isinstance(exc, MultiPartParserError):
        return BadRequest("body", f"malformed multipart body: {exc}")
    if isinstance(exc, UnicodeError):
        return BadRequest(part, "is not valid text in its declared encoding")
    if isinstance(exc, (UnreadablePostError, RawPostDataException)):
        return BadRequest("body", "could not be read")
    if isinstance(exc, DjangoBadRequest):  # Django 5.1+: a form body not in UTF-8
        return BadRequest(part, str(exc))
    return BadRequest(None, "the request could not be parsed")


#: What Django raises while parsing a request (``SuspiciousOperation`` covers the sizes).
REQUEST_ERRORS = (
    DjangoBadRequest,
    SuspiciousOperation,
    MultiPartParserError,
    UnicodeError,
    UnreadablePostError,
    RawPostDataException,
)

View = Callable[..., HttpResponse]


def json_errors(view: View) -> View:
    """Answer :class:`BadRequest` and Django's request-parsing errors raised by ``view``
    with the package's JSON error, never Django's HTML page (nor a 500)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except BadRequest as exc:
            return refused(exc)
        except REQUEST_ERRORS as exc:
            if isinstance(exc, (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)):
                request._mark_post_parse_error()  # type: ignore[attr-defined]  # as Django does
            return refused(request_error(exc, request))

    return wrapped


def read_message(text_data: str | None, bytes_data: bytes | None) -> Any:
    """A WebSocket message, parsed with the limits above; :class:`BadRequest` otherwise."""
    if text_data is None:
        raise BadRequest("message", "binary frames are not accepted; send JSON text")
    return parse_json(text_data, field="message")


def error_frame(exc: BadRequest) -> str:
    """The WebSocket answer to a refused message; the connection stays open."""
    return json.dumps({"type": "error", "error": str(exc), "field": exc.field})
