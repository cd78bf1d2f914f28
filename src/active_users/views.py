"""The activity endpoint, ``log/``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from active_users.activity import check_size, rate_limited, read_events, store
from active_users.exceptions import BadRequest
from active_users.faults import json_guard
from active_users.inputs import error_response, json_errors


def _error(status: int, field: str, message: str) -> JsonResponse:
    return error_response(status, f"{field}: {message}", field)


MAX_AUTHORIZATION = 4096


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> HttpResponseForbidden:
        return HttpResponseForbidden(reason)


def _no_response(request: HttpRequest) -> HttpResponse:
    raise AssertionError("the CSRF check only decides; it never calls the view")


def _csrf_failure(request: HttpRequest) -> str | None:
    check = _CsrfCheck(_no_response)
    check.process_request(request)
    refused = check.process_view(request, _no_response, (), {})
    return None if refused is None else refused.content.decode()


def _token_user(request: HttpRequest) -> Any:
    """The user of an ``Authorization`` header, through the project's Django REST framework
    authentication classes (session authentication aside). None without DRF or header."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if header is None:
        return None
    if len(header) > MAX_AUTHORIZATION or any(ord(c) < 32 or ord(c) == 127 for c in header):
        raise BadRequest("authorization", "malformed header", status=401)
    try:
        from rest_framework.authentication import SessionAuthentication
        from rest_framework.exceptions import APIException
        from rest_framework.request import Request
        from rest_framework.settings import api_settings
    except ImportError:
        return None
    authenticators = [
        cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES
        if not issubclass(cls, SessionAuthentication)
    ]  # fmt: skip
    try:
        user = Request(request, authenticators=authenticators).user
    except APIException as exc:
        raise BadRequest("authorization", str(exc.detail), status=401) from None
    return user if user is not None and user.is_authenticated else None


@csrf_exempt  # checked below for cookie-authenticated requests, not for token ones
@json_guard
@json_errors
def log_activity(request: HttpRequest) -> HttpResponse:
    """Record client-side events: see the README, "Client-side activity"."""
    if request.method != "POST":
        response = _error(405, "method", f"{request.method} is not allowed; use POST")
        response["Allow"] = "POST"
        return response
    check_size(request)
    user = _token_user(request)
    if user is not None:
        request.user = user  # the middleware records the user after this view
    else:
        reason = _csrf_failure(request)
        if reason is not None:
            return _error(403, "csrf", reason)
    wait = rate_limited(request)
    if wait is not None:
        response = _error(429, "rate", f"too many events; retry in {wait} seconds")
        response["Retry-After"] = str(wait)
        return response
    events = read_events(request)
    logged = store(request, events)
    if request.content_type != "application/json":
        return HttpResponse(status=204)  # a form's answer, as django-djaffar's
    return JsonResponse({"logged": logged}, status=201)
