from django.urls import path

from active_users.api import views

urlpatterns = [
    path("active-users-info/", views.active_users_info_view, name="active_users_info"),
]
