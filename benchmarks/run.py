"""Benchmarks of this package against django-active-users 0.4.1 and django-online-users 0.1.

    .venv/bin/python benchmarks/run.py --quick      # about two minutes
    .venv/bin/python benchmarks/run.py              # the full run, about an hour

The peers are installed from PyPI into ``benchmarks/.venv-peers`` (they share the import
name ``active_users`` with this package, so they cannot live in its environment). Each
measurement runs in fresh processes (``worker.py``, or gunicorn serving it) against a
throwaway redis-server and throwaway PostgreSQL databases. Prints tables and writes
``benchmarks/results.json``, ``docs/benchmarks.md`` and ``docs/benchmarks-count.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
PEERS_VENV = HERE / ".venv-peers"
PEERS = ["django-active-users==0.4.1", "django-online-users==0.1"]
PG = "postgresql://postgres@127.0.0.1:5432/test"

# Each wrk thread walks the users from its own starting point (thread k of T at k/T of the
# list), so that a run of fewer requests than two rounds still requests every user, and
# notes the user of each response it received (the page names its user): the distinct
# active count after a run is then checked against the users the server answered, not
# the requests wrk made (those in flight when wrk stops may never have been served, and wrk
# calls a thread's ``request`` once more before the run to check it).
WRK_SCRIPT = """
local cookies, slots, threads = {}, 0, {}
for line in io.lines("%s") do cookies[#cookies + 1] = line end
function setup(thread)
  thread:set("slot", slots)
  slots = slots + 1
  threads[#threads + 1] = thread
end
walked = 0 -- requests this thread made
answered = {} -- the users of the responses it received (a global: done() reads it)
request = function()
  walked = walked + 1
  local n = math.floor(slot * #cookies / %d) + walked
  return wrk.format("GET", "/", {["Cookie"] = "sessionid=" .. cookies[(n %% #cookies) + 1]})
end
response = function(status, headers, body)
  local n = tonumber(string.match(body, "^bench(%%d+)$"))
  if n then answered[n] = true end
end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local users = {}
    for n in pairs(thread:get("answered")) do users[#users + 1] = n end
    io.write("answered " .. table.concat(users, " ") .. "\\n")
  end
end
"""
WRK_THREADS = 2
CONNECTIONS = 16
LEAD_IN = 2  # seconds of load before each measured run
# Under ASGI a run is measured again when a worker holds fewer of wrk's connections than its
# even share less this many (fewer than 6 of 16 with 2 workers), at most UNEVEN_ATTEMPTS times.
UNEVEN_SLACK = 2
UNEVEN_ATTEMPTS = 4
# A block's servers are started afresh every this many rounds (see serve_rounds).
ROUNDS_PER_START = 5
FLUSH_INTERVAL = 1.0  # the package's default on SQLite (0.25 s on the other stores)


def peers_python() -> str:
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        import django

        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"Django=={django.__version__}",
                        "django-redis", "redis[hiredis]", "six", "psycopg[binary]", "gunicorn",
                        *PEERS], check=True)  # fmt: skip
    return str(python)


class Databases:
    """Fresh PostgreSQL databases, dropped at the end."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def new(self, template: str | None = None) -> str:
        import psycopg

        name = f"active_users_bench_{uuid.uuid4().hex[:8]}"
        copy = f" TEMPLATE {template}" if template else ""
        with psycopg.connect(PG, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}{copy}")
        self.names.append(name)
        return name

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(PG, autocommit=True) as admin:
            for name in self.names:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Bench:
    def __init__(self, quick: bool) -> None:
        from tests.redis_server import RedisServer

        self.quick = quick
        self.redis = RedisServer()
        self.tmp = Path(tempfile.mkdtemp(prefix="active-users-bench-"))
        self.databases = Databases()
        self.peers = peers_python()
        # A migrated database per subject and store, copied for each measurement: a worker
        # then starts on an up-to-date schema instead of migrating one from scratch.
        self.templates: dict[tuple[str, str], str] = {}
        self.windows: list[tuple[str, float, float]] = []  # (label, start, end) of each run

    def close(self) -> None:
        self.redis.close()
        self.databases.drop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def template(self, subject: str, store: str) -> str:
        found = self.templates.get((subject, store))
        if found is None:
            if store == "postgres":
                found = self.databases.new()
            else:
                found = str(self.tmp / f"template-{subject}.sqlite3")
            env = self._env(subject, store, found, BENCH_TASK="migrate")
            subprocess.run([self.python(subject), str(HERE / "worker.py")], env=env,
                           capture_output=True, text=True, check=True)  # fmt: skip
            self.templates[(subject, store)] = found
        return found

    def env(
        self, subject: str, store: str, flush_redis: bool = True, **extra: Any
    ) -> dict[str, str]:
        template = self.template(subject, store)
        if store == "postgres":
            database = self.databases.new(template)
        else:
            database = str(self.tmp / f"{uuid.uuid4().hex[:8]}.sqlite3")
            shutil.copyfile(template, database)
        return self._env(subject, store, database, flush_redis, **extra)

    def _env(
        self, subject: str, store: str, database: str, flush_redis: bool = True, **extra: Any
    ) -> dict[str, str]:
        if flush_redis:
            self.redis.client().flushall()
        env = {**os.environ, "BENCH_SUBJECT": subject, "BENCH_STORE": store,
               "BENCH_REDIS_URL": self.redis.url, "BENCH_DATABASE": database}  # fmt: skip
        env.update({k: str(v) for k, v in extra.items()})
        env.pop("DJANGO_SETTINGS_MODULE", None)
        return env

    def python(self, subject: str) -> str:
        return self.peers if subject in ("dau", "dou") else sys.executable

    def worker(self, subject: str, store: str, task: str, **extra: Any) -> Any:
        env = self.env(subject, store, BENCH_TASK=task, **extra)
        done = subprocess.run([self.python(subject), str(HERE / "worker.py")], env=env,
                              capture_output=True, text=True, timeout=3600)  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"{subject}/{store}/{task} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start(self, subject: str, store: str, label: str, users: int, server: str) -> Served:
        """gunicorn (2 sync workers, or 2 uvicorn workers for ASGI), sessions in the
        database, every user requested a few times, so that what is measured next is the
        steady state of a site whose users were already seen by each worker (a user's
        first request to a worker writes at once)."""
        extra = {"BENCH_WSGI": 1, "BENCH_SESSIONS": "db", "BENCH_LABEL": label}
        if server == "asgi":
            extra["BENCH_ASGI"] = 1
        # One running server at a time uses the Redis server, emptied before it starts.
        env = self.env(subject, store, flush_redis=store == "redis", BENCH_TASK="cookies",
                       BENCH_USERS=users, **extra)  # fmt: skip
        done = subprocess.run([self.python(subject), str(HERE / "worker.py")], env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        cookies = json.loads(done.stdout.strip().splitlines()[-1])
        name = uuid.uuid4().hex[:8]
        (self.tmp / f"{name}.txt").write_text("\n".join(cookies) + "\n")
        script = self.tmp / f"{name}.lua"
        script.write_text(WRK_SCRIPT % (self.tmp / f"{name}.txt", WRK_THREADS))
        from tests.redis_server import free_port

        port = free_port()
        gunicorn = [self.python(subject), "-m", "gunicorn", "worker:application", "-w", "2",
                    "-b", f"127.0.0.1:{port}", "--chdir", str(HERE), "--log-level", "error"]  # fmt: skip
        if server == "asgi":
            gunicorn += ["-k", "uvicorn.workers.UvicornWorker"]
        process = subprocess.Popen(gunicorn, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        served = Served(subject, label, env, port, script, process, len(cookies))
        if store != "postgres":
            # A connection held open for the server's life, as a site's other processes
            # hold one, and as the database backend's writer thread does: the same file
            # conditions for every subject. Under ASGI (a connection per request), the one
            # that closes last checkpoints the WAL and removes it, under an exclusive lock.
            # Without it, one of bare Django's two workers sat idle (no CPU, no request
            # thread) in 4 of 180 one-second runs; with it, in none.
            served.held = sqlite3.connect(env["BENCH_DATABASE"])
            served.held.execute("SELECT count(*) FROM sqlite_master").fetchall()
        try:
            wait_for_port(port)
            warm(port, cookies, rounds=4 if self.quick else 8)
        except BaseException:
            self.stop(served)
            raise
        return served

    def load(self, served: Served, seconds: int) -> dict[str, Any]:
        """wrk from a second process: 2 s to settle (not measured: the server may have been
        idle while another was measured), then ``seconds`` measured.

        Under ASGI a connection stays with the worker that accepted it, and an asyncio
        server accepts every pending connection at once: when wrk opens its 16, a worker
        that is busy for that millisecond may get none, and the run measures one worker
        (half the requests/s, bare Django as well). Short of that, a worker left with 4 or 5
        of the 16 costs a run 4 to 8 points of its ratio to bare Django, whoever serves it
        (a second bare Django included). A run whose connections are uneven (a worker with
        fewer than its even share less ``UNEVEN_SLACK``, counted with ``ss`` a second in) is
        measured again, up to ``UNEVEN_ATTEMPTS`` times in all; the split is recorded."""
        wrk = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", "--latency", "-s",
               str(served.script), f"http://127.0.0.1:{served.port}/"]  # fmt: skip
        lead_in = subprocess.run([*wrk, f"-d{LEAD_IN}s"], capture_output=True, text=True,
                                 check=True)  # fmt: skip
        reached = answered(lead_in.stdout)
        uneven: list[list[int]] = []
        while True:
            start = time.time()
            run = subprocess.Popen([*wrk, f"-d{seconds}s"], stdout=subprocess.PIPE, text=True)
            time.sleep(1)
            split = connections_per_worker(served)
            out, _ = run.communicate()
            if run.returncode:
                raise RuntimeError(f"wrk failed on {served.label}")
            if uneven:  # the lead-in and a run before were longer ago than KEY_EXPIRE
                reached = set()
            reached |= answered(out)
            even = CONNECTIONS / max(1, len(split))
            if not split or min(split) >= even - UNEVEN_SLACK or len(uneven) + 1 >= UNEVEN_ATTEMPTS:
                break
            uneven.append(split)
        self.windows.append((served.label, start, time.time()))
        return {
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
            "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out)[1]),  # type: ignore[index]
            "errors": int(m[1]) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0,
            "connections": split,
            "uneven_runs_measured_again": uneven,
            "users_answered": len(reached),
            "answered": reached,  # not kept in the results
        }

    def count(self, served: Served) -> tuple[int, set[int]]:
        """The distinct active users in the store, and the users of its active entries,
        read by a process of its own."""
        env = {**served.env, "BENCH_TASK": "count"}
        for name in ("BENCH_WSGI", "BENCH_SESSIONS", "BENCH_ASGI", "BENCH_LABEL"):
            env.pop(name, None)
        done = subprocess.run([sys.executable, str(HERE / "worker.py")], env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        distinct, active = json.loads(done.stdout.strip().splitlines()[-1])
        return int(distinct), set(active)

    def stop(self, served: Served) -> None:
        served.process.terminate()  # the workers write what they hold as they exit
        served.process.wait(20)
        if served.held is not None:
            served.held.close()


@dataclass
class Served:
    """A running, warmed server of one subject."""

    subject: str
    label: str
    env: dict[str, str]
    port: int
    script: Path
    process: subprocess.Popen[bytes]
    users: int
    held: sqlite3.Connection | None = None


def serve_rounds(bench: Bench, server: str, blocks: list[Any], users: int, seconds: int,
                 rounds: int) -> dict[str, Any]:  # fmt: skip
    """Each block's servers (bare Django and the subjects on its database) run side by side,
    started and warmed together; they are measured one at a time, the others idle, bare
    Django before every other run and once more before they stop: bare, A, bare, B, bare, B,
    bare, A, … (the subjects' order rotated each round). Each run of a subject is compared
    with the two bare runs right before and after it (the mean of their requests/s and p99),
    seconds away: the machine drifts by ±10 % from minute to minute here, and a run compared
    with bare runs a round away measured that drift as much as the subject. Every
    ``ROUNDS_PER_START`` rounds the block's servers are stopped and started afresh: a started
    server keeps a speed of its own for its life (the medians of three runs on each of four
    started servers of this package on SQLite under ASGI read 84, 98, 102 and 105 % of bare
    Django here), so a subject's figures come from several of its servers, not one. Each
    subject reports the medians of its runs' figures and of those ratios, and the ratios'
    quartiles. This package's distinct active count is read after each of its runs, from
    another process while the server runs, and once more after each of its servers stopped.
    The peers (WSGI only) are measured once each, after the rounds, each followed by one
    more bare run."""
    rows: dict[str, Any] = {}
    for database, subjects in blocks:
        rows.update(serve_block(bench, server, database, subjects, users, seconds, rounds))
    return rows


def serve_block(bench: Bench, server: str, database: str, subjects: list[Any], users: int,
                seconds: int, rounds: int) -> dict[str, Any]:  # fmt: skip
    bare_label = f"bare Django, {NAMES[database]}"
    sequence: list[dict[str, Any]] = []  # every run in the order measured
    counts: dict[str, list[int]] = {}
    reached: dict[str, list[int]] = {}  # how many users wrk got an answer for before each count
    missing: dict[str, list[int]] = {}  # how many of those the store did not count
    last_answered: set[int] = set()  # the users the last run got a response for
    length = seconds

    def measure(served: Served, round_: int) -> None:
        nonlocal length, last_answered
        print(f"{server}: round {round_ + 1}: {served.label}: wrk", flush=True)
        result = bench.load(served, length)
        last_answered = result.pop("answered")
        sequence.append({**result, "label": served.label, "round": round_, "seconds": length})
        if len(sequence) == 1:
            # Every user must be requested in every run for the count after it to tell
            # whether a touch was lost: where bare Django serves fewer than 1.5 requests
            # per user in a run (PostgreSQL under ASGI), the block's runs last longer.
            length = max(seconds, math.ceil(1.5 * users / result["rps"]))
        if served.subject == "ours":
            time.sleep(2 * FLUSH_INTERVAL)  # what the workers hold reaches the store
            count(served)

    def count(served: Served) -> None:
        distinct, active = bench.count(served)
        counts.setdefault(served.label, []).append(distinct)
        reached.setdefault(served.label, []).append(len(last_answered))
        missing.setdefault(served.label, []).append(len(last_answered - active))

    for first in range(0, rounds, ROUNDS_PER_START):
        last = min(rounds, first + ROUNDS_PER_START) - 1
        bare = bench.start("bare", database, bare_label, users, server)
        servers: list[Served] = []
        try:
            for subject in subjects:
                servers.append(bench.start(*subject, users, server))
            for round_ in range(first, last + 1):
                turn = round_ % len(servers)
                for served in servers[turn:] + servers[:turn]:
                    measure(bare, round_)
                    measure(served, round_)
                    if round_ == last:  # its server's last run: stopped, counted again at once
                        bench.stop(served)
                        if served.subject == "ours":
                            count(served)
            measure(bare, last + 1)
            peers = (
                PEERS_SERVED.get(database, []) if server == "wsgi" and last == rounds - 1 else []
            )
            for peer in peers:
                served = bench.start(*peer, users, server)
                try:
                    measure(served, rounds)
                finally:
                    bench.stop(served)
                measure(bare, rounds)
        finally:
            for served in [bare, *servers]:
                bench.stop(served)
    for at, run in enumerate(sequence):
        if run["label"] != bare_label:  # bare runs on both sides, by construction
            before, after = sequence[at - 1], sequence[at + 1]
            run["rps_vs_bare"] = run["rps"] / ((before["rps"] + after["rps"]) / 2)
            run["p99_vs_bare"] = run["p99_ms"] / ((before["p99_ms"] + after["p99_ms"]) / 2)
    rows: dict[str, Any] = {}
    for label in dict.fromkeys(run["label"] for run in sequence):
        done = [run for run in sequence if run["label"] == label]
        rows[label] = {
            "rps": statistics.median(r["rps"] for r in done),
            "p99_ms": statistics.median(r["p99_ms"] for r in done),
            "errors": sum(r["errors"] for r in done),
            "runs": done,
            "baseline": bare_label,
            "seconds_per_run": done[-1]["seconds"],
            "rounds_per_start": ROUNDS_PER_START,
        }
        if label != bare_label:
            for figure in ("rps_vs_bare", "p99_vs_bare"):
                ratios = [r[figure] for r in done]
                rows[label][figure] = statistics.median(ratios)
                if len(ratios) > 1:
                    quartiles = statistics.quantiles(ratios, n=4)
                    rows[label][f"{figure}_quartiles"] = [quartiles[0], quartiles[2]]
        if label in counts:
            rows[label]["active_after"] = span(counts[label])
            rows[label]["counts"] = counts[label]
            rows[label]["users_answered"] = reached[label]
            rows[label]["answered_before"] = span(reached[label])
            rows[label]["answered_not_counted"] = max(missing[label])
    return rows


def span(values: list[int]) -> str:
    return " to ".join(f"{value:,}" for value in sorted({min(values), max(values)}))


def answered(out: str) -> set[int]:
    """The users whose requests a wrk run got a response to, from what its threads printed
    (``WRK_SCRIPT``)."""
    lines = re.findall(r"^answered (.*)$", out, re.MULTILINE)
    return {int(n) for line in lines for n in line.split()}


def connections_per_worker(served: Served) -> list[int]:
    """wrk's open connections held by each of the server's workers, fewest first; empty
    when unknown (no ``ss``, or sync workers, which hold a connection per request)."""
    master = served.process.pid
    try:
        with open(f"/proc/{master}/task/{master}/children") as children:
            workers = children.read().split()
        listing = subprocess.run(["ss", "-tnpH", "state", "established",
                                  f"( sport = :{served.port} )"],
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return []
    held = re.findall(r"pid=(\d+)", listing)
    if len(held) < CONNECTIONS:
        return []
    return sorted(held.count(worker) for worker in workers)


def warm(port: int, cookies: list[str], rounds: int, connections: int = 8) -> None:
    """Request every session ``rounds`` times from ``connections`` threads."""
    import http.client
    import threading

    def browse(mine: list[str]) -> None:
        # A connection of its own per request: a kept-alive one stays with one worker, and
        # each user must meet every worker.
        for _ in range(rounds):
            for cookie in mine:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("GET", "/", headers={"Cookie": f"sessionid={cookie}",
                                                        "Connection": "close"})  # fmt: skip
                connection.getresponse().read()
                connection.close()

    threads = [threading.Thread(target=browse, args=(cookies[n::connections],))
               for n in range(connections)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
PEERS_SERVED = {
    "sqlite": [("dau", "redis", "django-active-users 0.4.1 (Redis, sessions on SQLite)")],
    "postgres": [("dou", "postgres", "django-online-users 0.1, PostgreSQL")],
}

# Served beside the subjects on SQLite, to read their figures against.
CONTROLS = {
    "again": ("bare", "sqlite", "bare Django, SQLite, again"),
    # Under ASGI every request opens a connection, and SQLite reads the whole schema anew.
    "tables": ("tables", "sqlite", "this package's tables, no middleware, SQLite"),
}

SUBJECTS = [
    ("ours", "redis", "this package, Redis"),
    ("ours", "sqlite", "this package, SQLite"),
    ("ours", "postgres", "this package, PostgreSQL"),
    ("dau", "redis", "django-active-users 0.4.1 (Redis)"),
    ("dou", "sqlite", "django-online-users 0.1, SQLite"),
    ("dou", "postgres", "django-online-users 0.1, PostgreSQL"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs")
    parser.add_argument("--redis-sizes", default=None)
    parser.add_argument("--db-sizes", default=None)
    parser.add_argument("--seconds", type=int, default=None, help="load duration")
    parser.add_argument("--parts", default="request,sizes,serve", help="what to measure")
    parser.add_argument("--servers", default="wsgi,asgi", help="served runs: wsgi, asgi")
    parser.add_argument("--databases", default="sqlite,postgres",
                        help="served runs: sqlite (with Redis beside it), postgres")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=None,
                        help="served runs: rounds of every subject, medians reported")  # fmt: skip
    parser.add_argument("--controls", default="",
                        help="served runs on SQLite, measured as the subjects are: again (bare "
                        "Django once more: the harness's own spread), tables (this package "
                        "installed, its tables in the file, no middleware)")  # fmt: skip
    parser.add_argument("--sqlite-journal", default="",
                        help="served runs: SQLite journal mode for every site, e.g. wal")  # fmt: skip
    parser.add_argument("--probe", default="",
                        help="served runs: each worker's garbage collections, event-loop lag "
                        "and time in the application, written to this directory and summed "
                        "up per subject (benchmarks/probe)")  # fmt: skip
    args = parser.parse_args()
    if args.probe:
        os.environ["BENCH_PROBE"] = str(Path(args.probe).resolve())
        Path(args.probe).mkdir(parents=True, exist_ok=True)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(HERE / "probe"), os.environ.get("PYTHONPATH")])
        )
    redis_sizes = args.redis_sizes or ("10000" if args.quick else "10000,100000,1000000")
    db_sizes = args.db_sizes or ("10000" if args.quick else "10000,100000")
    seconds = args.seconds or (3 if args.quick else 5)
    users = 300 if args.quick else 1000
    bench = Bench(args.quick)
    # Single served runs spread by ±10 % here; with 20 rounds the medians settle.
    args.rounds = args.rounds or (1 if args.quick else 20)
    if args.sqlite_journal:
        os.environ["BENCH_SQLITE_JOURNAL"] = args.sqlite_journal
    results: dict[str, Any] = {"machine": machine(), "command": " ".join(sys.argv), "users": users,
                               "request": {}, "sizes": {}, "serve": {}, "writes": {}}  # fmt: skip
    parts = set(args.parts.split(","))
    saved = HERE / "results.json"
    earlier: list[int] | None = None
    if parts != {"request", "sizes", "serve"} and saved.exists():  # a partial run updates
        results = {**json.loads(saved.read_text()), "machine": results["machine"]}
        results["command"] += f"; then {' '.join(sys.argv)}"
        took = results.get("seconds")  # one figure per command, in the command's order
        earlier = [took] if isinstance(took, int) else list(took or [])
    if args.probe:  # figures taken with the probe on go beside its records, not to the docs
        saved = Path(args.probe) / "results.json"
    # A partial run keeps the other parts' figures: each part names the machine it ran on.
    machines = results.setdefault("machines", {})
    for part in parts & {"request", "sizes", "serve"}:
        machines[part] = results["machine"]
    began = time.monotonic()
    try:
        for subject, store, label in SUBJECTS if parts & {"request", "sizes"} else []:
            if "request" in parts:
                print(f"{label}: per request", flush=True)
                rounds = 1 if args.quick else 5
                steady = bench.worker(subject, store, "request", BENCH_USERS=users,
                                      BENCH_ROUNDS=rounds, BENCH_TOUCH_INTERVAL=3600)  # fmt: skip
                first = bench.worker(subject, store, "request", BENCH_USERS=users,
                                     BENCH_ROUNDS=rounds, BENCH_FIRST_TOUCH=1)  # fmt: skip
                results["request"][label] = {"steady": steady, "first_touch": first}
                if store != "redis":
                    results["writes"][label] = bench.worker(subject, store, "writes")
            if "sizes" in parts:
                print(f"{label}: sizes", flush=True)
                sizes = redis_sizes if store == "redis" else db_sizes
                results["sizes"][label] = bench.worker(subject, store, "sizes", BENCH_SIZES=sizes)
            saved.write_text(json.dumps(results, indent=2))
        if shutil.which("wrk") and "serve" in parts:
            results["serve"] = {k: v for k, v in results["serve"].items() if k in ("wsgi", "asgi")}
            results["rounds"], results["sqlite_journal"] = args.rounds, args.sqlite_journal
            results["seconds_per_run"] = seconds
            # The Redis backend keeps its sessions on SQLite, so bare SQLite is its baseline.
            blocks = [
                ("sqlite", [("ours", "sqlite", "this package, SQLite"),
                            ("ours", "redis", "this package, Redis (sessions on SQLite)")]),
                ("postgres", [("ours", "postgres", "this package, PostgreSQL")]),
            ]  # fmt: skip
            blocks = [block for block in blocks if block[0] in args.databases.split(",")]
            for control in filter(None, args.controls.split(",")):
                for database, subjects in blocks:
                    if database == "sqlite":
                        subjects.append(CONTROLS[control])
            for server in args.servers.split(","):
                # A run of some blocks replaces their rows and keeps the others'.
                results["serve"].setdefault(server, {}).update(
                    serve_rounds(bench, server, blocks, users, seconds, args.rounds)
                )
                saved.write_text(json.dumps(results, indent=2))
    finally:
        bench.close()
    if args.probe:
        print(probe_summary(Path(args.probe), bench.windows))
    took = round(time.monotonic() - began)
    results["seconds"] = took if earlier is None else [*earlier, took]
    saved.write_text(json.dumps(results, indent=2))
    report = render(results)
    print(report)
    if not args.probe:
        (ROOT / "docs" / "benchmarks.md").write_text(report)
        plot(results)


def probe_summary(directory: Path, windows: list[tuple[str, float, float]]) -> str:
    """Per subject, what its workers' probes (``benchmarks/probe``) recorded while its runs
    were measured: garbage collections by generation, the event loop's lag, and the time
    requests spent in the application."""

    def share(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    workers: dict[str, list[dict[str, Any]]] = {}
    for path in directory.glob("[0-9]*.jsonl"):  # one per worker, named by its pid
        parts = [json.loads(line) for line in path.read_text().splitlines()]
        record = {**parts[-1], **{k: [x for p in parts for x in p[k]]
                                  for k in ("gc", "lag", "requests", "cpu")}}  # fmt: skip
        workers.setdefault(record["label"], []).append(record)
    lines = []
    for label, records in workers.items():
        spans = [(a, b) for name, a, b in windows if name == label]
        seconds = sum(b - a for a, b in spans) or 1.0

        def measured(t: float, spans: list[tuple[float, float]] = spans) -> bool:
            return any(a <= t <= b for a, b in spans)

        pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        lag: list[float] = []
        app: list[float] = []
        busy = served = 0.0  # CPU seconds and requests between samples inside the runs
        for record in records:
            for a, b in spans:
                inside = [(t, used) for t, used in record["cpu"] if a <= t <= b]
                if len(inside) > 1:
                    busy += inside[-1][1] - inside[0][1]
                    served += sum(
                        1 for t, _ in record["requests"] if inside[0][0] <= t < inside[-1][0]
                    )
            for t, generation, pause in record["gc"]:
                if measured(t):
                    pauses[generation].append(pause * 1e3)
            lag += [late * 1e3 for t, late in record["lag"] if measured(t)]
            app += [spent * 1e3 for t, spent in record["requests"] if measured(t)]
        lines.append(f"{label}: {len(records)} workers, {seconds:.0f} s measured, "
                     f"{len(app) / seconds:.0f} requests/s, objects "
                     + ", ".join(f"{r['objects']:,}" for r in records))  # fmt: skip
        for generation, found in pauses.items():
            lines.append(f"  collections of generation {generation}: "
                         f"{len(found) / seconds:.1f}/s, mean {statistics.fmean(found or [0]):.2f} "
                         f"ms, max {max(found or [0]):.1f} ms, {sum(found) / seconds:.1f} ms/s")  # fmt: skip
        if lag:
            lines.append(f"  event-loop lag: p50 {share(lag, .5):.2f}, p99 {share(lag, .99):.2f},"
                         f" max {max(lag):.1f} ms")  # fmt: skip
        lines.append(f"  in the application: p50 {share(app, .5):.2f}, p99 {share(app, .99):.2f}"
                     f", p99.9 {share(app, .999):.1f} ms")  # fmt: skip
        if served:
            lines.append(f"  CPU per request: {busy / served * 1e3:.2f} ms")
    return "\n".join(lines)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def took_text(seconds: int | list[int]) -> str:
    """How long the command took, or each of the commands: "4,786 s, then 135 s"."""
    return ", then ".join(
        f"{took:,} s" for took in ([seconds] if isinstance(seconds, int) else seconds)
    )


def render(results: dict[str, Any]) -> str:
    machines = results.get("machines", {})
    if len(set(machines.values())) > 1:
        names = {"request": "per request", "sizes": "count and page", "serve": "served runs"}
        machine_line = "Machines: " + "; ".join(
            f"{names[part]}: {name}" for part, name in sorted(machines.items())
        )
    else:
        machine_line = f"Machine: {results['machine']}"
    lines = ["# Benchmarks", "", f"{machine_line}.", "",
             f"Command: `{results['command'].replace(str(ROOT) + '/', '')}`"
             + (f" (took {took_text(results['seconds'])})." if results.get("seconds") else ""), "",
             "## Per request, through Django's WSGI handler",
             "", "Session and authentication middleware, signed-cookie sessions, 1,000 distinct "
             "logged-in users (300 in a quick run), a view that reads `request.user`. Medians over blocks of "
             "1,000 requests alternating with the middleware and without (1 block each in a quick "
             "run, 5 in a full one). *Steady*: each entry was "
             "written moments ago. *First touch*: the process forgets what it wrote before each request, so every request writes at once "
             "(the peers write on every request anyway). *Middleware µs* is the time spent in the "
             "middleware itself (the view and the middleware below it excluded), median of blocks; "
             "*end-to-end overhead* compares whole requests with and without it, and is as noisy "
             "as a 2-core machine makes a ~1 ms request.", "",
             "| subject | steady: middleware µs | first touch: middleware µs | steady: end-to-end overhead µs | first touch: end-to-end overhead µs | SQL / first touch | Redis commands / first touch |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for label, row in results["request"].items():
        steady, first = row["steady"], row["first_touch"]
        lines.append(f"| {label} | {steady['middleware_us']:.1f} | {first['middleware_us']:.1f} | "
                     f"{steady['overhead_us']:.0f} | {first['overhead_us']:.0f} | "
                     f"{first['sql_per_request']:.2f} | {first['redis_per_request']:.2f} |")  # fmt: skip
    lines += ["", "Redis commands count those run inside a script: this package's touch is one "
              "`EVALSHA` round trip carrying 13 commands for a user with a session (2 more once a day per user: the "
              "HyperLogLogs of history).", "",
              "## Count and a page of 100 active users", "",
              "| subject | active entries | count ms | page of 100 ms | bytes per entry (Redis) / row (PostgreSQL) |",
              "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for label, rows in results["sizes"].items():
        for row in rows:
            size = row.get("bytes_per_entry") or row.get("bytes_per_row") or ""
            page = f"{row['page_ms']:.2f}" + (
                " (all, no paging)" if "django-active" in label else ""
            )
            lines.append(f"| {label} | {row['size']:,} | {row['count_ms']:.2f} | {page} | {size} |")
    if results["writes"]:
        lines += ["", "## Writes to the database for 1,000 requests of one user", "",
                  "| subject | INSERT/UPDATE statements |", "| --- | ---: |"]  # fmt: skip
        for label, row in results["writes"].items():
            lines.append(f"| {label} | {row['write_statements']} |")
    servers = {"wsgi": "gunicorn, 2 sync workers (WSGI)",
               "asgi": "gunicorn, 2 uvicorn workers (ASGI)"}  # fmt: skip
    for server, rows in results["serve"].items():
        if server not in servers:
            continue
        longer = sorted({(row.get("baseline", label).split(", ", 1)[1], row["seconds_per_run"])
                         for label, row in rows.items()
                         if row.get("seconds_per_run", results.get("seconds_per_run"))
                         != results.get("seconds_per_run")})  # fmt: skip
        starts = {row["baseline"].split(", ", 1)[1]: row.get("rounds_per_start")
                  for row in rows.values() if "baseline" in row}  # fmt: skip
        if len(set(starts.values())) == 1:
            started = restarts(next(iter(starts.values())))
        else:
            started = "; ".join(f"on {name}, {restarts(n)}" for name, n in starts.items())
        # A run of some blocks keeps the others' rows: each block says how many rounds it ran.
        per_block: dict[str, int] = {}
        for label, row in rows.items():
            if row.get("baseline", label) != label:  # a subject's row: one run a round
                name = row["baseline"].split(", ", 1)[1]
                per_block[name] = max(per_block.get(name, 0), len(row["runs"]))
        if len(set(per_block.values())) <= 1:
            rounds = f"{next(iter(per_block.values()), results.get('rounds', 1))} round(s)"
        else:
            rounds = "rounds (" + ", ".join(f"{n} on {name}" for name, n in per_block.items()) + ")"
        lines += ["", f"## {servers[server]}, under wrk ({WRK_THREADS} threads, {CONNECTIONS} connections), {results.get('users', 1000):,} users", "",
                  "Sessions in the database. The servers of a database (bare Django and the "
                  "subjects on it) run side by side, started and warmed together (every user "
                  "requested a few times), and are measured one at a time while the others idle; "
                  + started + ": " +
                  f"{rounds} of {results.get('seconds_per_run', 10)} s "
                  f"runs, each after {LEAD_IN} s of load not measured, bare Django before every "
                  "other run and once more before the servers stop (bare, A, bare, B, bare, B, bare, A, …; the "
                  "peers once each, after the rounds"
                  + "".join(f"; on {name}, {length} s runs, long enough for 1.5 requests per "
                            "user at bare Django's rate, so that the count after a run can tell "
                            "a lost touch" for name, length in longer)
                  + "). *requests/s* and *p99*: medians of a "
                  "subject's runs; *vs bare*: the median of each run's ratio to the mean of the "
                  "two bare runs right before and after it, seconds away, and in brackets the "
                  "quartiles of those ratios (the middle half of the runs). *Distinct active users "
                  "after*: read from another process after each run and once more after the "
                  "server stopped, and checked against the users whose requests the run and its "
                  "lead-in got a response to (the page names its user; in brackets where a run "
                  "did not reach every user). Under ASGI a connection stays with the worker that accepted "
                  "it: a run whose connections landed unevenly (a worker with fewer than "
                  f"{CONNECTIONS // 2 - UNEVEN_SLACK} of the {CONNECTIONS}, seen a second in) "
                  f"is measured again, at most {UNEVEN_ATTEMPTS - 1} times more. "
                  f"SQLite journal mode: {results.get('sqlite_journal') or 'delete (SQLite default)'}; "
                  "each SQLite site's file has one connection held open by the harness."
                  + (" *Again*: a second bare Django server, measured as the subjects are: the "
                     "harness's own spread." if CONTROLS["again"][2] in rows else "")
                  + (" *This package's tables, no middleware*: Django with this package "
                     "installed and migrated, its middleware not in the stack (under ASGI each "
                     "request opens a connection, and SQLite reads the file's whole schema "
                     "anew)." if CONTROLS["tables"][2] in rows else ""), "",
                  "| subject | requests/s | vs bare | p99 ms | p99 vs bare | errors | distinct active users after |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for label, row in rows.items():
            base = rows.get(row.get("baseline", ""), row)
            rps_ratio = row.get("rps_vs_bare", row["rps"] / base["rps"])
            p99_ratio = row.get("p99_vs_bare", row["p99_ms"] / base["p99_ms"])
            rps_spread = p99_spread = ""
            if "rps_vs_bare_quartiles" in row:
                low, high = row["rps_vs_bare_quartiles"]
                rps_spread = f" ({low:.0%} to {high:.0%})"
                low, high = row["p99_vs_bare_quartiles"]
                p99_spread = f" ({low:.2f} to {high:.2f}x)"
            lines.append(f"| {label} | {row['rps']:.0f} | {rps_ratio:.0%}{rps_spread} | "
                         f"{row['p99_ms']:.1f} | {p99_ratio:.2f}x{p99_spread} | "
                         f"{row['errors']} | {active_after(row, results['users'])} |")  # fmt: skip
    lines += ["", "![Count latency against active entries](benchmarks-count.png)", ""]
    targets = HERE / "targets.md"  # the reading of the figures, kept by hand
    if targets.exists():
        lines += [targets.read_text()]
    return "\n".join(lines)


def restarts(rounds: int | None) -> str:
    """How often a block's servers were started afresh, for the served tables' legend."""
    if not rounds:
        return "each started once"
    return f"stopped and started afresh every {rounds} rounds (a started server keeps a speed of its own)"


def active_after(row: dict[str, Any], users: int) -> str:
    text = str(row.get("active_after", ""))
    if "answered_before" in row:
        if row["answered_before"] != f"{users:,}":
            text += f" ({row['answered_before']} answered)"
        if row["answered_not_counted"] > 0:
            text += f", up to {row['answered_not_counted']} short of the users answered"
    return text


def plot(results: dict[str, Any]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label, rows in results["sizes"].items():
        axes.plot([r["size"] for r in rows], [r["count_ms"] for r in rows], marker="o", label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("active entries")
    axes.set_ylabel("count, ms (median)")
    axes.set_title("Counting active users")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(ROOT / "docs" / "benchmarks-count.png", dpi=110)


if __name__ == "__main__":
    main()
