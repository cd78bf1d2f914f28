"""The command line view of who is active, and the Prometheus metrics."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from active_users.last_seen import flush_last_seen

pytestmark = pytest.mark.usefixtures("backend_name")


def visit(make_user, name: str, **meta: str) -> None:  # type: ignore[no-untyped-def]
    browser = Client()
    browser.force_login(make_user(name))
    browser.get("/page/", **meta)


def test_the_command_prints_counts_and_a_table(make_user) -> None:
    visit(make_user, "alice", REMOTE_ADDR="203.0.113.5")
    visit(make_user, "bob:colon")
    out = StringIO()
    call_command("active_users", stdout=out)
    text = out.getvalue()
    assert "Active now: 2 sessions of 2 users, 0 anonymous visitors" in text
    assert "Unique users: 2 today, 2 in 7 days, 2 in 30 days (DAU/MAU 100%)" in text
    header = next(line for line in text.splitlines() if line.startswith("USER_ID"))
    assert header.split() == ["USER_ID", "SESSION_ID", "IP", "USERNAME", "LAST", "ACTIVE"]
    assert any("alice" in line and "203.0.113.5" in line for line in text.splitlines())
    assert any("bob:colon" in line for line in text.splitlines())


def test_the_command_prints_json_for_scripts(make_user) -> None:
    visit(make_user, "carol")
    out = StringIO()
    call_command("active_users", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert (data["entries"], data["users"], data["visitors"]) == (1, 1, 0)
    assert (data["dau"], data["wau"], data["mau"], data["dau_mau"]) == (1, 1, 1, 1.0)
    assert data["active_users"][0]["username"] == "carol"


def test_watch_refreshes_in_place(make_user) -> None:
    visit(make_user, "dave")
    out = StringIO()
    call_command("active_users", "--watch", "--interval", "0.01", "--times", "3", stdout=out)
    assert out.getvalue().count("\033[H\033[2J") == 3
    assert out.getvalue().count("Active now: 1 sessions") == 3


def test_the_command_says_when_the_store_is_down(db) -> None:
    with override_settings(ACTIVE_USERS_BACKEND="redis",
                           ACTIVE_USERS_REDIS_URL="redis://127.0.0.1:1/0"):  # fmt: skip
        with pytest.raises(CommandError, match="store"):
            call_command("active_users", stdout=StringIO())


def test_metrics_expose_the_counts_in_prometheus_text(make_user) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from active_users.metrics import register

    visit(make_user, "erin")
    visit(make_user, "frank")
    flush_last_seen(force=True)
    registry = CollectorRegistry()
    register(registry)
    text = generate_latest(registry).decode()
    assert "active_users_store_up 1.0" in text
    assert "active_users_sessions 2.0" in text
    assert "active_users_users 2.0" in text
    assert "active_users_visitors 0.0" in text
    assert "active_users_daily_users 2.0" in text
    assert "# HELP active_users_users Distinct active logged-in users." in text
    with override_settings(ACTIVE_USERS_HISTORY=False):
        assert "active_users_dau" not in generate_latest(registry).decode()


def test_metrics_expose_daily_weekly_and_monthly_users_from_history(make_user) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from active_users.history import clear_history
    from active_users.metrics import register

    clear_history()
    visit(make_user, "gina")
    visit(make_user, "hal")
    registry = CollectorRegistry()
    register(registry)
    text = generate_latest(registry).decode()
    for name in ("dau", "wau", "mau"):
        assert f"active_users_{name} 2.0" in text
    assert "# HELP active_users_dau Distinct users today." in text
    clear_history()


def test_metrics_report_a_store_that_is_down(db) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from active_users.metrics import register

    with override_settings(ACTIVE_USERS_BACKEND="redis",
                           ACTIVE_USERS_REDIS_URL="redis://127.0.0.1:1/0"):  # fmt: skip
        registry = CollectorRegistry()
        register(registry)
        text = generate_latest(registry).decode()
    assert "active_users_store_up 0.0" in text
    assert "active_users_users" not in text
