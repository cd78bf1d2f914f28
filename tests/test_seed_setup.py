"""Other sites in their own processes: django-active-users' set-up, a custom user model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.redis_server import delete_keys_under, key_prefix


def test_the_seed_setup_works_unchanged_on_django_redis(redis_url: str) -> None:
    prefix = key_prefix("seed")
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "SEED_REDIS_URL": redis_url,
        "SEED_PREFIX": prefix,
        "PYTHONPATH": str(root),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    try:
        done = subprocess.run(
            [sys.executable, "-W", "error", "-m", "tests.seed_site.run"],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        delete_keys_under(redis_url, prefix)
    assert seen["home_status"] == 200
    assert seen["count"] == 2
    assert seen["users"] == ["boss", "reader:one"]
    assert seen["view"]["count"] == 2
    assert sorted(d["username"] for d in seen["view"]["data"]) == ["boss", "reader:one"]
    assert seen["reader_view_status"] == 403
    assert seen["models_imported"] is False


def test_a_custom_user_model_without_username_is_tracked() -> None:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "tests.custom_user_site.run"],
        capture_output=True, text=True, env=env, cwd=root, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["status_code"] == 200
    [entry] = seen["entries"]
    assert (entry["user_id"], entry["username"]) == ("u:ada", "ada@example.com")
    assert seen["seen"] is True and seen["status"] == "online"
