"""``ActiveUsersSessionMiddleware``: records each request after its view has run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from active_users.backends import get_backend
from active_users.receivers import connect_signals
from active_users.tracking import tracker

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase

GetResponse = Callable[["HttpRequest"], "HttpResponseBase | Awaitable[HttpResponseBase]"]


class ActiveUsersSessionMiddleware:
    """Marks the request's user (and, if enabled, anonymous visitor) active.

    Place it after ``AuthenticationMiddleware``. It runs after the view, so users that the
    view authenticates itself (token or JWT auth) are counted too. It never fails a
    request: store errors are logged once per outage and the response goes out as is.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        get_backend()  # configuration errors show at start-up, not on the first request
        connect_signals()

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        response = self.get_response(request)
        tracker.track(request)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)  # type: ignore[misc]
        await tracker.atrack(request)
        return response  # type: ignore[no-any-return]
