"""Structured logs: with ``IVR_LOG_JSON`` every line is one JSON object, and
every line a call causes (protocol traffic, start and end, the database
trouble it meets) carries that call's Asterisk uniqueid, even with two calls
at once. Lines of background work (the spool, the prerenderer) carry "-"."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import calls_settled, set_office_override
from screening import database_down

from ivr.logs import setup_logging
from ivr.simulator import place_call

#: Loggers that only ever speak for one call.
CALL_LOGGERS = ("ivr.agi", "ivr.calls", "ivr.call", "ivr.flows")


@pytest.fixture
def json_logs() -> Iterator[Any]:
    """``ivr serve``'s logging set-up (JSON lines, protocol traffic at debug)
    writing into a buffer; then the root logger as pytest had it. Returns the
    function that takes the lines written so far."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    agi = logging.getLogger("ivr.agi")
    setup_logging("INFO", json_lines=True)
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    agi.setLevel(logging.DEBUG)

    def take() -> list[dict[str, Any]]:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return [json.loads(line) for line in text.splitlines()]

    try:
        yield take
    finally:
        agi.setLevel(logging.NOTSET)
        root.handlers[:], root.level = handlers, level


async def test_every_line_of_a_call_carries_its_uniqueid(runtime: Any, json_logs: Any):
    await set_office_override(runtime, "closed")
    json_logs()  # start-up lines are not of a call
    port = runtime.agi.bound_port
    with database_down(runtime.engine):  # so the calls log warnings too
        records = await asyncio.gather(
            place_call("127.0.0.1", port, caller_id="081234567890", keys=["5"]),
            place_call("127.0.0.1", port, caller_id="085712345678", keys=["h"]),
        )
        await calls_settled(runtime)
    lines = json_logs()

    assert all(set(line) >= {"time", "level", "logger", "uniqueid", "message"} for line in lines)
    of_calls = [line for line in lines if line["logger"].startswith(CALL_LOGGERS)]
    assert {line["uniqueid"] for line in of_calls} == {record.uniqueid for record in records}
    for record in records:
        mine = [line for line in lines if line["uniqueid"] == record.uniqueid]
        messages = [line["message"] for line in mine]
        assert messages[0].startswith("caller directory unavailable")  # before the call even starts
        assert any(m.startswith("call started") for m in messages)
        assert any(m.startswith("call ended") for m in messages)
        # Each command the server sent is a debug line of this call, and no other's.
        assert sum(m.startswith("agi >> ") for m in messages) == len(record.commands)
        assert any(line["level"] == "WARNING" and line["logger"] == "ivr.records" for line in mine), messages
    background = [line for line in lines if line["uniqueid"] == "-"]
    assert not [line for line in background if line["logger"].startswith(CALL_LOGGERS)]
