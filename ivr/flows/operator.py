"""Option 0: ring the protocol desk; nobody answers, the caller leaves a message.

The desk is a group of dial strings (``operator_dial``) rung at once for
``operator_ring_seconds``. No answer, busy, an unreachable desk, or a call
outside office hours leads to a voice message attached to the call's ticket,
whose number is read back.
"""

from __future__ import annotations

from ivr.call import Call
from ivr.flows.messages import leave_message
from ivr.services import Services


async def menu_action(call: Call, services: Services) -> bool:
    """The menu's "operator": the desk in office hours, a message otherwise."""
    call.enter("operator")
    status = await services.office_status()
    if not status.open:
        call.record.add("operator", available=False, reason="outside-hours")
        await call.play("operator.closed")
        return await leave_message(call, services)
    return await connect(call, services)


async def connect(call: Call, services: Services) -> bool:
    """Ring the desk whatever the hour (the emergency fallback uses this)."""
    call.enter("operator")
    settings = services.settings
    await call.play("operator.connecting")
    result = await call.dial(list(settings.operator_dial), settings.operator_ring_seconds, purpose="operator")
    if result.status == "ANSWER":
        call.outcome = "transferred"
        return True
    await call.play("operator.busy" if result.status == "BUSY" else "operator.unavailable")
    return await leave_message(call, services)
