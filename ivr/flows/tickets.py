"""Reading a ticket number back to the caller, digit by digit."""

from __future__ import annotations

from ivr.call import Call


async def read_back_number(call: Call, number: str, *, offers: int = 3) -> None:
    """Say the number twice; the caller may press 9 to hear it again."""
    call.enter("ticket-number")
    call.served = True  # the ticket exists; hanging up now is not abandoning it
    await call.say_digits(number, before="ticket.number_is")
    await call.say_digits(number, before="ticket.number_again")
    for _ in range(offers):
        answer = await call.read_digits("ticket.press_9", max_digits=1, timeout=5, purpose="repeat-number")
        if answer.digits != "9":
            return
        await call.say_digits(number, before="ticket.number_is")
