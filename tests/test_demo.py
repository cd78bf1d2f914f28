"""The demo site, run as the README runs it: a real server and the traffic simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

import pytest

from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_demo_serves_live_counts_that_the_simulated_users_move(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "DEMO_DATABASE": str(tmp_path / "demo.sqlite3")}
    for name in ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL"):
        env.pop(name, None)
    server = subprocess.Popen(
        [sys.executable, "example/manage.py", "demo", f"127.0.0.1:{port}", "--users", "6"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        count = 0
        while time.monotonic() < deadline and count == 0:
            time.sleep(0.5)
            try:
                with urlopen(f"http://127.0.0.1:{port}/active-users/active-users-info/") as r:
                    count = json.load(r)["count"]
            except OSError:
                continue
        assert count > 0, "no simulated user became active"
        with urlopen(f"http://127.0.0.1:{port}/") as response:
            page = response.read().decode()
        assert "Who is here now" in page and "Everyone, last seen" in page
        assert "status-online" in page
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0].decode()
    assert "Traceback" not in output, output
