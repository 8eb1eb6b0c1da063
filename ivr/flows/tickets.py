"""Reading a ticket number back to the caller, digit by digit."""

from __future__ import annotations

from ivr.call import Call


def digit_prompts(number: str) -> list[str]:
    return [f"digit.{d}" for d in number if d.isdigit()]


async def read_back_number(call: Call, number: str, *, offers: int = 3) -> None:
    """Say the number twice; the caller may press 9 to hear it again."""
    call.enter("ticket-number")
    await call.play("ticket.number_is", *digit_prompts(number))
    await call.play("ticket.number_again", *digit_prompts(number))
    for _ in range(offers):
        answer = await call.read_digits("ticket.press_9", max_digits=1, timeout=5, purpose="repeat-number")
        if answer.digits != "9":
            return
        await call.play("ticket.number_is", *digit_prompts(number))
