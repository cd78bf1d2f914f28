"""The JSON API's routes.

``include("active_users.api.urls")`` serves django-active-users' JSON view alone, under its
old URL name; ``include("active_users.urls")`` serves it with the versioned routes below and
``log/``.
"""

from django.urls import path

from active_users.api import views

urlpatterns = [
    path("active-users-info/", views.active_users_info_view, name="active_users_info"),
]

#: The versioned API, named inside the ``active_users`` namespace of ``active_users.urls``.
v1_urlpatterns = [
    path("v1/counts/", views.counts_v1, name="v1-counts"),
    path("v1/users/", views.users_v1, name="v1-users"),
    path("v1/history/", views.history_v1, name="v1-history"),
    path("v1/uniques/", views.uniques_v1, name="v1-uniques"),
]
