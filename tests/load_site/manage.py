"""Set up and read the load-test site: ``setup K V`` prints as JSON the users' session
cookies, the visitors' user agents (visitors keep no cookie) and as many anonymous sessions
(the first user is staff with ``LOAD_FIRST_IS_STAFF=1``);
``counts`` prints the active counts as JSON."""

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.load_site.settings")
django.setup()

from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core.management import call_command  # noqa: E402

from active_users import api  # noqa: E402

if sys.argv[1] == "setup":
    users, visitors = int(sys.argv[2]), int(sys.argv[3])
    call_command("migrate", verbosity=0)
    api.clear_active_users()
    User = get_user_model()
    cookies = {"users": [], "visitors": [], "anonymous_sessions": []}
    for n in range(users):
        staff = n == 0 and os.environ.get("LOAD_FIRST_IS_STAFF") == "1"
        user = User.objects.create_user(f"load{n}", is_staff=staff)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        cookies["users"].append(session.session_key)
    cookies["visitors"] = [f"LoadVisitor/{n}" for n in range(visitors)]
    # Anonymous sessions (presence rooms that let anonymous visitors in sign for one).
    for _ in range(visitors):
        session = SessionStore()
        session["anonymous"] = True
        session.create()
        cookies["anonymous_sessions"].append(session.session_key)
    print(json.dumps(cookies))
elif sys.argv[1] == "counts":
    counts = api.get_active_counts()
    print(
        json.dumps({"entries": counts.entries, "users": counts.users, "visitors": counts.visitors})
    )
