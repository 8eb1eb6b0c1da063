"""The call center number: identify, greet, and serve the menu the office hours allow."""

from __future__ import annotations

from ivr.call import Call, Say
from ivr.flows.actions import build_actions
from ivr.flows.emergency import route_emergency
from ivr.menus import choose
from ivr.services import Services

ACTIONS = build_actions()


async def run(call: Call, services: Services) -> None:
    call.enter("greeting")
    await call.answer()
    await greet(call)
    status = await services.office_status()
    call.record.add("office", open=status.open, reason=status.reason, holiday=status.holiday_name)
    if status.emergency_only:
        await call.play("office.emergency_only")
        await route_emergency(call, services)
        return
    if status.open:
        menu = services.menus["main"]
    else:
        await call.play("office.holiday" if status.holiday_name else "office.closed")
        menu = services.menus["after_hours"]
    while True:
        action = await choose(call, menu)
        if await ACTIONS[action](call, services):
            break
    await call.hangup()


def greeting_text(office: str) -> str:
    """The greeting of a registered caller (pre-rendered for every office at start-up)."""
    return f"Selamat datang di Call Center Protokol, rekan dari {office}."


async def greet(call: Call) -> None:
    office = call.caller.office_name
    if office:
        await call.play(Say(greeting_text(office), fallback="greeting.known"))
    else:
        await call.play("greeting.generic")
