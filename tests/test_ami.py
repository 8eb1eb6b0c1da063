"""AMI adapter against the fake Asterisk Manager (tests/fake_ami.py), over real TCP.

Each test waits for what it expects (a state, an action seen by the fake, an
event seen by a callback) with a timeout; none synchronises on a sleep.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fake_ami import CORE_SHOW_CHANNEL_SAMPLE, FakeAMI, OriginateOutcome, encode, event_sample
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.ami import (
    AMIActionError,
    AMIClient,
    AMIConfig,
    AMIConnectionLost,
    AMIEncodingError,
    AMITimeout,
    AMIUnavailable,
    OriginateResult,
)
from ivr.ami.client import backoff_delay
from ivr.ami.wire import AMIFramer, AMIProtocolError, parse_message

Factory = Callable[..., Awaitable[AMIClient]]


class Collector:
    """An async event callback that remembers what it got and can be waited on."""

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.events: list[dict[str, str]] = []
        self.fail_on = fail_on or set()
        self._changed = asyncio.Event()

    async def __call__(self, event: dict[str, str]) -> None:
        self.events.append(event)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        if len(self.events) in self.fail_on:
            raise RuntimeError(f"callback failure on event {len(self.events)}")

    async def wait(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                await self._changed.wait()
        return self.events

    def names(self) -> list[str]:
        return [e["Event"] for e in self.events]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAMI]:
    async with FakeAMI(auth_fail_delay=0.05) as server:
        yield server


def make_config(fake: FakeAMI, **overrides: Any) -> AMIConfig:
    values: dict[str, Any] = {
        "host": fake.host,
        "port": fake.port,
        "username": "ivr",
        "secret": "ivrsecret",
        "ping_interval": 30,
        "action_timeout": 2,
        "reconnect_min": 0.05,
        "reconnect_max": 0.4,
    }
    values.update(overrides)
    return AMIConfig(**values)


@pytest.fixture
async def make_client(fake: FakeAMI) -> AsyncIterator[Factory]:
    clients: list[AMIClient] = []

    async def make(*, connect: bool = True, **overrides: Any) -> AMIClient:
        client = AMIClient(make_config(fake, **overrides))
        clients.append(client)
        await client.start()
        if connect:
            assert await client.wait_connected(5)
        return client

    yield make
    for client in clients:
        await client.close()


# -- login ---------------------------------------------------------------------------------


async def test_login_sets_connected_and_sends_event_mask(
    fake: FakeAMI, make_client: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ivr.ami")
    client = AMIClient(make_config(fake))
    booted = Collector()
    client.subscribe("FullyBooted", booted)  # before start(): the worker starts with the client
    await client.start()
    try:
        assert await client.wait_connected(5)
        await booted.wait(1)
        assert booted.events[0]["Status"] == "Fully Booted"

        health = client.health()
        assert health["state"] == "connected" == client.state
        assert health["reconnects"] == 0
        assert health["connected_since"] is not None

        conn = await fake.wait_connection(1)
        login = conn.raw_actions[0]
        assert login.startswith(b"Action: Login\r\nActionID: ivr-")
        assert b"\r\nUsername: ivr\r\nSecret: ivrsecret\r\nEvents: call,system\r\n\r\n" in login
        # The secret never reaches a log line, and the config's repr hides it.
        assert "ivrsecret" not in caplog.text
        assert "ivrsecret" not in repr(client.config)
        assert "ivrsecret" not in str(client.health())
    finally:
        await client.close()
    assert client.state == "down"
    assert fake.actions_named("Logoff"), "close() logs off politely"


async def test_events_mask_without_system_still_connects(fake: FakeAMI, make_client: Factory) -> None:
    # FullyBooted comes only with ``system`` in the mask (manager.c:3427); we must
    # not wait for it (panoramisk did, M8).
    client = await make_client(events="call")
    every = Collector()
    client.subscribe("*", every)
    sent = await fake.send_event("Hangup", event_sample("Hangup"))
    assert sent == 1
    await every.wait(1)
    assert every.names() == ["Hangup"]
    assert fake.connections[0].actions[0]["Events"] == "call"


async def test_wrong_secret_stops_retrying_and_reports_auth_failed(fake: FakeAMI, make_client: Factory) -> None:
    client = await make_client(connect=False, secret="wrong")
    assert await client.wait_state("auth_failed", 5)
    assert not await client.wait_connected(1)
    # The supervisor has ended: no further attempt can happen (M9).
    assert client._supervisor is not None
    await asyncio.wait_for(asyncio.shield(client._supervisor), 1)
    assert len(fake.accept_times) == 1
    health = client.health()
    assert health["state"] == "auth_failed"
    assert "Authentication failed" in health["last_error"]
    assert "wrong" not in str(health)
    with pytest.raises(AMIUnavailable, match="auth_failed"):
        await client.action("Ping", {})


async def test_disabled_without_host() -> None:
    client = AMIClient(AMIConfig(host=""))
    await client.start()
    assert client.state == "disabled"
    assert not await client.wait_connected(0.1)
    with pytest.raises(AMIUnavailable, match="disabled"):
        await client.action("Ping", {})
    await client.close()
    assert client.health()["state"] == "disabled"


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        AMIConfig(host="pbx", reconnect_min=5, reconnect_max=1)
    with pytest.raises(ValueError):
        AMIConfig(host="pbx", ping_interval=0)
    with pytest.raises(AMIEncodingError):
        AMIConfig(host="pbx", events="call\r\nAction: Command")


# -- actions -------------------------------------------------------------------------------


async def test_ping_and_action_errors_carry_the_message(fake: FakeAMI, make_client: Factory) -> None:
    client = await make_client()
    pong = await client.action("Ping", {})
    assert pong["Response"] == "Success" and pong["Ping"] == "Pong"

    with pytest.raises(AMIActionError) as caught:
        await client.action("NoSuchAction", {})
    assert caught.value.message == (
        "Invalid/unknown command: NoSuchAction. Use Action: ListCommands to show available commands."
    )
    assert caught.value.response["ActionID"].startswith("ivr-")

    with pytest.raises(AMIActionError, match="No such channel"):
        await client.action("Hangup", {"Channel": "Local/nope@nowhere-00000000;1", "Cause": "16"})
    assert client.health()["pending_actions"] == 0


async def test_command_output_is_one_string(fake: FakeAMI, make_client: Factory) -> None:
    client = await make_client()
    reply = await client.action("Command", {"Command": "core show uptime"})
    assert reply["Output"] == "System uptime: 4 minutes, 45 seconds\nLast reload: 4 minutes, 45 seconds"
    with pytest.raises(AMIActionError) as caught:
        await client.action("Command", {"Command": "no such cli command"})
    assert caught.value.response["Output"].startswith("No such command 'no such cli command'")


async def test_list_action_collects_items_until_complete(fake: FakeAMI, make_client: Factory) -> None:
    second = [(k, v.replace(";1", ";2")) for k, v in CORE_SHOW_CHANNEL_SAMPLE]
    fake.channels = [CORE_SHOW_CHANNEL_SAMPLE, second]
    client = await make_client()
    response, items = await client.action_list("CoreShowChannels", {})
    assert response["EventList"] == "start"
    assert [i["Channel"] for i in items] == ["Local/ami_long@ivr-in-0000002e;1", "Local/ami_long@ivr-in-0000002e;2"]
    assert client.health()["pending_actions"] == 0


async def test_action_timeout_removes_pending_entry_and_ignores_late_reply(fake: FakeAMI, make_client: Factory) -> None:
    fake.reply_delays["userevent"] = 0.3
    fake.hold_actions.add("dbget")
    client = await make_client()

    with pytest.raises(AMITimeout):
        await client.action("UserEvent", {"UserEvent": "late"}, timeout=0.1)
    assert client.health()["pending_actions"] == 0

    held = [client.action("DBGet", {"Family": "ivr", "Key": str(n)}, timeout=0.1) for n in range(10)]
    results = await asyncio.gather(*held, return_exceptions=True)
    assert all(isinstance(r, AMITimeout) for r in results)
    assert client.health()["pending_actions"] == 0

    # The late reply still arrives; it must be dropped quietly. Once the fake has
    # written it, a Ping answered after it proves the connection survived it.
    conn = fake.connections[0]
    late_id = fake.actions_named("UserEvent")[0]["ActionID"]
    await fake.wait_until(lambda: any(late_id.encode() in chunk for chunk in conn.sent))
    await client.action("Ping", {})
    assert client.state == "connected"
    assert client.health()["reconnects"] == 0


async def test_header_injection_and_long_lines_are_refused(fake: FakeAMI, make_client: Factory) -> None:
    client = await make_client()
    injected = "x\r\nAction: Command\r\nCommand: core stop now"
    for bad in (injected, "a\nb", "a\rb", "nul\0byte", "é" * 600):
        with pytest.raises(AMIEncodingError):
            await client.action("Setvar", {"Channel": "Local/1@x-1;1", "Variable": "X", "Value": bad})
    with pytest.raises(AMIEncodingError):
        await client.action("Setvar", {"Bad Key": "1"})
    with pytest.raises(AMIEncodingError):
        await client.action("Ping", {"ActionID": "mine"})
    with pytest.raises(AMIEncodingError):
        await client.originate(channel="Local/100@officer", context="c", exten="s", variables={"A": "1,B=2"})
    with pytest.raises(ValueError):
        await client.action("Originate", {"Channel": "Local/100@officer"})

    await client.action("Ping", {})
    sent = [a["Action"] for a in fake.connections[0].actions]
    assert sent == ["Login", "Ping"], "nothing refused reached the wire"


# -- originate ----------------------------------------------------------------------------


async def test_concurrent_originates_are_correlated_by_action_id(fake: FakeAMI, make_client: Factory) -> None:
    # Outcomes come back in a different order than the requests went out.
    fake.originate_outcomes = {
        "Local/100@officer": OriginateOutcome("Success", 4, delay=0.25, uniqueid="1796312910.90"),
        "Local/101@officer": OriginateOutcome("Failure", 3, delay=0.15),
        "Local/102@officer": OriginateOutcome("Failure", 5, delay=0.0),
        "Local/103@officer": OriginateOutcome("Failure", 8, delay=0.05),
        "Local/999@nosuchcontext": OriginateOutcome("Failure", 0, delay=0.1),
    }
    client = await make_client()
    seen = Collector()
    client.subscribe("OriginateResponse", seen)

    channels = list(fake.originate_outcomes)
    results: list[OriginateResult] = await asyncio.gather(
        *(
            client.originate(
                channel=channel,
                context="caller-sim",
                exten="ami_long",
                caller_id='"Siti Aminah" <081298765432>',
                variables={"DTMF_SCRIPT": "3:12#", "TAIL_WAIT": "30"},
                timeout_ms=5000,
                wait=5,
            )
            for channel in channels
        )
    )
    by_channel = dict(zip(channels, results, strict=True))
    ok = by_channel["Local/100@officer"]
    assert ok.success and ok.reason == 4 and ok.uniqueid == "1796312910.90"
    assert ok.channel == "Local/100@officer-0000002c;1"
    assert ok.response["CallerIDName"] == "Siti Aminah"
    for channel, reason in [
        ("Local/101@officer", 3),
        ("Local/102@officer", 5),
        ("Local/103@officer", 8),
        ("Local/999@nosuchcontext", 0),
    ]:
        failed = by_channel[channel]
        assert (failed.success, failed.reason, failed.uniqueid, failed.channel) == (False, reason, None, channel)
        assert failed.response["Uniqueid"] == "<unknown>"

    sent = fake.actions_named("Originate")
    assert len({a["ActionID"] for a in sent}) == 5
    assert all(a["Async"] == "true" for a in sent)
    raw = fake.connections[0].raw_actions[1]
    assert b"\r\nVariable: DTMF_SCRIPT=3:12#\r\nVariable: TAIL_WAIT=30\r\nAsync: true\r\n\r\n" in raw
    # Subscribers see OriginateResponse too, although it belongs to our action (M11).
    await seen.wait(5)
    assert client.health()["pending_actions"] == 0


async def test_originate_refused_by_asterisk_raises_action_error(fake: FakeAMI, make_client: Factory) -> None:
    client = await make_client()
    with pytest.raises(AMIActionError, match="Originate failed"):
        await client.originate(channel="Bogus/123", context="caller-sim", exten="ami_long")
    assert client.health()["pending_actions"] == 0


async def test_originate_without_event_times_out_and_cleans_up(fake: FakeAMI, make_client: Factory) -> None:
    fake.originate_outcomes["Local/104@officer"] = OriginateOutcome(never=True)
    client = await make_client()
    with pytest.raises(AMITimeout):
        await client.originate(channel="Local/104@officer", application="Playback", data="hello-world", wait=0.2)
    assert client.health()["pending_actions"] == 0
    sent = fake.actions_named("Originate")[0]
    assert (sent["Application"], sent["Data"]) == ("Playback", "hello-world")


# -- framing and callbacks -------------------------------------------------------------------


async def test_utf8_character_split_across_tcp_writes_arrives_intact(fake: FakeAMI, make_client: Factory) -> None:
    client = await make_client()
    channels = Collector()
    client.subscribe("Newchannel", channels)
    conn = fake.connections[0]

    event = encode(
        [
            ("Event", "Newchannel"),
            ("Privilege", "call,all"),
            *event_sample("Newchannel", CallerIDName="Siti Aminah é", Uniqueid="1.1"),
        ]
    )
    cut = event.index("é".encode()) + 1  # between the two bytes of U+00E9
    await conn.write_chunks([event[:cut], event[cut:]])
    # A Latin-1 name is not UTF-8: replaced, never dropped or fatal (M1).
    latin1 = encode([("Event", "Newchannel"), ("Privilege", "call,all"), ("CallerIDName", "Caf")])
    await conn.write(latin1.replace(b"Caf\r\n", b"Caf\xe9\r\n"))

    await channels.wait(2)
    assert channels.events[0]["CallerIDName"] == "Siti Aminah é"
    assert channels.events[1]["CallerIDName"] == "Caf\ufffd"
    assert client.state == "connected"


async def test_failing_callback_keeps_connection_and_next_event(
    fake: FakeAMI, make_client: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    flaky = Collector(fail_on={1})
    steady = Collector()
    client.subscribe("Hangup", flaky)
    client.subscribe("Hangup", steady)

    def not_async(event: dict[str, str]) -> None:
        raise AssertionError("a sync callback must not run inside data_received")

    client.subscribe("Hangup", not_async)  # type: ignore[arg-type]

    # Two events in one TCP write: panoramisk lost the second one (M5).
    two = b"".join(
        encode([("Event", "Hangup"), ("Privilege", "call,all"), *event_sample("Hangup", Uniqueid=u)])
        for u in ("1796312910.91", "1796312910.92")
    )
    await fake.connections[0].write(two)
    await flaky.wait(2)
    await steady.wait(2)
    assert [e["Uniqueid"] for e in flaky.events] == ["1796312910.91", "1796312910.92"]
    assert "callback failure on event 1" in caplog.text
    await client.action("Ping", {})
    assert client.state == "connected"
    assert client.health()["reconnects"] == 0
    assert len(fake.connections) == 1


async def test_subscribe_patterns_and_unsubscribe(fake: FakeAMI, make_client: Factory) -> None:
    client = await make_client()
    dial = Collector()
    everything = Collector()
    unsubscribe = client.subscribe("Dial*", dial)
    client.subscribe("*", everything)

    for name in ("Newchannel", "DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave", "Hangup"):
        await fake.send_event(name, event_sample(name))
    await everything.wait(6)
    await dial.wait(2)
    assert dial.names() == ["DialBegin", "DialEnd"]
    assert everything.names() == ["Newchannel", "DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave", "Hangup"]

    unsubscribe()
    unsubscribe()  # idempotent
    await fake.send_event("DialBegin", event_sample("DialBegin"))
    await everything.wait(7)
    assert dial.names() == ["DialBegin", "DialEnd"]


# -- reconnect, liveness, fail-fast ----------------------------------------------------------


async def test_shutdown_event_then_eof_reconnects(fake: FakeAMI, make_client: Factory) -> None:
    client = await make_client()
    shutdowns = Collector()
    client.subscribe("Shutdown", shutdowns)

    await fake.shutdown(restart=True)
    await shutdowns.wait(1)
    assert shutdowns.events[0] == {
        "Event": "Shutdown",
        "Privilege": "system,all",
        "Shutdown": "Cleanly",
        "Restart": "True",
    }
    await fake.wait_connection(2)
    assert await client.wait_connected(5)
    health = client.health()
    assert health["reconnects"] == 1
    assert "shutdown" in health["last_error"].lower()
    await client.action("Ping", {})


async def test_reconnect_backs_off_while_asterisk_refuses(fake: FakeAMI, make_client: Factory) -> None:
    client = await make_client()
    fake.reject_connections = True
    fake.connections[0].abort()  # EOF/reset on the live session
    assert await client.wait_state("connecting", 5)

    await fake.wait_until(lambda: len(fake.accept_times) >= 1 + 6, timeout=10)
    attempts = fake.accept_times[1:7]
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    # Equal jitter over 0.05 * 2**n capped at 0.4: each ceiling doubles, so gaps grow...
    assert gaps[3] > gaps[0]
    # ...and stay near the cap (the exact bounds are checked without a network below).
    assert max(gaps) < 0.4 + 0.3
    assert client.state == "connecting"
    assert "failed" in client.health()["last_error"]

    fake.reject_connections = False
    assert await client.wait_connected(5)
    assert client.health()["reconnects"] == 1


def test_backoff_delay_doubles_with_jitter_and_caps() -> None:
    rng = random.Random(7)
    for attempt, ceiling in enumerate([1, 2, 4, 8, 16, 32, 60, 60, 60]):
        delays = [backoff_delay(attempt, 1, 60, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert backoff_delay(10_000, 1, 60, rng) <= 60


async def test_actions_while_down_fail_fast_and_are_not_resent(fake: FakeAMI, make_client: Factory) -> None:
    never_started = AMIClient(make_config(fake))
    with pytest.raises(AMIUnavailable):
        await never_started.action("Ping", {})

    client = await make_client()
    fake.reject_connections = True
    fake.connections[0].abort()
    assert await client.wait_state("connecting", 5)

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AMIUnavailable):
        await client.action("Ping", {})
    with pytest.raises(AMIUnavailable):
        await client.originate(channel="Local/100@officer", context="caller-sim", exten="ami_long")
    assert loop.time() - started < 0.05, "fails at once, no waiting for a reconnect"

    fake.reject_connections = False
    assert await client.wait_connected(5)
    await client.action("Ping", {})
    assert [a["Action"] for a in fake.connections[1].actions] == ["Login", "Ping"]


async def test_originate_in_flight_is_lost_not_resent_after_reconnect(fake: FakeAMI, make_client: Factory) -> None:
    fake.originate_outcomes["Local/100@officer"] = OriginateOutcome(never=True)
    fake.hold_actions.add("getvar")
    client = await make_client()

    originate = asyncio.create_task(
        client.originate(channel="Local/100@officer", context="caller-sim", exten="ami_long", wait=10)
    )
    getvar = asyncio.create_task(client.action("Getvar", {"Variable": "X"}, timeout=10))
    await fake.wait_action("Originate")
    await fake.wait_action("Getvar")
    fake.connections[0].abort()

    with pytest.raises(AMIConnectionLost):
        await originate
    with pytest.raises(AMIConnectionLost):
        await getvar
    assert not issubclass(AMIConnectionLost, AMIUnavailable), "a generic 'retry when down' must not catch it"

    assert await client.wait_connected(5)
    await client.action("Ping", {})
    assert [a["Action"] for a in fake.connections[1].actions] == ["Login", "Ping"]
    assert len(fake.actions_named("Originate")) == 1, "an officer is never called twice"


async def test_silent_peer_is_detected_by_the_ping_watchdog(fake: FakeAMI, make_client: Factory) -> None:
    client = await make_client(ping_interval=0.2, action_timeout=0.3)
    first = await fake.wait_connection(1)
    await fake.wait_action("Ping")  # the watchdog pings on its own
    first.silent = True  # half-open: the socket stays up, nothing comes back

    await fake.wait_connection(2, timeout=5)
    assert await client.wait_connected(5)
    health = client.health()
    assert health["reconnects"] == 1
    assert "ping watchdog" in health["last_error"]


async def test_connection_dropped_mid_message_reconnects_cleanly(fake: FakeAMI, make_client: Factory) -> None:
    client = await make_client()
    channels = Collector()
    client.subscribe("Newchannel", channels)
    await fake.connections[0].drop_mid_message()
    second = await fake.wait_connection(2)
    assert await client.wait_connected(5)
    await second.send_event("Newchannel", event_sample("Newchannel"))
    await channels.wait(1)
    assert channels.events[0]["Channel"] == "Local/ami_call@ivr-in-0000002c;1"
    assert len(channels.events) == 1, "the half message was discarded, not glued to the next"


async def test_close_fails_pending_actions_and_stops_workers(fake: FakeAMI) -> None:
    fake.hold_actions.add("getvar")
    client = AMIClient(make_config(fake))
    client.subscribe("*", Collector())
    await client.start()
    assert await client.wait_connected(5)
    pending = asyncio.create_task(client.action("Getvar", {"Variable": "X"}, timeout=10))
    await fake.wait_action("Getvar")
    await client.close()
    with pytest.raises((AMIConnectionLost, AMIUnavailable)):
        await pending
    assert client.state == "down"
    assert not client._workers
    with pytest.raises(RuntimeError):
        await client.start()


async def test_peer_that_is_not_asterisk_is_dropped_and_retried(fake: FakeAMI, make_client: Factory) -> None:
    fake.banner = b"SSH-2.0-OpenSSH_9.2\r\n"
    client = await make_client(connect=False)
    await fake.wait_until(lambda: len(fake.accept_times) >= 2)
    assert client.state == "connecting"
    assert "not an AMI banner" in client.health()["last_error"]
    fake.banner = b"Asterisk Call Manager/11.0.0\r\n"
    assert await client.wait_connected(5)


# -- wire (pure) -----------------------------------------------------------------------------


def test_framer_refuses_runaway_message_and_bad_banner() -> None:
    framer = AMIFramer(max_message_bytes=100)
    framer.feed(b"Asterisk Call Manager/11.0.0\r\n")
    with pytest.raises(AMIProtocolError):
        framer.feed(b"Output: " + b"x" * 200)
    with pytest.raises(AMIProtocolError):
        AMIFramer().feed(b"HTTP/1.1 400 Bad Request\r\n")
    with pytest.raises(AMIProtocolError):
        AMIFramer().feed(b"GET / HTTP")  # refused before the line even ends


def test_framer_handles_terminator_split_and_stray_blank_lines() -> None:
    framer = AMIFramer()
    data = b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nPing: Pong\r\n\r\n\r\nEvent: X\r\n\r\n"
    end = data.index(b"\r\n\r\n")
    cuts = [0, end + 1, end + 2, end + 3, end + 5, len(data)]  # inside the terminator, and after it
    got = []
    for start, stop in itertools.pairwise(cuts):
        got.extend(framer.feed(data[start:stop]))
    assert [m.as_dict() for m in got] == [{"Response": "Success", "Ping": "Pong"}, {"Event": "X"}]


def test_parse_keeps_trailing_spaces_and_lines_without_colon() -> None:
    message = parse_message(b"Response: Success\r\nOutput: Up      Wait(120)   \r\nno colon here\r\nValue: \r\n\r\n")
    assert message.as_dict() == {"Response": "Success", "Output": "Up      Wait(120)   ", "Value": ""}
    assert ("", "no colon here") in message.headers


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(
        st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12),
        min_size=1,
        max_size=4,
    ),
    sizes=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8),
)
def test_any_text_survives_any_chunking(names: list[str], sizes: list[int]) -> None:
    stream = b"Asterisk Call Manager/11.0.0\r\n" + b"".join(
        encode([("Event", "Newchannel"), ("CallerIDName", name)]) for name in names
    )
    framer = AMIFramer()
    got = []
    position = turn = 0
    while position < len(stream):
        size = sizes[turn % len(sizes)]
        got.extend(framer.feed(stream[position : position + size]))
        position, turn = position + size, turn + 1
    assert [m.as_dict()["CallerIDName"] for m in got] == names
