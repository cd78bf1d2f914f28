from __future__ import annotations

from django.core.exceptions import BadRequest as DjangoBadRequest


class StoreUnavailable(Exception):
    """The store did not answer; raised by the read functions of :mod:`active_users.api`."""


class BadRequest(ValueError, DjangoBadRequest):
    """An input the package refuses, whichever entry point it came through.

    Views answer it with ``status`` and ``{"error": str(exc), "field": field}``; sockets with
    an error frame of the same keys. The message starts with the field's name when there is
    one (``"limit: must be an integer from 1 to 1000"``). A ``ValueError``, so the read
    functions' callers (and the circuit breaker, which ignores refused inputs) treat it as
    the caller's mistake; a Django ``BadRequest``, so one that escapes is still a 400.
    """

    def __init__(self, field: str | None, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.status = field, status
