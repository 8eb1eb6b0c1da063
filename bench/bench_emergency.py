"""Emergency routing: how fast the first officer's phone rings, and how punctual callbacks are.

Starts a server (this script with ``--serve``: ``ivr.app.running`` plus the
emergency services, SQLite in a temporary folder unless ``--database-url``),
then measures from this process:

1. **9 -> first Dial**: simulated callers (over real FastAGI) press 9 in the
   main menu; the time from the simulated Asterisk sending the ``GET DATA``
   reply with the 9 to receiving the server's first ``EXEC Dial`` (in between
   the server plans the chain from the cached roster, plays the "connecting"
   prompt and sets two channel variables). ``--calls`` callers, ``--concurrency``
   at a time; each hangs up while its first Dial rings.
2. **Callback punctuality under load**: ``--alarms`` unanswered emergencies are
   written to the database at once, their first callbacks due 3-5 s later; the
   server's callback loop originates them over AMI to the fake AMI
   (``tests/fake_ami.py``, every phone rings 0.5 s and gives up), level by level
   every ``--interval`` seconds, 2 levels x 2 rounds. Lateness is
   ``sent_at - due_at`` of every job; each job must be originated exactly once.

    .venv/bin/python bench/bench_emergency.py [--quick]
    .venv/bin/python bench/bench_emergency.py --calls 500 --concurrency 50 --alarms 200
    .venv/bin/python bench/bench_emergency.py --database-url postgresql+asyncpg://root@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import parse_args

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fake AMI and the screening simulator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


# -- the server -------------------------------------------------------------------------


async def serve() -> None:
    from screening import emergency_desk

    from ivr.app import running
    from ivr.config import load_settings
    from ivr.emergency import store
    from ivr.emergency.roster import Level, Officer, Roster, Shift
    from ivr.logs import setup_logging
    from ivr.seed import seed_demo
    from ivr.storage import roster_models, settings_store  # noqa: F401 - roster_models: its tables
    from ivr.storage.database import create_engine
    from ivr.storage.models import Base

    settings = load_settings()
    setup_logging(os.environ.get("BENCH_SERVER_LOG", "ERROR"))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.effective_database_url)
    async with engine.begin() as connection:  # the schema straight from the models, as the tests do
        await connection.run_sync(Base.metadata.create_all)
    await engine.dispose()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with running(settings, migrate=False) as runtime, emergency_desk(runtime) as desk:
        await seed_demo(runtime.sessions, settings)
        roster = Roster(
            (Officer("rudi", "Rudi Hartono", ("PJSIP/201",)), Officer("sri", "Sri Mulyani", ("PJSIP/202",))),
            (
                Shift(
                    "Piket",
                    datetime(2020, 1, 1),
                    datetime(2020, 1, 2),
                    "Asia/Jakarta",
                    "daily",
                    levels=(Level(("rudi",)), Level(("sri",))),
                ),
            ),
        )
        async with runtime.sessions.begin() as session:
            await store.save_roster(session, roster, by="bench")
        await desk.roster.refresh(force=True)
        async with runtime.sessions.begin() as session:  # office open: callers reach the main menu
            await settings_store.set_override(session, "open", by="bench")
        runtime.services.override.set("open")
        print(json.dumps({"agi_port": runtime.agi.bound_port}), flush=True)
        await stop.wait()


def start_server(folder: Path, args: argparse.Namespace, ami_port: int) -> tuple[subprocess.Popen[str], int]:
    env = {
        **os.environ,
        "IVR_DATA_DIR": str(folder / "data"),
        "IVR_RECORDINGS_DIR": str(folder / "recordings"),
        "IVR_AGI_PORT": "0",
        "IVR_HTTP_PORT": "0",
        "IVR_LOG_LEVEL": "WARNING",
        "IVR_AMI_HOST": "127.0.0.1",
        "IVR_AMI_PORT": str(ami_port),
        "IVR_AMI_USERNAME": "ivr",
        "IVR_AMI_SECRET": "ivrsecret",
        "IVR_EMERGENCY_CALLBACK_INTERVAL_SECONDS": str(args.interval),
        "IVR_EMERGENCY_CALLBACK_ROUNDS": "2",
        "IVR_EMERGENCY_CALLBACK_RING_SECONDS": "1",
        "IVR_EMERGENCY_CALLBACK_POLL_SECONDS": "1",
        "IVR_AGI_MAX_SESSIONS": "5000",
    }
    if args.database_url:
        env["IVR_DATABASE_URL"] = args.database_url
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line:
        raise SystemExit("the server did not start")
    return server, int(json.loads(line)["agi_port"])


# -- 1. pressing 9 to the first Dial -------------------------------------------------------------


async def first_dial_latencies(port: int, calls: int, concurrency: int) -> tuple[list[float], int]:
    from screening import ScreeningAsterisk

    from ivr.simulator import CallSetup

    class Timed(ScreeningAsterisk):
        pressed: float | None = None
        dialled: float | None = None

        async def execute(self, raw: bytes) -> bytes:
            if self.dialled is None and raw.startswith((b'EXEC "Dial"', b"EXEC Dial")):
                self.dialled = time.perf_counter()
            reply = await super().execute(raw)
            if self.pressed is None and raw.startswith(b"GET DATA") and reply.startswith(b"200 result=9"):
                self.pressed = time.perf_counter()  # the reply goes on the wire right after this
            return reply

    latencies: list[float] = []
    errors = 0
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        nonlocal errors
        setup = CallSetup(script="main", request_host=f"127.0.0.1:{port}", caller_id=f"08990000{index % 10:04d}")
        sim = Timed(setup, agi=("127.0.0.1", port), phones={}, hangup_at_dial=1, keys=["9"])
        async with gate:
            try:
                await sim.run("127.0.0.1", port, timeout=60)
            except (TimeoutError, OSError):
                errors += 1
                return
        if sim.pressed is None or sim.dialled is None:
            errors += 1
        else:
            latencies.append(sim.dialled - sim.pressed)

    await one(-1)  # warm-up: prompts and the caller-number read-back get synthesized once
    latencies.clear()
    await asyncio.gather(*(one(i) for i in range(calls)))
    return latencies, errors


# -- 2. callback punctuality ---------------------------------------------------------------------


async def callback_lateness(folder: Path, args: argparse.Namespace, fake: Any) -> dict[str, Any]:
    from fake_ami import OriginateOutcome

    from ivr.config import Settings
    from ivr.emergency.callbacks import AlarmDraft, create_alarm
    from ivr.storage.database import create_engine, session_factory
    from ivr.storage.roster_models import EmergencyAlarm, EmergencyCallback

    fake.default_outcome = OriginateOutcome(response="Failure", reason=3, delay=0.5)
    url = args.database_url or Settings(data_dir=folder / "data").effective_database_url
    engine = create_engine(url)
    sessions = session_factory(engine)
    start = datetime.now(UTC) + timedelta(seconds=3)
    async with sessions.begin() as session:
        ids = []
        for index in range(args.alarms):
            draft = AlarmDraft(
                call_uniqueid=f"bench-{uuid.uuid4().hex[:12]}",
                raised_at=start + timedelta(seconds=2 * index / args.alarms),
                caller_number="085712345678",
                caller_spoken="Dinas Kesehatan",
            )
            alarm_id, _ = await create_alarm(session, draft)
            ids.append(alarm_id)
    from sqlalchemy import func, select

    expected = args.alarms * 4
    deadline = time.monotonic() + 60 + 4 * args.interval
    while time.monotonic() < deadline:
        async with sessions() as session:
            open_count = await session.scalar(
                select(func.count(EmergencyAlarm.id)).where(EmergencyAlarm.id.in_(ids), EmergencyAlarm.state == "open")
            )
        if open_count == 0:
            break
        await asyncio.sleep(0.5)
    async with sessions() as session:
        jobs = list(await session.scalars(select(EmergencyCallback).where(EmergencyCallback.alarm_id.in_(ids))))
    await engine.dispose()
    sent = [j for j in jobs if j.sent_at is not None]
    lateness = [(j.sent_at - j.due_at).total_seconds() for j in sent]
    per_job = collections.Counter(
        line.split("=", 1)[1]
        for conn in fake.connections
        for raw in conn.raw_actions
        if b"Action: Originate" in raw
        for line in raw.decode().split("\r\n")
        if line.startswith("Variable: IVR_CALLBACK_JOB=")
    )
    first_steps = [(j.sent_at - j.due_at).total_seconds() for j in sent if j.step == 0]
    later_steps = [(j.sent_at - j.due_at).total_seconds() for j in sent if j.step > 0]
    return {
        "jobs": len(jobs),
        "expected": expected,
        "sent": len(sent),
        "originates": sum(per_job.values()),
        "doubled": sum(1 for n in per_job.values() if n > 1),
        "p50": percentile(lateness, 0.5),
        "p99": percentile(lateness, 0.99),
        "max": max(lateness),
        "first_p99": percentile(first_steps, 0.99) if first_steps else float("nan"),
        "later_p99": percentile(later_steps, 0.99) if later_steps else float("nan"),
        "early": sum(1 for v in lateness if v < 0),
    }


async def measure(args: argparse.Namespace) -> None:
    from fake_ami import FakeAMI

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        async with FakeAMI() as fake:
            server, port = await asyncio.to_thread(start_server, folder, args, fake.port)
            try:
                await fake.wait_connection(1, timeout=30)
                latencies, errors = await first_dial_latencies(port, args.calls, args.concurrency)
                ms = [v * 1000 for v in latencies]
                print(
                    f"9 -> first Dial: {len(ms)} calls ({args.concurrency} at a time), {errors} errors: "
                    f"p50 {statistics.median(ms):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, max {max(ms):.2f} ms"
                )
                result = await callback_lateness(folder, args, fake)
                print(
                    f"callbacks: {args.alarms} open alarms, {result['sent']}/{result['expected']} jobs sent, "
                    f"{result['originates']} Originates, {result['doubled']} doubled, {result['early']} early; "
                    f"lateness p50 {result['p50'] * 1000:.1f} ms, p99 {result['p99'] * 1000:.1f} ms, "
                    f"max {result['max'] * 1000:.1f} ms (first callbacks p99 {result['first_p99'] * 1000:.1f} ms, "
                    f"next levels p99 {result['later_p99'] * 1000:.1f} ms)"
                )
            finally:
                server.send_signal(signal.SIGTERM)
                await asyncio.to_thread(server.wait, 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--alarms", type=int, default=200)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between callback levels")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temporary folder")
    if "--serve" in sys.argv:  # the server half: its stdout talks to the measuring half
        asyncio.run(serve())
        return
    asyncio.run(measure(parse_args(parser, {"calls": 40, "concurrency": 10, "alarms": 40})))


if __name__ == "__main__":
    main()
