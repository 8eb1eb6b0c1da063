"""The actions a menu option can lead to, by name (the names menus.toml uses).

An action returns True when the call is over, False to go back to the menu.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ivr.call import Call
from ivr.flows import agenda, messages, operator, submit, track
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
        "operator": operator.menu_action,
        "message": messages.leave_message,
        "emergency": emergency,
        "agenda": agenda.menu_action,
        "submit": submit.menu_action,
        "track": track.menu_action,
    }
