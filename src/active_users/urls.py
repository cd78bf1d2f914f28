"""All of the package's URLs: ``include("active_users.urls")``.

``active-users-info/`` is django-active-users' JSON view (also served by
``active_users.api.urls``); ``log/`` takes client-side activity; ``v1/…`` is the versioned
JSON API (see the README), routed in ``api/urls.py``.
"""

from django.urls import path

from active_users import views
from active_users.api import urls as api_urls
from active_users.api import views as api_views

app_name = "active_users"

urlpatterns = [
    path("active-users-info/", api_views.active_users_info_view, name="info"),
    path("log/", views.log_activity, name="log"),
    *api_urls.v1_urlpatterns,
]
