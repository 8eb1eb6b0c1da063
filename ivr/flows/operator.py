"""Option 0: ring the protocol desk; nobody answers, the caller leaves a message."""

from __future__ import annotations

from ivr.call import Call
from ivr.flows.messages import leave_message
from ivr.services import Services


async def connect(call: Call, services: Services) -> bool:
    call.enter("operator")
    settings = services.settings
    await call.play("operator.connecting")
    result = await call.dial(list(settings.operator_dial), settings.operator_ring_seconds, purpose="operator")
    if result.status == "ANSWER":
        call.outcome = "transferred"
        return True
    await call.play("operator.unavailable")
    return await leave_message(call, services)
