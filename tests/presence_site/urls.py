from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path

PAGE = engines["django"].from_string(
    "{% load active_users %}<!doctype html><title>{{ room }}</title>"
    "<h1>{{ room }}</h1><p id='presence'>{% active_users_presence room %}</p>"
)


def authorize(user: Any, room: str) -> bool:
    """The rule of who may be in which room (``PRESENCE_AUTHORIZE=1``): rooms named
    ``staff-…`` are for staff, the others for anyone."""
    return not room.startswith("staff-") or user.is_staff


def room(request: HttpRequest, name: str) -> HttpResponse:
    return HttpResponse(PAGE.render({"room": name}, request))


urlpatterns = [path("room/<path:name>/", room)]
