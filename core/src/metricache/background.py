"""A daemon thread that runs a step, waits the time the step asks for, and runs it again.

The syncer and the export coordinator both run this way. :class:`BackgroundLoop`
owns the thread's life cycle: start (a no-op when running), stop (wait for the step
in progress, then an optional final step, within a timeout), and what happens across
``fork()``: the thread does not exist in a child, so the owner calls
:meth:`BackgroundLoop.after_fork` and starts it again if it ran in the parent.
A step that raises is logged and the loop goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["BackgroundLoop"]

log = logging.getLogger("metricache")


class BackgroundLoop:
    """Run ``step`` in a daemon thread named ``name``.

    ``step()`` returns the seconds to wait before it runs again. ``first_delay()``
    (default: none) is waited before the first step. ``final()`` runs once when the
    loop is stopped (after the step in progress). ``on_error`` is how long to wait
    after a step that raised.
    """

    def __init__(
        self,
        name: str,
        step: Callable[[], float],
        *,
        first_delay: Callable[[], float] | None = None,
        final: Callable[[], object] | None = None,
        on_error: float = 1.0,
    ) -> None:
        self.name = name
        self._step = step
        self._first_delay = first_delay
        self._final = final
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def in_loop(self) -> bool:
        """Whether the caller is the loop's own thread."""
        return self._thread is threading.current_thread()

    def start(self) -> None:
        """Start the thread (a no-op if it runs already)."""
        if self.running:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Ask the loop to stop and wait at most ``timeout`` seconds.

        Returns True when the thread finished (its final step included) in time, or
        was not running; False when it is still running.
        """
        thread = self._thread
        self._stop.set()
        if thread is None or thread is threading.current_thread():
            self._thread = None
            return True
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    def after_fork(self) -> bool:
        """Forget the parent's thread in a forked child; return whether it had been started."""
        started = self._thread is not None
        self._thread = None
        self._stop = threading.Event()
        return started

    def _run(self) -> None:
        stop = self._stop
        delay = self._first_delay() if self._first_delay is not None else 0.0
        while not stop.wait(max(delay, 0.0)):
            try:
                delay = self._step()
            except Exception:
                log.exception("%s: a step failed; trying again", self.name)
                delay = self._on_error
        if self._final is not None:
            try:
                self._final()
            except Exception:
                log.exception("%s: the final step failed", self.name)
