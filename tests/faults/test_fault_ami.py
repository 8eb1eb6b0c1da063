"""AMI drop: Asterisk's manager interface goes away in the middle of the
callback loop and comes back 5 s later. The client reconnects and every
unanswered emergency is still called back, each callback placed exactly once.
A wrong secret stops the retries at once and shows in ``/api/health``.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_ami import FakeAMI
from fault_walks import DUTY, emergency_unanswered, place, set_up
from pydantic import SecretStr
from screening import OfficerPhones
from sqlalchemy import select

from ivr.app import running
from ivr.config import Settings
from ivr.storage.roster_models import EmergencyAlarm

pytestmark = pytest.mark.fault("AMI drop")

DROP_SECONDS = 5.0
ALARMS = 3


@pytest.fixture
async def fake() -> AsyncIterator[FakeAMI]:
    async with FakeAMI() as server:
        yield server


def with_ami(settings: Settings, fake: FakeAMI, secret: str) -> Settings:
    return settings.model_copy(
        update={
            "ami_host": fake.host,
            "ami_port": fake.port,
            "ami_username": "ivr",
            "ami_secret": SecretStr(secret),
            "emergency_callback_delay_seconds": 0,
            "emergency_callback_ring_seconds": 1,
            "emergency_callback_poll_seconds": 0.5,
        }
    )


async def _alarm_states(runtime: Any) -> list[str]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(EmergencyAlarm.state).order_by(EmergencyAlarm.id)))


async def test_ami_drop_mid_callback_loop_loses_and_doubles_no_callback(settings: Settings, fake: FakeAMI, fault: Any):
    fault.cases(ALARMS)
    async with running(with_ami(settings, fake, "ivrsecret"), migrate=False) as runtime:
        await set_up(runtime)
        ami = runtime.services.ami
        assert await ami.wait_connected(5)
        officer = DUTY.dial_strings[0]
        async with OfficerPhones(fake, ("127.0.0.1", runtime.agi.bound_port), {officer: [["1"]] * ALARMS}) as phones:
            await place(runtime, await emergency_unanswered(runtime))
            await phones.wait_calls(1)  # the first callback went out and was acknowledged

            # Asterisk goes away: the open connection dies, new ones are refused.
            fake.reject_connections = True
            for connection in fake.logged_in:
                connection.abort()
            assert await ami.wait_state("connecting", 5)
            for _ in range(ALARMS - 1):  # emergencies keep coming while it is down
                await place(runtime, await emergency_unanswered(runtime))
            await asyncio.sleep(DROP_SECONDS)
            assert len(phones.calls) == 1, "a callback went out while AMI was down"
            fake.reject_connections = False

            assert await ami.wait_connected(30)
            await phones.wait_calls(ALARMS, timeout=60)
            await runtime.services.emergency.callbacks.wait_ticks(2)
            states = await _alarm_states(runtime)
            jobs = collections.Counter(o["IVR_CALLBACK_JOB"] for o in phones.originates())
        fault.lost(sum(state != "acknowledged" for state in states))
        assert states == ["acknowledged"] * ALARMS
        assert len(jobs) == ALARMS and set(jobs.values()) == {1}, jobs  # one Originate per callback, none doubled
        assert ami.health()["reconnects"] >= 1


async def test_wrong_ami_secret_stops_retrying_and_health_reports_it(settings: Settings, fake: FakeAMI, fault: Any):
    from aiohttp.test_utils import TestClient, TestServer

    from ivr.web.app import create_web_app

    async with running(with_ami(settings, fake, "not-the-secret"), migrate=False) as runtime:
        ami = runtime.services.ami
        assert await ami.wait_state("auth_failed", 10)
        await asyncio.sleep(2.5)  # longer than two backoff steps: a retrying client would have come back
        assert len(fake.accept_times) == 1
        async with TestClient(TestServer(create_web_app(runtime))) as client:
            response = await client.get("/api/health")
            health = await response.json()
    assert health["status"] == "degraded"
    assert "auth_failed" in str(health["ami"])
    assert "not-the-secret" not in str(health)
