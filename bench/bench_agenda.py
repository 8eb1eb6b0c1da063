"""Agenda read-back benchmark (issue 3): how ready the audio is when callers ask.

Runs a real ``ivr serve`` runtime (FastAGI server, pyttsx3/espeak-ng worker pool,
SQLite) in a temporary folder with an empty TTS cache, the demo leaders and
agenda, and the agenda prerenderer, then measures:

1. **change -> cached**: an agenda item is changed (a new status or note, so its
   read-back is new text), the prerenderer is notified as the API does, and the
   time until every read-back of the affected days is in the TTS cache is taken
   (p50/p99 over ``--changes`` changes, one at a time); also a burst of 10
   changes at once (debounced and coalesced);
2. **cache-hit rate** over ``--calls`` full simulated calls (the simulated
   Asterisk over TCP: main menu 1, a random leader, today's read-back, 1 for
   tomorrow, 0) while staff keep changing the agenda (one change every
   ``--change-every`` calls, at random moments): the share of read-back texts,
   and of calls, whose audio was already cached when the call looked it up;
3. **synthesis time per second of audio**: fresh agenda texts rendered by the
   worker pool one at a time.

    .venv/bin/python bench/bench_agenda.py [--quick] [--calls 1000] [--changes 100] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import parse_args
from sqlalchemy import select

from ivr.agenda import AgendaConfig, build_agenda_services, store
from ivr.agenda.demo import seed_demo_agenda
from ivr.agenda.speech import day_readback
from ivr.app import running
from ivr.config import Settings
from ivr.flows import agenda as agenda_flow
from ivr.flows import main as main_flow
from ivr.seed import seed_demo
from ivr.simulator import place_call
from ivr.storage import settings_store
from ivr.storage.agenda_models import AgendaItem
from ivr.storage.database import create_engine
from ivr.storage.models import Base, Leader

STATUSES = ["terjadwal", "berlangsung", "selesai", "ditunda", "dibatalkan", "dipindahkan", "diwakilkan"]
REGISTERED = "081234567890"  # a demo officer (ivr.seed.DEMO_CALLERS)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):7.1f} ms   p99 {percentile(values, 0.99):7.1f} ms   "
        f"min {min(values):6.1f}   max {max(values):7.1f}   n={len(values)}"
    )


async def create_schema(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    await engine.dispose()


def change_for(item: store.ItemView, n: int, day: dt.date) -> dict[str, Any]:
    """A change whose read-back text is new: another status, and a note that
    names the change (so no earlier rendering can match)."""
    status = random.choice([s for s in STATUSES if s != item.status])
    changes: dict[str, Any] = {"status": status, "note": f"Pembaruan nomor {n}: mohon konfirmasi kehadiran"}
    if status == "dipindahkan":
        changes["new_date"] = day + dt.timedelta(days=random.randint(1, 3))
        changes["new_start"] = dt.time(random.randint(7, 15), 0)
    if status == "diwakilkan":
        changes["representative"] = random.choice(["Asisten Pemerintahan", "Kepala Dinas Kominfo", "Camat Wanadadi"])
    return changes


async def affected_texts(sessions: Any, days: set[store.DayKey]) -> list[str]:
    texts: list[str] = []
    async with sessions() as session:
        for leader_id, day in days:
            texts += day_readback(await store.load_day(session, leader_id, day)).texts
    return texts


async def apply_change(runtime: Any, agenda: Any, item_id: int, n: int) -> set[store.DayKey]:
    """Change an item as the API does: commit, then notify the touched days."""
    today = agenda.today()
    async with runtime.sessions.begin() as session:
        current = await store.get_item(session, item_id)
        before, after = await store.update_item(session, item_id, change_for(current, n, today), by="bench")
    days = store.affected_days(before) | store.affected_days(after)
    agenda.notify_days(days)
    return days


async def bench_changes(runtime: Any, agenda: Any, item_ids: list[int], count: int) -> dict[str, Any]:
    speech = runtime.speech
    latencies: list[float] = []
    synthesized_before = agenda.stats()["texts_synthesized"]
    for n in range(count):
        started = time.perf_counter()
        days = await apply_change(runtime, agenda, random.choice(item_ids), n)
        await asyncio.wait_for(agenda.prerenderer.wait_idle(), 60)
        latencies.append((time.perf_counter() - started) * 1000)
        missing = [t for t in await affected_texts(runtime.sessions, days) if speech.cached(t) is None]
        assert not missing, f"not cached after the prerenderer went idle: {missing[:1]}"
    # A burst: ten edits at once are debounced and rendered as one batch.
    started = time.perf_counter()
    for n in range(10):
        await apply_change(runtime, agenda, random.choice(item_ids), 10_000 + n)
    await asyncio.wait_for(agenda.prerenderer.wait_idle(), 60)
    burst_ms = (time.perf_counter() - started) * 1000
    return {
        "latencies": latencies,
        "burst_ms": burst_ms,
        "synthesized": agenda.stats()["texts_synthesized"] - synthesized_before,
    }


class HitCounter:
    """Wraps ``AudioLibrary.speech_file``: was the text cached when a call asked?"""

    def __init__(self, audio: Any) -> None:
        self.audio = audio
        self.original = audio.speech_file
        self.hits = 0
        self.misses = 0
        self.seen: set[tuple[str, str]] = set()
        #: uniqueid -> True when that call found a read-back text uncached.
        self.missed_by: dict[str, bool] = {}
        audio.speech_file = self.speech_file

    async def speech_file(self, text: str) -> Path | None:
        from ivr.logs import _uniqueid  # the call's uniqueid (set per FastAGI session)

        uniqueid = _uniqueid.get()
        # Counted once per call and text: the flow checks a day's texts before
        # playing them, and the second lookup is a hit by construction.
        if (uniqueid, text) not in self.seen:
            self.seen.add((uniqueid, text))
            if self.audio.engine.cached(text) is not None:
                self.hits += 1
            else:
                self.misses += 1
                self.missed_by[uniqueid] = True
        return await self.original(text)


async def bench_calls(
    runtime: Any, agenda: Any, item_ids: list[int], calls: int, concurrency: int, change_every: int
) -> dict[str, Any]:
    port = runtime.agi.bound_port
    # One call first, not counted: it renders the caller's greeting (an office
    # added after start-up), which is not an agenda read-back.
    await place_call("127.0.0.1", port, caller_id=REGISTERED, keys=["1", "0"], timeout=60)
    counter = HitCounter(runtime.calls.audio)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(calls):
        queue.put_nowait(n)
    durations: list[float] = []
    fallbacks = 0
    failures = 0
    readbacks = 0
    calls_with_miss = 0
    unavailable = runtime.prompts.catalog.text("agenda.unavailable")
    changes = 0

    call_done = asyncio.Event()
    finished = False

    pending_changes: set[asyncio.Task[None]] = set()

    async def one_change(n: int) -> None:
        await asyncio.sleep(random.uniform(0.0, 0.5))
        await apply_change(runtime, agenda, random.choice(item_ids), 50_000 + n)

    async def changer() -> None:
        nonlocal changes
        # One change per ``change_every`` finished calls, each at a random moment
        # within the next half second, while the other calls go on.
        while not finished and change_every > 0:
            if changes < len(durations) // change_every:
                task = asyncio.create_task(one_change(changes))
                pending_changes.add(task)
                task.add_done_callback(pending_changes.discard)
                changes += 1
            else:
                await call_done.wait()
                call_done.clear()

    async def caller() -> None:
        nonlocal fallbacks, failures, readbacks, calls_with_miss
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            leader = random.choice("123")
            # main menu 1, leader, today's intro plays, 1 at once (tomorrow), 0 during tomorrow's intro
            keys = ["1", leader, "", "1", "0"]
            call_started = time.perf_counter()
            try:
                record = await place_call("127.0.0.1", port, caller_id=REGISTERED, keys=keys, timeout=60)
            except Exception:
                failures += 1
                continue
            durations.append(time.perf_counter() - call_started)
            call_done.set()
            readbacks += 2
            if counter.missed_by.pop(record.uniqueid, False):
                calls_with_miss += 1
            if unavailable in record.spoken:
                fallbacks += 1
            if record.audio_problems:
                failures += 1

    started = time.perf_counter()
    tasks = [asyncio.create_task(caller()) for _ in range(concurrency)]
    change_task = asyncio.create_task(changer())
    await asyncio.gather(*tasks)
    finished = True
    call_done.set()
    await change_task
    await asyncio.gather(*pending_changes)
    elapsed = time.perf_counter() - started
    total = counter.hits + counter.misses
    return {
        "calls": len(durations),
        "failures": failures,
        "changes_during_calls": changes,
        "text_lookups": total,
        "text_hits": counter.hits,
        "text_hit_rate": counter.hits / total if total else 0.0,
        "calls_all_cached": len(durations) - calls_with_miss,
        "call_hit_rate": (len(durations) - calls_with_miss) / len(durations) if durations else 0.0,
        "fallback_apologies": fallbacks,
        "call_wall_ms": [d * 1000 for d in durations],
        "elapsed_s": elapsed,
    }


async def bench_synthesis(runtime: Any, count: int) -> dict[str, Any]:
    speech = runtime.speech
    per_second: list[float] = []
    render_ms: list[float] = []
    audio_seconds: list[float] = []
    for n in range(count):
        words = random.randint(6, 40)
        text = (
            f"Pukul {random.randint(7, 20)}.{random.choice(['00', '15', '30', '45'])}: "
            + " ".join(random.choice(["rapat", "koordinasi", "kunjungan", "kerja", "desa", "pendopo", "bupati",
                                      "sosialisasi", "peresmian", "jembatan", "bantuan", "sosial"])
                       for _ in range(words))
            + f". Catatan nomor {n}."
        )  # fmt: skip
        assert speech.cached(text) is None
        started = time.perf_counter()
        path = await speech.render(text)
        elapsed = (time.perf_counter() - started) * 1000
        seconds = (path.stat().st_size - 44) / 16000
        render_ms.append(elapsed)
        audio_seconds.append(seconds)
        per_second.append(elapsed / seconds)
    return {"render_ms": render_ms, "audio_seconds": audio_seconds, "ms_per_audio_second": per_second}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    random.seed(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="bench-agenda-"))
    settings = Settings(
        data_dir=folder / "data",
        recordings_dir=folder / "recordings",
        database_url=f"sqlite+aiosqlite:///{folder / 'bench.sqlite3'}",
        agi_port=0,
        http_port=0,
        shutdown_grace_seconds=2,
        log_level="WARNING",
    )
    await create_schema(settings.effective_database_url)
    results: dict[str, Any] = {}
    started = time.perf_counter()
    async with running(settings, migrate=False) as runtime:
        results["startup_s"] = time.perf_counter() - started
        await seed_demo(runtime.sessions, settings)
        today = dt.datetime.now(dt.UTC).astimezone(settings.zone).date()
        async with runtime.sessions.begin() as session:
            await seed_demo_agenda(session, today)
            await settings_store.set_override(session, "open", by="bench")
        runtime.services.override.set("open")
        agenda = getattr(runtime.services, "agenda", None)
        own = agenda is None
        if own:  # until the lead wires the agenda into ivr.app.running
            agenda = build_agenda_services(settings, runtime.sessions, runtime.speech, config=AgendaConfig())
            runtime.services.agenda = agenda
            main_flow.ACTIONS["agenda"] = agenda_flow.menu_action
            await agenda.start()
        try:
            sweep_started = time.perf_counter()
            await asyncio.wait_for(agenda.prerenderer.wait_idle(), 120)
            results["startup_sweep_s"] = time.perf_counter() - sweep_started
            results["startup_sweep_synthesized"] = agenda.stats()["texts_synthesized"]
            async with runtime.sessions() as session:
                item_ids = list(await session.scalars(select(AgendaItem.id)))
                leaders = list(await session.scalars(select(Leader.id)))
            print(f"demo: {len(leaders)} leaders, {len(item_ids)} items; start-up sweep rendered "
                  f"{results['startup_sweep_synthesized']} texts in {results['startup_sweep_s']:.2f} s")  # fmt: skip

            changes = await bench_changes(runtime, agenda, item_ids, args.changes)
            results["changes"] = changes
            print(f"\n1. agenda change -> read-back cached ({args.changes} changes, one at a time)")
            print(f"   {summary(changes['latencies'])}")
            stats = agenda.stats()
            print(f"   (prerenderer's own measure, notify -> cached: p50 {stats['change_to_cached_p50_ms']} ms, "
                  f"p99 {stats['change_to_cached_p99_ms']} ms, burst included; "
                  f"debounce {agenda.config.prerender_debounce_ms:.0f} ms)")  # fmt: skip
            print(f"   texts synthesized: {changes['synthesized']}; a burst of 10 changes at once: "
                  f"{changes['burst_ms']:.0f} ms until all cached")  # fmt: skip

            calls = await bench_calls(runtime, agenda, item_ids, args.calls, args.concurrency, args.change_every)
            results["calls"] = {k: v for k, v in calls.items() if k != "call_wall_ms"}
            print(f"\n2. cache hits over {calls['calls']} simulated agenda calls ({args.concurrency} at a time, "
                  f"{calls['changes_during_calls']} agenda changes meanwhile)")  # fmt: skip
            print(f"   read-back texts: {calls['text_hits']}/{calls['text_lookups']} cached when asked = "
                  f"{100 * calls['text_hit_rate']:.2f} %")  # fmt: skip
            print(f"   calls that found every text cached: {calls['calls_all_cached']}/{calls['calls']} = "
                  f"{100 * calls['call_hit_rate']:.2f} %; apologies played: {calls['fallback_apologies']}; "
                  f"failed calls: {calls['failures']}")  # fmt: skip
            print(f"   wall time per call (simulated time is virtual): {summary(calls['call_wall_ms'])}; "
                  f"{calls['calls'] / calls['elapsed_s']:.0f} calls/s")  # fmt: skip

            synthesis = await bench_synthesis(runtime, args.synth)
            results["synthesis"] = synthesis
            total_ms = sum(synthesis["render_ms"])
            total_audio = sum(synthesis["audio_seconds"])
            print(f"\n3. synthesis ({args.synth} fresh texts, {runtime.settings.tts_workers} worker, "
                  f"rate {runtime.settings.tts_rate})")  # fmt: skip
            print(f"   per second of audio: p50 {statistics.median(synthesis['ms_per_audio_second']):.1f} ms, "
                  f"p99 {percentile(synthesis['ms_per_audio_second'], 0.99):.1f} ms; overall "
                  f"{total_ms / total_audio:.1f} ms per audio second ({total_audio:.0f} s of audio)")  # fmt: skip
            print(f"   per render: {summary(synthesis['render_ms'])}")
        finally:
            if own:
                await agenda.close()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--change-every", type=int, default=10, help="one agenda change per this many calls (0: no changes)"
    )
    parser.add_argument("--synth", type=int, default=40, help="fresh texts for the synthesis figure")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    logging.basicConfig(level=logging.ERROR)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    arguments = parse_args(parser, {"calls": 100, "changes": 10, "synth": 5})
    figures = asyncio.run(main(arguments))
    if arguments.json:
        arguments.json.write_text(json.dumps(figures, indent=2, default=str))
