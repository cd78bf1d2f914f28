from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("active-users/", include("active_users.api.urls")),
    path("", lambda request: HttpResponse("home")),
]
