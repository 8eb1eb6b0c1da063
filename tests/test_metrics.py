"""``GET /metrics`` after real calls: a simulated Asterisk calls the running
server over FastAGI, then the test scrapes the web app as Prometheus would
(with a Bearer token) and reads the exposition back with the library's parser."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from helpers import calls_settled, set_office_override
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from screening import database_down, spool_replayed
from web_fixtures import bearer

from ivr.seed import seed_demo
from ivr.simulator import CallRecord, place_call
from ivr.storage.tokens import create_token
from ivr.web.app import create_web_app

Client = TestClient[Any, Any]
REGISTERED = "081234567890"  # Budi Santoso, Dinas Komunikasi dan Informatika (demo data)


@pytest.fixture
async def center(runtime: Any) -> Any:
    await seed_demo(runtime.sessions, runtime.settings)
    await set_office_override(runtime, "closed")  # after hours: any key but 1 and 2 is a polite goodbye
    return runtime


@pytest.fixture
async def scraper(aiohttp_client: Any, center: Any) -> Client:
    client: Client = await aiohttp_client(create_web_app(center))
    return client


@pytest.fixture
async def token(center: Any) -> str:
    async with center.sessions.begin() as session:
        return await create_token(session, "duty", "prometheus")  # "read" is all a scrape needs


async def _call(runtime: Any, keys: list[str]) -> CallRecord:
    return await place_call("127.0.0.1", runtime.agi.bound_port, caller_id=REGISTERED, keys=keys)


async def _scrape(client: Client, token: str) -> dict[str, float]:
    """Every sample as ``name{label="value",...}`` -> value."""
    response = await client.get("/metrics", headers=bearer(token))
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def test_metrics_count_calls_by_outcome_and_time_every_agi_step(center: Any, scraper: Client, token: str):
    before = await _scrape(scraper, token)
    assert before['ivr_calls_total{outcome="completed"}'] == 0
    assert before["ivr_agi_step_think_seconds_count"] == 0

    records = [await _call(center, ["5"]), await _call(center, ["5"]), await _call(center, ["h"])]
    await calls_settled(center)
    # A text never said before: one synthesis, a cache miss.
    await center.speech.render(f"Uji metrik nomor {random.randrange(10**9)}.")

    after = await _scrape(scraper, token)
    assert after['ivr_calls_total{outcome="completed"}'] == 2
    assert after['ivr_calls_total{outcome="abandoned"}'] == 1
    assert after['ivr_calls_total{outcome="failed"}'] == 0
    assert after["ivr_calls_active"] == 0
    # One think time per AGI command the server sent, each one measured.
    assert after["ivr_agi_step_think_seconds_count"] == sum(len(r.commands) for r in records)
    assert after["ivr_agi_step_think_seconds_sum"] > 0
    assert after['ivr_agi_step_think_seconds_bucket{le="+Inf"}'] == after["ivr_agi_step_think_seconds_count"]
    assert after["ivr_tts_synthesis_seconds_count"] >= 1
    assert after["ivr_tts_cache_misses_total"] >= before["ivr_tts_cache_misses_total"] + 1
    assert after["ivr_tts_cache_hits_total"] > before["ivr_tts_cache_hits_total"]  # the office greeting, cached
    assert after["ivr_tts_workers_alive"] == center.settings.tts_workers
    assert after["ivr_ami_connected"] == 0 and after["ivr_ami_reconnects_total"] == 0  # no AMI configured
    assert after["ivr_spool_backlog"] == 0
    assert after["process_resident_memory_bytes"] > 0
    assert 'python_gc_objects_collected_total{generation="0"}' in after


async def test_spooled_records_show_in_the_backlog_until_replayed(
    center: Any, scraper: Client, token: str, monkeypatch: pytest.MonkeyPatch
):
    spool = center.services.spool
    # The spooled record wakes the replayer, which would write it as soon as
    # the database is back (the scrape's token lookup lets it run): hold every
    # replay until the backlog has been scraped.
    replay, scraped = spool.replay_once, asyncio.Event()

    async def replay_after_the_scrape() -> int:
        await scraped.wait()
        return await replay()

    monkeypatch.setattr(spool, "replay_once", replay_after_the_scrape)
    with database_down(center.engine):
        await _call(center, ["h"])
        await calls_settled(center)
    assert spool.backlog() == 1
    during = await _scrape(scraper, token)
    assert during["ivr_spool_backlog"] == 1 and during["ivr_spool_replayed_total"] == 0
    scraped.set()
    await spool_replayed(spool)
    later = await _scrape(scraper, token)
    assert later["ivr_spool_backlog"] == 0 and later["ivr_spool_replayed_total"] == 1


async def test_metrics_need_a_token(scraper: Client, token: str):
    anonymous = await scraper.get("/metrics")
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await scraper.get("/metrics", headers=bearer("not-a-token"))).status == 401
    document = await (await scraper.get("/api/openapi.json")).json()
    operation = document["paths"]["/metrics"]["get"]
    assert "text/plain" in operation["responses"]["200"]["content"]
    assert set(operation["x-roles"]) == {"admin", "staff", "duty"}


async def test_each_runtime_has_its_own_registry(runtime: Any):
    """Never the library's global registry: two runtimes in one process (the
    two-instance tests) would clash there, and each must report only its own calls."""
    assert runtime.metrics.registry is not REGISTRY
    assert b"ivr_calls_active" not in generate_latest(REGISTRY)
