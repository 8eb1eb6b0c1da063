"""The actions a menu option can lead to, by name (the names menus.toml uses).

An action returns True when the call is over, False to go back to the menu.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ivr.call import Call
from ivr.flows import agenda, messages, operator
from ivr.services import Services

Action = Callable[[Call, Services], Awaitable[bool]]


async def goodbye(call: Call, services: Services) -> bool:
    call.enter("goodbye")
    await call.play("goodbye")
    return True


async def emergency(call: Call, services: Services) -> bool:
    from ivr.flows.emergency import route_emergency

    await route_emergency(call, services)
    return True


def build_actions() -> dict[str, Action]:
    return {
        "goodbye": goodbye,
        "operator": operator.connect,
        "message": messages.leave_message,
        "emergency": emergency,
        # Until their own flows land, these options reach the protocol desk.
        "agenda": agenda.menu_action,
        "submit": operator.connect,
        "track": operator.connect,
    }
