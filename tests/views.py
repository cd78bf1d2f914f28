from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.shortcuts import render


def page(request):
    return HttpResponse("ok")


async def async_page(request):
    return HttpResponse("ok")


def token_page(request):
    """Authenticates by header in the view, as DRF token auth does (after middleware)."""
    token = request.headers.get("Authorization", "")
    if token.startswith("Token "):
        request.user = get_user_model().objects.get(username=token[6:])
    return HttpResponse("ok")


def tracked_page(request, rest=""):
    return render(request, "tests/tracked.html")
