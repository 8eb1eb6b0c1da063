"""The in-process hook for live news: calls starting and ending in this process.

The call handler publishes; the web app's live event hub (``ivr.web.events``)
listens and tells the browsers. Publishing is a plain function call that never
blocks and never raises: a call must not wait for, or fail because of, a board.
Tickets and alarms do not pass through here: they are written to the database
by whichever ``ivr serve`` process handled them, and the hub finds them there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.call import Call

log = logging.getLogger("ivr.events")


@dataclass(frozen=True)
class CallStarted:
    """A FastAGI session began running a flow; ``call`` stays live until ``CallEnded``."""

    uniqueid: str
    call: Call


@dataclass(frozen=True)
class CallEnded:
    uniqueid: str
    outcome: str
    step: str


LiveEvent = CallStarted | CallEnded
Listener = Callable[[LiveEvent], None]


class EventBus:
    """Synchronous fan-out to listeners that must be quick (put in a queue, at most)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Add ``listener``; returns the function that removes it."""
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    def publish(self, event: LiveEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not reach the call
                log.exception("live event listener failed on %s", type(event).__name__)
