"""Junk on the FastAGI socket: the server drops the bad peer quietly, keeps its
event loop free, records what it can, and goes on serving well-formed calls."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from ivr.simulator import CallSetup, SimulatedAsterisk, place_call
from ivr.storage import models


async def _good_call(runtime: Any) -> None:
    record = await place_call("127.0.0.1", runtime.agi.bound_port, caller_id="081234567890", keys=["5", "5", "5"])
    assert record.result == "OK", record.render()


async def _open(runtime: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", runtime.agi.bound_port)


async def _sessions_finished(runtime: Any) -> None:
    """Wait for the server's session tasks (their ``finally`` writes the record)."""
    if runtime.agi.active:
        await asyncio.wait(set(runtime.agi.active), timeout=10)


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(10):
        return await reader.read()


JUNK = {
    "EOF in the middle of the environment": b"agi_network: yes\nagi_network_script: main\n",
    "a line without newline, then EOF": b"agi_network: yes\nagi_network_scr",
    "binary garbage": bytes(range(256)) * 4,
    "a 1 MiB environment": b"agi_network: yes\n" + b"agi_x: " + b"A" * (1024 * 1024) + b"\n\n",
    "too many lines": b"".join(b"agi_arg_%d: x\n" % i for i in range(5000)) + b"\n",
}


@pytest.mark.parametrize("junk", JUNK.values(), ids=JUNK.keys())
async def test_bad_environment_is_dropped_and_the_server_keeps_serving(runtime: Any, junk: bytes):
    reader, writer = await _open(runtime)
    # A concurrent well-formed call runs while the junk arrives.
    good = asyncio.create_task(_good_call(runtime))
    try:
        writer.write(junk)
        await writer.drain()
        writer.write_eof()
        assert await _until_closed(reader) == b""  # dropped, nothing sent back
    except ConnectionResetError:
        pass  # dropped while we were still sending: as good
    writer.close()
    await good


async def test_silent_peer_times_out_of_the_handshake(runtime: Any):
    runtime.agi.header_timeout = 0.3
    reader, writer = await _open(runtime)
    writer.write(b"agi_network: yes\n")
    await writer.drain()
    assert await _until_closed(reader) == b""
    writer.close()


async def test_non_utf8_caller_name_is_recorded_not_fatal(runtime: Any):
    simulator = SimulatedAsterisk(CallSetup(caller_id="081234567890", caller_name="Cafe"), keys=["5", "5", "5"])
    # The environment carries a Latin-1 byte (0xE9) that is not UTF-8.
    environment = simulator.environment().replace(b"Cafe", b"Caf\xe9")
    assert b"Caf\xe9" in environment
    reader, writer = await _open(runtime)
    writer.write(environment)
    await writer.drain()
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(await simulator.execute(line))
        await writer.drain()
    writer.close()
    await _sessions_finished(runtime)
    async with runtime.sessions() as session:
        call = await session.scalar(select(models.Call).where(models.Call.uniqueid == simulator.uniqueid))
    assert call is not None and call.outcome == "completed"
    assert call.caller_name == "Caf\ufffd"


async def _answer_the_first_command_with(runtime: Any, reply: bytes) -> tuple[models.Call, list[str]]:
    """Place a call, answer its ANSWER with ``reply``, and expect the flow to
    tell the dialplan IVR_RESULT=FAILED and close; returns the stored call
    and its timeline's kinds."""
    simulator = SimulatedAsterisk(CallSetup(caller_id="081234567890"), keys=[])
    reader, writer = await _open(runtime)
    writer.write(simulator.environment())
    await writer.drain()
    assert await reader.readline() == b"ANSWER\n"
    writer.write(reply)
    await writer.drain()
    assert await reader.readline() == b'SET VARIABLE "IVR_RESULT" "FAILED"\n'
    writer.write(b"200 result=1\n")
    writer.write_eof()
    await _until_closed(reader)
    writer.close()
    await _sessions_finished(runtime)
    async with runtime.sessions() as session:
        call = await session.scalar(select(models.Call).where(models.Call.uniqueid == simulator.uniqueid))
        assert call is not None
        kinds = list(
            await session.scalars(select(models.TicketEvent.kind).where(models.TicketEvent.call_id == call.id))
        )
    return call, kinds


async def test_usage_error_in_the_middle_of_a_flow_fails_that_call_politely(runtime: Any):
    """Asterisk answers our first command with a 520 block: the flow fails, the
    dialplan is told IVR_RESULT=FAILED, the record says so, and the next call works."""
    call, _ = await _answer_the_first_command_with(
        runtime,
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Answers channel if not already in answer state.\n\n"
        b"520 End of proper usage.\n",
    )
    assert call.outcome == "failed" and call.outcome_step == "greeting"
    await _good_call(runtime)


async def test_a_reply_out_of_protocol_fails_the_call_without_a_traceback(runtime: Any, caplog: Any):
    """A peer that answers junk is misbehaving, not our bug: one ERROR line
    without a traceback, FAILED to the dialplan, and the timeline says so."""
    call, kinds = await _answer_the_first_command_with(runtime, b"garbage\n")
    assert call.outcome == "failed" and call.outcome_step == "greeting" and "error" in kinds
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors if "out of protocol" in r.getMessage()]
    assert all(r.exc_info is None for r in errors)
    await _good_call(runtime)


async def test_too_many_calls_get_failure_so_the_dialplan_apologises(runtime: Any):
    runtime.agi.max_sessions = 1
    reader, writer = await _open(runtime)
    writer.write(SimulatedAsterisk(CallSetup(caller_id="081234567890"), keys=[]).environment())
    await writer.drain()
    assert await reader.readline() == b"ANSWER\n"  # the first call is being served
    second_reader, second_writer = await _open(runtime)
    assert await _until_closed(second_reader) == b"failure\n"
    second_writer.close()
    writer.close()


async def test_shutdown_lets_active_calls_finish_and_refuses_new_ones(runtime: Any):
    in_menu = asyncio.Event()

    async def caller(prompt: object) -> str:
        in_menu.set()  # the server is serving the call: now shut it down
        return "5"

    call = asyncio.create_task(
        place_call("127.0.0.1", runtime.agi.bound_port, caller_id="081234567890", key_source=caller, pace=0.05)
    )
    await asyncio.wait_for(in_menu.wait(), 10)
    port = runtime.agi.bound_port
    await runtime.agi.stop(grace=30)
    record = await call
    assert record.result == "OK"  # the call went on to its goodbye
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
