"""Flows: one ``async def run(call, services)`` per FastAGI script.

The registry is built explicitly here (no import side effects, no directory
scans) and rejects duplicate names; the dialplan calls these names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

from ivr.call import Call
from ivr.services import Services

Flow = Callable[[Call, Services], Awaitable[None]]


class FlowRegistry:
    def __init__(self) -> None:
        self._flows: dict[str, Flow] = {}

    def add(self, name: str, flow: Flow) -> None:
        if name in self._flows:
            raise ValueError(f"flow {name!r} registered twice")
        self._flows[name] = flow

    def __getitem__(self, name: str) -> Flow:
        return self._flows[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._flows)

    def items(self) -> list[tuple[str, Flow]]:
        return list(self._flows.items())


def build_registry() -> FlowRegistry:
    from ivr.flows import ack, alert, emergency, main, screen

    registry = FlowRegistry()
    registry.add("main", main.run)
    registry.add("emergency", emergency.run)
    registry.add("screen", screen.run)
    registry.add("ack", ack.run)
    registry.add("alert", alert.run)
    return registry
