"""``GET /api/events``: the live stream the board listens to.

A real SSE client (aiohttp reading the stream line by line) against real apps:
calls from the running FastAGI server and from AMI, tickets and alarms found
by polling the shared database (also when another server wrote them), replay
after a reconnect, heartbeats, and clients that leave or cannot keep up.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fake_ami import FakeAMI, event_sample
from helpers import calls_settled
from web_fixtures import TestRuntime, bearer, build_runtime, store_call, web_runtime

from ivr.ami import AMIClient, AMIConfig
from ivr.config import Settings
from ivr.emergency import callbacks
from ivr.simulator import Prompt, place_call
from ivr.storage.database import create_engine
from ivr.storage.tokens import create_token
from ivr.web.app import create_web_app
from ivr.web.events import CLIENT_QUEUE, CLOSED, HUB, EventHub

__all__ = ["web_runtime"]  # fixtures used by name

Client = TestClient[Any, Any]
Event = tuple[str | None, str, dict[str, Any]]


class Stream:
    """One SSE connection: the events read so far, and waiting for more."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.events: list[Event] = []
        self.comments: list[str] = []
        self.retry: int | None = None

    async def _read_block(self) -> None:
        """Read up to the next blank line: an event, a comment or a retry hint."""
        event_id, event_type, data = None, "message", ""
        while True:
            line = (await self.response.content.readline()).decode()
            if line == "":
                raise EOFError("the server ended the stream")
            line = line.rstrip("\n")
            if line == "":
                if data:
                    self.events.append((event_id, event_type, json.loads(data)))
                return
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                self.comments.append(value)
            elif name == "id":
                event_id = value
            elif name == "event":
                event_type = value
            elif name == "data":
                data += value
            elif name == "retry":
                self.retry = int(value)

    async def wait(self, event_type: str, match: Callable[[dict[str, Any]], bool] = lambda _: True) -> Event:
        """The first event of ``event_type`` that ``match``es, read or still to come."""
        async with asyncio.timeout(15):
            checked = 0
            while True:
                for event in self.events[checked:]:
                    if event[1] == event_type and match(event[2]):
                        return event
                checked = len(self.events)
                await self._read_block()

    async def wait_comments(self, text: str, count: int) -> None:
        async with asyncio.timeout(15):
            while self.comments.count(text) < count:
                await self._read_block()

    def types(self) -> list[str]:
        return [event_type for _, event_type, _ in self.events]


async def open_stream(client: Client, token: str, **headers: str) -> Stream:
    response = await client.get("/api/events", headers={**bearer(token), **headers})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return Stream(response)


async def fast_client(aiohttp_client: Any, runtime: Any, **hub_options: float) -> Client:
    """The web app with a hub that polls every 0.1 s, started, its first poll done."""
    app = create_web_app(runtime)
    app[HUB].poll_seconds = 0.1
    for name, value in hub_options.items():
        setattr(app[HUB], name, value)
    client: Client = await aiohttp_client(app)
    await app[HUB].wait_ticks()
    return client


async def make_token(runtime: Any, role: str = "duty") -> str:
    async with runtime.sessions.begin() as session:
        return await create_token(session, role, f"events-{role}")


async def listen_to_one_event_and_leave(client: Client, token: str) -> str:
    """Connect, see one event, disconnect; returns that event's id."""
    stream = await open_stream(client, token)
    await stream.wait("snapshot")
    client.app[HUB].emit("ticket.updated", {"number": "10000001"})
    seen_id, _, _ = await stream.wait("ticket.updated")
    stream.response.close()
    assert seen_id is not None
    return seen_id


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


# -- auth and the document ------------------------------------------------------------------


async def test_the_stream_needs_a_token_and_is_documented(aiohttp_client: Any, web_runtime: TestRuntime) -> None:
    client = await fast_client(aiohttp_client, web_runtime)
    anonymous = await client.get("/api/events")
    assert anonymous.status == 401
    assert (await anonymous.json())["error"]["code"] == "unauthorized"
    assert (await client.get("/api/events", headers=bearer("forged"))).status == 401
    document = await (await client.get("/api/openapi.json")).json()
    operation = document["paths"]["/api/events"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert set(operation["x-roles"]) == {"admin", "staff", "duty"}


# -- calls ----------------------------------------------------------------------------------


async def test_a_simulated_call_appears_ends_and_leaves_a_ticket(aiohttp_client: Any, runtime: Any) -> None:
    client = await fast_client(aiohttp_client, runtime)
    stream = await open_stream(client, await make_token(runtime))
    _, _, snapshot = await stream.wait("snapshot")
    assert snapshot["calls"] == [] and snapshot["resync"] is False
    assert stream.retry == 3000

    release = asyncio.Event()

    async def hold_then_hang_up(prompt: Prompt) -> str:
        await release.wait()  # the caller listens to the menu until the test lets go
        return "h"

    call = asyncio.create_task(
        place_call("127.0.0.1", runtime.agi.bound_port, caller_id="081234567890", key_source=hold_then_hang_up)
    )
    _, _, started = await stream.wait("call.started")
    uniqueid = started["uniqueid"]
    assert started["source"] == "agi" and started["script"] == "main"
    assert started["caller_number"] == "081234567890" and started["caller_e164"] == "+6281234567890"
    assert started["started_at"].endswith("+07:00")
    # A new client is told about the call in its snapshot.
    late = await open_stream(client, await make_token(runtime, "staff"))
    _, _, late_snapshot = await late.wait("snapshot")
    assert [c["uniqueid"] for c in late_snapshot["calls"]] == [uniqueid]
    # So is one of a web app started while the call was already in progress.
    restarted = await fast_client(aiohttp_client, runtime)
    _, _, fresh_snapshot = await (await open_stream(restarted, await make_token(runtime, "admin"))).wait("snapshot")
    assert [c["uniqueid"] for c in fresh_snapshot["calls"]] == [uniqueid]
    # The flow moves on to its menu: the board sees the step change.
    await stream.wait("call.updated", lambda c: c["uniqueid"] == uniqueid and c["step"] != "start")

    release.set()
    record = await call
    _, _, ended = await stream.wait("call.ended")
    assert ended["uniqueid"] == uniqueid and ended["outcome"] == "abandoned"
    await calls_settled(runtime)
    _, _, ticket = await stream.wait("ticket.created")
    assert len(ticket["number"]) == 8 and ticket["caller_number"] == "081234567890"
    assert record.result is None  # hung up before the flow reported a result
    assert "pin" not in json.dumps(stream.events).lower()


async def test_ami_channels_of_other_servers_appear_as_calls(aiohttp_client: Any, web_runtime: TestRuntime) -> None:
    """Newchannel/Hangup as Asterisk 22 sends them (ami-originate.txt): only the
    channel that starts a call is a call; its other legs are not."""
    async with FakeAMI() as fake:
        ami = AMIClient(AMIConfig(host=fake.host, port=fake.port, username="ivr", secret="ivrsecret"))
        web_runtime.services.ami = ami
        await ami.start()
        try:
            assert await ami.wait_connected(5)
            client = await fast_client(aiohttp_client, web_runtime)
            stream = await open_stream(client, await make_token(web_runtime))
            await stream.wait("snapshot")
            await fake.send_event(
                "Newchannel", event_sample("Newchannel", CallerIDNum="081298765432", CallerIDName="Siti Aminah")
            )
            # The second half of the Local channel: same call (Linkedid), not another one.
            await fake.send_event(
                "Newchannel",
                event_sample("Newchannel", Channel="Local/ami_call@ivr-in-0000002c;2", Uniqueid="1796312906.89"),
            )
            _, _, started = await stream.wait("call.started")
            assert started == {
                **started,
                "uniqueid": "1796312906.88",
                "source": "ami",
                "channel": "Local/ami_call@ivr-in-0000002c;1",
                "caller_number": "081298765432",
                "caller_name": "Siti Aminah",
            }
            await fake.send_event("Hangup", event_sample("Hangup", Uniqueid="1796312906.89"))
            await fake.send_event("Hangup", event_sample("Hangup", Uniqueid="1796312906.88"))
            _, _, ended = await stream.wait("call.ended")
            assert ended["uniqueid"] == "1796312906.88" and ended["outcome"] == "hangup"
            assert stream.types().count("call.started") == 1 and stream.types().count("call.ended") == 1
            assert client.app[HUB].calls == {}
        finally:
            await ami.close()


# -- tickets and alarms, from this server or another -------------------------------------------


async def test_tickets_and_alarms_written_by_another_server_reach_this_one(
    aiohttp_client: Any, web_runtime: TestRuntime, settings: Settings
) -> None:
    here = await fast_client(aiohttp_client, web_runtime)
    engine = create_engine(settings.effective_database_url)
    try:
        elsewhere: Client = await aiohttp_client(create_web_app(build_runtime(settings, engine)))
        duty = await make_token(web_runtime)
        stream = await open_stream(here, duty)
        await stream.wait("snapshot")

        saved = await store_call(web_runtime.sessions, "1796400000.1", datetime.now(UTC), ticket_kind="message")
        _, _, created = await stream.wait("ticket.created")
        assert created["number"] == saved.ticket_number and created["kind"] == "message"

        changed = await elsewhere.patch(
            f"/api/tickets/{saved.ticket_number}", json={"status": "diproses"}, headers=bearer(duty)
        )
        assert changed.status == 200
        _, _, updated = await stream.wait("ticket.updated", lambda t: t["status"] == "diproses")
        assert updated["number"] == saved.ticket_number

        draft = callbacks.AlarmDraft(
            "1796400000.2", datetime.now(UTC), caller_number="085712345678", office_name="Kecamatan Wanadadi"
        )
        async with web_runtime.sessions.begin() as session:
            alarm_id, _ = await callbacks.create_alarm(session, draft)
        _, _, raised = await stream.wait("alarm.raised")
        assert raised["id"] == alarm_id and raised["office"] == "Kecamatan Wanadadi" and raised["state"] == "open"

        acknowledged = await elsewhere.post(f"/api/alarms/{alarm_id}/acknowledge", headers=bearer(duty))
        assert acknowledged.status == 200
        _, _, closed = await stream.wait("alarm.acknowledged")
        assert closed["id"] == alarm_id and closed["acknowledged_by"] == "token:events-duty"
        # Each change is told once, however often the overlapping polls see it.
        await here.app[HUB].wait_ticks(3)
        assert stream.types().count("alarm.raised") == 1
        assert stream.types().count("alarm.acknowledged") == 1
        assert stream.types().count("ticket.created") == 1
    finally:
        await engine.dispose()


# -- the connection ---------------------------------------------------------------------------


async def test_reconnecting_with_last_event_id_replays_what_was_missed(
    aiohttp_client: Any, web_runtime: TestRuntime
) -> None:
    client = await fast_client(aiohttp_client, web_runtime)
    hub = client.app[HUB]
    token = await make_token(web_runtime)
    seen_id = await listen_to_one_event_and_leave(client, token)
    hub.emit("ticket.updated", {"number": "10000002"})
    hub.emit("ticket.updated", {"number": "10000003"})

    again = await open_stream(client, token, **{"Last-Event-ID": seen_id})
    _, _, snapshot = await again.wait("snapshot")
    assert snapshot["resync"] is False
    await again.wait("ticket.updated", lambda t: t["number"] == "10000003")
    assert [data["number"] for _, kind, data in again.events if kind == "ticket.updated"] == ["10000002", "10000003"]

    # An id from a restarted server (another epoch) cannot be replayed: reload.
    foreign = await open_stream(client, token, **{"Last-Event-ID": "deadbeef-3"})
    _, _, snapshot = await foreign.wait("snapshot")
    assert snapshot["resync"] is True
    for junk in (f"{hub.epoch}-" + "9" * 5000, f"{hub.epoch}-١٢", f"{hub.epoch}-99999"):
        _, _, snapshot = await (await open_stream(client, token, **{"Last-Event-ID": junk})).wait("snapshot")
        assert snapshot["resync"] is True, junk
    # ivr.live() passes the id it saw last in the query string, after any earlier one.
    from_page = await client.get(f"/api/events?last_event_id=x-1&last_event_id={seen_id}", headers=bearer(token))
    page_stream = Stream(from_page)
    await page_stream.wait("ticket.updated", lambda t: t["number"] == "10000003")


async def test_with_nobody_listening_the_database_is_left_alone(aiohttp_client: Any, web_runtime: TestRuntime) -> None:
    client = await fast_client(aiohttp_client, web_runtime, idle_seconds=0.3)
    hub = client.app[HUB]
    token = await make_token(web_runtime)
    seen_id = await listen_to_one_event_and_leave(client, token)
    await wait_until(lambda: not hub.clients)
    polls = []
    original = hub.poll_database

    async def counted() -> None:
        polls.append(1)
        await original()

    hub.poll_database = counted  # type: ignore[method-assign]
    await wait_until(lambda: not hub.following)
    before = len(polls)
    await hub.wait_ticks(3)
    assert len(polls) == before  # nobody listens: no queries

    # Whoever comes back cannot be replayed across the gap: they reload.
    again = await open_stream(client, token, **{"Last-Event-ID": seen_id})
    _, _, snapshot = await again.wait("snapshot")
    assert snapshot["resync"] is True
    await hub.wait_ticks(2)  # following the database again, from now
    draft = callbacks.AlarmDraft("1796400000.9", datetime.now(UTC), caller_number="085712345678")
    async with web_runtime.sessions.begin() as session:
        alarm_id, _ = await callbacks.create_alarm(session, draft)
    _, _, raised = await again.wait("alarm.raised")
    assert raised["id"] == alarm_id


async def test_heartbeats_keep_a_quiet_stream_open(aiohttp_client: Any, web_runtime: TestRuntime) -> None:
    client = await fast_client(aiohttp_client, web_runtime, heartbeat_seconds=0.2)
    stream = await open_stream(client, await make_token(web_runtime))
    await stream.wait("snapshot")
    await stream.wait_comments("ping", 2)
    assert stream.types() == ["snapshot"]  # nothing but heartbeats while nothing happens


async def test_a_client_that_leaves_is_forgotten(aiohttp_client: Any, web_runtime: TestRuntime) -> None:
    client = await fast_client(aiohttp_client, web_runtime)
    hub = client.app[HUB]
    token = await make_token(web_runtime)
    streams = [await open_stream(client, token) for _ in range(3)]
    for stream in streams:
        await stream.wait("snapshot")
    assert len(hub.clients) == 3
    tasks_before = len(asyncio.all_tasks())
    for stream in streams:
        stream.response.close()
    await wait_until(lambda: not hub.clients)
    await wait_until(lambda: len(asyncio.all_tasks()) < tasks_before)


async def test_a_slow_client_is_dropped_not_buffered(web_runtime: TestRuntime) -> None:
    hub = EventHub(web_runtime)
    slow, _, _ = hub.connect(None)
    quick, _, _ = hub.connect(None)
    for n in range(CLIENT_QUEUE):
        hub.emit("ticket.updated", {"number": f"{n:08d}"})
        quick.queue.get_nowait()
    assert hub.clients == {slow, quick}
    hub.emit("ticket.updated", {"number": "99999999"})
    assert hub.clients == {quick}
    assert hub.dropped_clients == 1
    # Its backlog is released at once; its stream ends with the next read.
    assert slow.queue.qsize() == 1 and slow.queue.get_nowait() is CLOSED


async def test_shutdown_ends_open_streams(aiohttp_client: Any, web_runtime: TestRuntime) -> None:
    client = await fast_client(aiohttp_client, web_runtime)
    stream = await open_stream(client, await make_token(web_runtime))
    await stream.wait("snapshot")
    await client.app.shutdown()
    with pytest.raises(EOFError):
        await stream.wait("ticket.updated")


async def test_a_replayed_event_says_what_it_said_when_it_happened(web_runtime: TestRuntime) -> None:
    # With nobody listening events are not encoded until a client asks for
    # them: a payload changed after it was sent (a live call's step) must not
    # rewrite the past.
    hub = EventHub(web_runtime)
    payload = {"uniqueid": "1765432100.7", "step": "menu"}
    hub.emit("call.started", payload)
    payload["step"] = "agenda"
    hub.emit("call.updated", payload)
    _, missed, resync = hub.connect(f"{hub.epoch}-0")
    assert not resync
    assert ['"step":"menu"' in text for text in missed] == [True, False]
