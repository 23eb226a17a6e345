"""A bounded, thread-safe cache of computed figures, keyed on what they were computed from.

Pages that refresh on a timer (the dashboard) or on every rerun (the review queue) ask for the
same figures over and over while nothing changed. A :class:`StampedCache` keeps one value per
*slot* (e.g. "agreement report of dataset 3 in database X") together with the *stamp* it was
computed from — values read from the database, such as the dataset's newest submission id
(:mod:`services.core.work_stamp`). A call with the same stamp returns the kept value; a new stamp
recomputes it. Because the stamp comes from the database, every app process behind a load
balancer sees new work at its next call, whichever process stored it.

Concurrent callers of one slot and stamp compute it once: the others wait for that result
(five open dashboards refreshing together cost one computation).

Values are shared between callers: they are frozen dataclasses and lists nobody mutates.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["StampedCache"]


class StampedCache:
    """At most ``max_slots`` slots, least recently used dropped first.

    Args:
        max_slots: how many (function, dataset, arguments) results to keep.
    """

    def __init__(self, max_slots: int = 64) -> None:
        self.max_slots = max(1, max_slots)
        self._values: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[Hashable, tuple[Hashable, threading.Lock]] = {}
        self.computed = 0  # how many times a value was computed (for tests and benchmarks)

    def get(self, slot: Hashable, stamp: Hashable, compute: Callable[[], T]) -> T:
        """The value of ``slot`` computed at ``stamp``: kept, or computed now (once per stamp)."""
        while True:
            with self._lock:
                kept = self._values.get(slot)
                if kept is not None and kept[0] == stamp:
                    self._values.move_to_end(slot)
                    return kept[1]
                running = self._computing.get(slot)
                if running is None or running[0] != stamp:
                    gate = threading.Lock()
                    gate.acquire()
                    self._computing[slot] = (stamp, gate)
                    break
            # Someone computes this slot at this stamp: wait for them, then read their result
            # (or compute it ourselves if they failed).
            with running[1]:
                pass
        try:
            value = compute()
            with self._lock:
                self.computed += 1
                self._values[slot] = (stamp, value)
                self._values.move_to_end(slot)
                while len(self._values) > self.max_slots:
                    self._values.popitem(last=False)
            return value
        finally:
            with self._lock:
                if self._computing.get(slot, (None, None))[1] is gate:
                    del self._computing[slot]
            gate.release()

    def clear(self) -> None:
        """Forget every kept value."""
        with self._lock:
            self._values.clear()
