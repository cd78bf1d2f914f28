"""Drive the custom-user site in a fresh process; print what a user would see as JSON."""

import json
import os

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.custom_user_site.settings"
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from active_users.api import get_active_users  # noqa: E402
from active_users.last_seen import flush_last_seen, last_seen, status  # noqa: E402

call_command("migrate", run_syncdb=True, verbosity=0)
user = get_user_model().objects.create_user("ada@example.com", "pw")
browser = Client()
browser.force_login(user)
home = browser.get("/")
flush_last_seen(force=True)
print(
    json.dumps(
        {
            "status_code": home.status_code,
            "entries": get_active_users(),
            "pk": user.pk,
            "seen": last_seen(user) is not None,
            "status": status(user),
        }
    )
)
