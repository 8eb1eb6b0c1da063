"""The emergency number, and option 9 of the main menu.

Until the duty-roster routing lands, an emergency rings the protocol desk and
is flagged urgent on its ticket; nobody answering leads to a message.
"""

from __future__ import annotations

from ivr.call import Call
from ivr.flows import operator
from ivr.services import Services


async def route_emergency(call: Call, services: Services) -> None:
    call.enter("emergency")
    call.record.classify("emergency", priority="urgent")
    await operator.connect(call, services)


async def run(call: Call, services: Services) -> None:
    await call.answer()
    await route_emergency(call, services)
    await call.hangup()
