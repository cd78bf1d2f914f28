"""HTTP (with static files) and the presence WebSocket routes, as a project would set up."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.presence_site.settings")

from django.core.asgi import get_asgi_application

http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from active_users.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": ASGIStaticFilesHandler(http),
    "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
})  # fmt: skip
