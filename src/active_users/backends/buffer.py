"""Write-behind: refreshes wait in memory and go to the store together, off the request path.

A request that refreshes a presence this process wrote or buffered lately puts it here
instead of writing it; a daemon thread writes whatever is here every ``ACTIVE_USERS_FLUSH_INTERVAL``
seconds with one ``backend.touch_many()`` (one transaction on the database, one round trip on
Redis), however many people it holds. Each presence is held once, with its latest time.
On the database, a row that another process moved less than ``conf.refresh_step`` before this
batch's time is left as it is: N processes refreshing one person write it about twice per
refresh interval rather than N times (fewer row versions and index entries).

- Full (``ACTIVE_USERS_BUFFER_SIZE`` presences): a refresh of a presence not already held is
  refused with one warning; the tracker then tries again on that presence's next request.
- The store fails: the batch goes back into the buffer (newer times win) and is written by a
  later flush once the circuit breaker lets calls through again. Nothing raises on a request.
- A crash loses at most the refreshes of the last flush interval; people refreshed more
  often than ``KEY_EXPIRE`` stay counted, and anyone's next request refreshes them.
- Reads in this process (``health.reading``) flush first; the buffer is flushed at exit
  (``atexit``), and a forked child starts with an empty buffer and no thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.core.signals import setting_changed
from django.db import connections

from active_users.backends import get_backend
from active_users.backends.base import Presence
from active_users.backends.health import breaker
from active_users.conf import conf

logger = logging.getLogger("active_users")

# The thread ends after this long with nothing to write; the next refresh starts it again.
IDLE_EXIT = 60.0


class WriteBehind:
    def __init__(self) -> None:
        #: Called in the writer thread after each interval (the last-seen flush, the history
        #: sampler); they must not raise.
        self.after_flush: list[Callable[[], None]] = []
        #: Called when the store was cleared (the tracker forgets what it wrote).
        self.on_clear: list[Callable[[], None]] = []
        #: Tests switch the thread off and flush themselves.
        self.background = True
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._pending: dict[Presence, float] = {}
        self._size: int | None = None  # conf.BUFFER_SIZE, read once (a missing setting is slow)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._refusing = False

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, presence: Presence, when: float) -> bool:
        """Hold ``presence`` as active at ``when``; False when the buffer is full."""
        size = self._size
        if size is None:
            size = self._size = conf.BUFFER_SIZE
        with self._lock:
            pending = self._pending
            if presence not in pending and len(pending) >= size:
                if not self._refusing:
                    self._refusing = True
                    logger.warning(
                        "active_users: the write-behind buffer is full (%d); refreshes wait "
                        "for the next flush",
                        len(pending),
                    )
                return False
            pending[presence] = when
            if self._thread is None and self.background:
                self._start()
        return True

    def discard(self, keep: Callable[[Presence], bool]) -> None:
        """Drop what is held for which ``keep`` is false (a session that logged out)."""
        with self._lock:
            self._pending = {p: t for p, t in self._pending.items() if keep(p)}

    def cleared(self) -> None:
        """The store was emptied: drop what is held, and tell the write path."""
        with self._lock:
            self._pending = {}
        for forget in self.on_clear:
            forget()

    def flush(self, timeout: float = -1) -> bool:
        """Write everything held now; False if the store failed (the batch is kept)."""
        if not self._pending:
            return True
        if not self._flushing.acquire(timeout=timeout):
            return False
        try:
            with self._lock:
                batch, self._pending = self._pending, {}
                self._refusing = False
            if not batch:
                return True
            if not breaker.allows():
                self._requeue(batch)
                return False
            try:
                get_backend().touch_many(list(batch.items()), min_step=conf.refresh_step)
            except Exception as exc:
                breaker.failed(exc)
                self._requeue(batch)
                _drop_broken_connection()
                return False
            breaker.succeeded()
            return True
        finally:
            self._flushing.release()

    async def aflush(self) -> bool:
        if not self._pending:
            return True
        return await sync_to_async(self.flush)()

    def _requeue(self, batch: dict[Presence, float]) -> None:
        with self._lock:
            pending = self._pending
            for presence, when in batch.items():
                newer = pending.get(presence)
                if newer is None and len(pending) >= conf.BUFFER_SIZE:
                    continue
                if newer is None or newer < when:
                    pending[presence] = when

    def _start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="active-users-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        idle = 0.0
        try:
            while True:
                interval = conf.FLUSH_INTERVAL
                if self._stop.wait(interval):
                    return
                busy = bool(self._pending)
                if busy:
                    self.flush()
                for job in self.after_flush:
                    try:
                        job()
                    except Exception:
                        logger.warning("active_users: %r failed", job, exc_info=True)
                idle = 0.0 if busy else idle + interval
                if idle >= IDLE_EXIT:
                    with self._lock:
                        if not self._pending:
                            return
                    idle = 0.0
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
            connections.close_all()  # this thread's connections only

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the thread and write what is held (at exit)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        try:
            self.flush(timeout=timeout)
        except Exception:
            logger.warning("active_users: could not write the buffer at exit", exc_info=True)

    def _after_fork(self) -> None:
        self._reset()


def _drop_broken_connection() -> None:
    """After a database error, let the next flush reconnect instead of reusing a broken
    connection (Redis clients reconnect by themselves)."""
    try:
        connection = connections[conf.DATABASE]
        if connection.connection is not None and not connection.is_usable():
            connection.close()
    except Exception:
        pass


buffer = WriteBehind()
atexit.register(buffer.shutdown)
os.register_at_fork(after_in_child=buffer._after_fork)


def _setting_changed(*, setting: str, **kwargs: object) -> None:
    # What is held belongs to the store it was meant for.
    if setting.startswith("ACTIVE_USERS_") or setting in {"CACHES", "DATABASES"}:
        with buffer._lock:
            buffer._pending = {}
            buffer._size = None


setting_changed.connect(_setting_changed)
