"""Drive the seed-style site in a fresh process and print what a user would see, as JSON."""

import json
import os
import sys

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.seed_site.settings"
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from active_users.api import get_active_users, get_active_users_count  # noqa: E402

call_command("migrate", verbosity=0)
User = get_user_model()
staff = Client()
staff.force_login(User.objects.create_user("boss", is_staff=True))
reader = Client()
reader.force_login(User.objects.create_user("reader:one"))
home = reader.get("/")
staff.get("/")
print(
    json.dumps(
        {
            "home_status": home.status_code,
            "count": get_active_users_count(),
            "users": sorted(u["username"] for u in get_active_users()),
            "view": staff.get("/active-users/active-users-info/").json(),
            "reader_view_status": reader.get("/active-users/active-users-info/").status_code,
            "models_imported": "active_users.models" in sys.modules,
        }
    )
)
