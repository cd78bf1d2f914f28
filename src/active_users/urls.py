"""All of the package's URLs: ``include("active_users.urls")``.

``active-users-info/`` is django-active-users' JSON view (also served by
``active_users.api.urls``); ``log/`` takes client-side activity; ``v1/…`` is the versioned
JSON API (see the README).
"""

from django.urls import path

from active_users import views
from active_users.api import views as api_views

app_name = "active_users"

urlpatterns = [
    path("active-users-info/", api_views.active_users_info_view, name="info"),
    path("log/", views.log_activity, name="log"),
    path("v1/counts/", api_views.counts_v1, name="v1-counts"),
    path("v1/users/", api_views.users_v1, name="v1-users"),
    path("v1/history/", api_views.history_v1, name="v1-history"),
    path("v1/uniques/", api_views.uniques_v1, name="v1-uniques"),
]
