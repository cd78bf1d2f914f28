"""What the workers of a served run do with their time: ``run.py --probe DIR``.

``run.py`` puts this directory on ``PYTHONPATH`` for the servers it starts, so every Python
process of theirs imports this module first. A gunicorn worker then records each garbage
collection (its generation and pause), each request's time inside the application, its own
CPU time every hundred requests (or loop wake-ups) and, under ASGI, the event loop's lag (a
task that sleeps 2 ms at a time notes how late it wakes), and appends what is new to
``DIR/<pid>.jsonl`` every few seconds (a uvicorn worker stopped by ``SIGTERM`` ends without
exit handlers) and at exit. ``run.py`` reads them back for the measured runs only
(``probe_summary``). The probe costs every subject alike; its figures compare subjects, they
are not throughput.
"""

from __future__ import annotations

import os

if os.environ.get("BENCH_PROBE") and os.environ.get("BENCH_WSGI"):
    import atexit
    import gc
    import json
    import time
    from typing import Any

    collections: list[tuple[float, int, float]] = []  # (time, generation, pause s)
    lags: list[tuple[float, float]] = []  # (time, lateness s)
    requests: list[tuple[float, float]] = []  # (time, seconds in the application)
    cpu: list[tuple[float, float]] = []  # (time, the process's CPU seconds so far)
    began: list[float] = [0.0]
    sampler: list[Any] = []

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            collections.append((time.time(), info["generation"], time.perf_counter() - began[0]))

    gc.callbacks.append(on_collection)

    written = {"gc": 0, "lag": 0, "requests": 0, "cpu": 0}  # entries already in the file

    def dump() -> None:
        """Append what was recorded since the last call to this worker's file, one line."""
        if not requests:
            return  # the master, or a worker that served nothing
        found = {"gc": collections, "lag": lags, "requests": requests, "cpu": cpu}
        line = {"label": os.environ.get("BENCH_LABEL", ""), "pid": os.getpid(),
                "objects": len(gc.get_objects())}  # fmt: skip
        for name, entries in found.items():
            line[name], written[name] = entries[written[name] :], len(entries)
        path = os.path.join(os.environ["BENCH_PROBE"], f"{os.getpid()}.jsonl")
        with open(path, "a") as out:
            out.write(json.dumps(line) + "\n")

    atexit.register(dump)

    async def lag_sampler() -> None:
        import asyncio

        last_dump = time.monotonic()
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.002)
            lags.append((time.time(), time.perf_counter() - start - 0.002))
            if len(lags) % 100 == 0:
                cpu.append((time.time(), time.process_time()))
            if time.monotonic() - last_dump > 5:
                dump()
                last_dump = time.monotonic()

    from django.core.handlers import asgi, wsgi

    asgi_call, wsgi_call = asgi.ASGIHandler.__call__, wsgi.WSGIHandler.__call__

    async def timed_asgi(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if not sampler:
            import asyncio

            sampler.append(asyncio.get_running_loop().create_task(lag_sampler()))
        start, wall = time.perf_counter(), time.time()
        try:
            await asgi_call(self, scope, receive, send)
        finally:
            requests.append((wall, time.perf_counter() - start))

    def timed_wsgi(self: Any, environ: Any, start_response: Any) -> Any:
        start, wall = time.perf_counter(), time.time()
        try:
            return wsgi_call(self, environ, start_response)
        finally:
            requests.append((wall, time.perf_counter() - start))
            if len(requests) % 100 == 0:
                cpu.append((time.time(), time.process_time()))
            if len(requests) % 2000 == 0:
                dump()

    asgi.ASGIHandler.__call__ = timed_asgi  # type: ignore[method-assign]
    wsgi.WSGIHandler.__call__ = timed_wsgi  # type: ignore[method-assign]
