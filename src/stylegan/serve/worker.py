"""One render thread for every tab: jobs queue by client, and a client's newer job replaces its older waiting one.

Dragging a slider sends a request per step; only the newest per client is rendered, so a tab never waits behind
its own stale frames, and tabs take turns (first come, first served by client). Replaced jobs resolve to
`SUPERSEDED` without running.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

SUPERSEDED = object()  # the result of a job that a newer one of its client replaced before it ran


class RenderWorker:
    """A daemon thread running submitted callables one at a time, coalesced per client key."""

    def __init__(self) -> None:
        self._pending: OrderedDict[str, tuple[Callable[[], Any], Future]] = OrderedDict()
        self._cond = threading.Condition()
        self._stopped = False
        self.superseded = 0  # jobs dropped because a newer one of the same client came first
        self.rendered = 0
        self._thread = threading.Thread(target=self._run, name="stylegan-render", daemon=True)
        self._thread.start()

    def submit(self, client: str, job: Callable[[], Any]) -> Future:
        """Queue `job` for `client`, replacing (resolving to SUPERSEDED) a job of that client that has not started."""
        future: Future = Future()
        with self._cond:
            if self._stopped:
                raise RuntimeError("the render worker has stopped")
            old = self._pending.pop(client, None)
            if old is not None:
                old[1].set_result(SUPERSEDED)
                self.superseded += 1
            self._pending[client] = (job, future)
            self._cond.notify()
        return future

    def call(self, job: Callable[[], Any]) -> Any:
        """Run `job` on the worker (after the jobs already queued) and wait for its result."""
        return self.submit(f"call-{id(job)}", job).result()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            for _, future in self._pending.values():
                future.set_result(SUPERSEDED)
            self._pending.clear()
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                _, (job, future) = self._pending.popitem(last=False)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
                self.rendered += 1
            except BaseException as e:  # noqa: BLE001 -- delivered to the waiting request, the worker keeps running
                future.set_exception(e)
