"""WebSocket routes (the ``[channels]`` extra): add ``websocket_urlpatterns`` to your ASGI
application's ``URLRouter``, inside Channels' ``AuthMiddlewareStack`` (for the user and the
session) and ``AllowedHostsOriginValidator``::

    from active_users.routing import websocket_urlpatterns

    application = ProtocolTypeRouter({
        "http": get_asgi_application(),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    })

The room is the rest of the path: ``ws/presence/<room>/?token=<room token>``
(``ACTIVE_USERS_PRESENCE_URL``), percent-encoded by the client; the token comes from
``{% active_users_presence room %}``. ``ws/active-users/dashboard/`` pushes the admin
dashboard's counts to staff.
"""

import re

from django.urls import re_path

from active_users.conf import conf
from active_users.consumers import DashboardConsumer, PresenceConsumer

DASHBOARD_PATH = "ws/active-users/dashboard/"

websocket_urlpatterns = [
    re_path(rf"^{re.escape(DASHBOARD_PATH)}$", DashboardConsumer.as_asgi()),
    re_path(rf"^{re.escape(conf.PRESENCE_URL)}(?P<room>.+)/$", PresenceConsumer.as_asgi()),
]
