"""Other sites in their own processes: django-active-users' set-up, a custom user model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import redis


def test_the_seed_setup_works_unchanged_on_django_redis(redis_url: str) -> None:
    prefix = f"seed-{uuid.uuid4().hex[:8]}"
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
        client = redis.Redis.from_url(redis_url)
        client.delete(*[f"{{{prefix}}}:{k}" for k in ("entries", "users", "visitors")])
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
