"""Work a process does beside its requests, in a daemon thread, one run at a time."""

from __future__ import annotations

import logging
import threading

from django.db import connections

logger = logging.getLogger("active_users")


class BackgroundJob:
    """Subclasses name the thread, say what failed, and implement :meth:`run`. A failure is
    logged as a warning; the thread's database connections are closed when it ends."""

    name = "active-users"
    failure = "active_users: a background job failed"

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.thread.start()

    def run(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        try:
            self.run()
        except Exception:
            logger.warning(self.failure, exc_info=True)
        finally:
            connections.close_all()
