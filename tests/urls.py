from django.contrib import admin
from django.contrib.auth.views import LoginView, LogoutView
from django.urls import include, path

from tests import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", LoginView.as_view()),
    path("logout/", LogoutView.as_view()),
    path("active-users/", include("active_users.api.urls")),
    path("tracking/", include("active_users.urls")),
    path("tracked/", views.tracked_page),
    path("tracked/<path:rest>", views.tracked_page),
    path("page/", views.page),
    path("async-page/", views.async_page),
    path("token-page/", views.token_page),
    path("excluded/health/", views.page),
]
