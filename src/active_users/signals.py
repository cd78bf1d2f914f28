"""Signals of the package.

``user_became_active(sender=<user model>, user=<user>, request=<request>)`` is sent after a
request of a user who was *offline*: not seen for ``ACTIVE_USERS_IDLE_AFTER`` seconds (900
by default), or never seen. It is sent once per such transition across all processes and
servers, by the process whose write to the store recorded it; repeated requests of an
online or idle user do not send it. It is sent after the response was built, from the
middleware; a receiver that raises is logged and does not fail the request.
"""

from django.dispatch import Signal

user_became_active = Signal()
