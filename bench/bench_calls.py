"""Concurrent simulated calls against a real ``ivr serve`` process, with baselines.

One run, four parts (each prints its figures; `uptime` load average with each):

1. Moderate load: 10 channels placing the "menu" walk back to back with no
   pacing (the simulated Asterisk answers at once). Server CPU per call,
   calls/s and think time, for ``ivr serve`` (every record written), the floor
   (a logic-free asyncio FastAGI server) and panoramisk's FastAGI
   ``Application``; the last two send the exact command sequence ``ivr serve``
   sent for the walk (bench/baselines.py). Same client driver for all three.
2. Concurrency levels: N calls (default 100, 500, 1000, 2000), started over a
   ramp, walking a realistic mix (operator then a voice message, agenda
   read-back, a request with a recording, tracking a ticket) at human pace.
3. Database: the top level on SQLite and on PostgreSQL (a throwaway database
   created and dropped here): ticket and timeline rows written per second.

Think time is measured client-side (bench/driver.py): from our writing a
reply to the next command's arrival. CPU and RSS are the server process's
(CPU includes its speech workers), read from /proc. The open-files limit of
this process and of the servers is raised to the hard limit (setrlimit).

    .venv/bin/python bench/bench_calls.py              # the full run (~10 min on a quiet 2-core machine)
    .venv/bin/python bench/bench_calls.py --quick      # a smoke run (~1 min)
    .venv/bin/python bench/bench_calls.py --show       # each walk's conversation, then exit
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from common import load_average, parse_args
from driver import (
    Sampler,
    Stats,
    Walk,
    closed_loop,
    drive,
    free_port,
    percentile,
    raise_fd_limit,
    server_child_setup,
)
from sqlalchemy import func, make_url, select, text

from ivr.storage import models
from ivr.storage.database import create_engine

ROOT = Path(__file__).resolve().parents[1]
BASE_POSTGRES = "postgresql+asyncpg://root@127.0.0.1:5432"
REQUEST_DAY = (date.today() + timedelta(days=10)).strftime("%d%m%Y")


def walks(ticket: str) -> dict[str, Walk]:
    return {
        # The greeting, the main menu unanswered three times, goodbye.
        "menu": Walk("menu", ("", "", "")),
        # The main menu, a ticket number read back digit by digit with its
        # status, back to the main menu, hang up there.
        "track": Walk("track", ("3", f"{ticket}#", "0", "h"), expect=None),
        # The operator does not answer; a voice message; its ticket number.
        "message": Walk("message", ("0", "rec:2", "")),
        # The Bupati's agenda for today read back, back, hang up.
        "agenda": Walk("agenda", ("1", "1", "", "", "", "", "0", "h"), expect=None),
        # A request: kind, date, time, confirmed, described, saved, numbered.
        "request": Walk("request", ("2", "1", REQUEST_DAY, "0930", "1", "rec:3", "1", "")),
    }


#: The walks of the moderate-load comparison with the baselines.
COMPARED = ("menu", "track")
#: The realistic mix of the concurrency levels.
MIX = ("message", "agenda", "request", "track")


# --------------------------------------------------------------------------- servers

OPEN_OFFICE = """
import asyncio
from ivr.config import Settings
from ivr.storage import settings_store
from ivr.storage.database import create_engine, session_factory

async def main():
    engine = create_engine(Settings().effective_database_url)
    async with session_factory(engine).begin() as session:
        await settings_store.set_override(session, "open", by="bench")
    await engine.dispose()

asyncio.run(main())
"""


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    database_url: str
    #: The web app's base URL and a token that may read /metrics (ivr serve only).
    http: str = ""
    token: str = ""

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=90)


def start_ivr(folder: Path, database_url: str, max_sessions: int) -> Server:
    agi, http = free_port(), free_port()
    env = {
        **os.environ,
        "IVR_DATA_DIR": str(folder / "data"),
        "IVR_RECORDINGS_DIR": str(folder / "recordings"),
        "IVR_DATABASE_URL": database_url,
        "IVR_AGI_PORT": str(agi),
        "IVR_HTTP_PORT": str(http),
        "IVR_AGI_MAX_SESSIONS": str(max_sessions),
        "IVR_LOG_LEVEL": "WARNING",
    }
    ivr = [sys.executable, "-m", "ivr"]
    subprocess.run([*ivr, "seed", "--demo"], env=env, check=True, capture_output=True)
    # Office hours would send an evening run to the after-hours menu: walk the main menu.
    subprocess.run([sys.executable, "-c", OPEN_OFFICE], env=env, check=True)
    create_token = [*ivr, "tokens", "create", "--role", "admin", "--label", "bench"]
    token = subprocess.run(create_token, env=env, check=True, capture_output=True, text=True).stdout.strip()
    process = subprocess.Popen([*ivr, "serve"], env=env, preexec_fn=server_child_setup)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/api/health", timeout=1):
                print(f"ivr serve pid {process.pid} on {make_url(database_url).get_backend_name()}", flush=True)
                return Server(process, agi, database_url, f"http://127.0.0.1:{http}", token)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("ivr serve did not come up")


def start_baseline(kind: str, commands: Path) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "baselines.py"), kind, "--port", str(port), "--commands", str(commands)],
        stdout=subprocess.PIPE,
        preexec_fn=server_child_setup,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != b"ready":
        process.kill()
        raise SystemExit(f"baseline {kind} did not come up")
    return Server(process, port, "")


@contextmanager
def database_url(kind: str, folder: Path, postgres: str) -> Iterator[str]:
    """SQLite in the run's folder, or a throwaway PostgreSQL database, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{folder}/{kind}/ivr.sqlite3"
        return
    name = f"ivr_bench_{os.getpid()}"

    async def admin(statement: str) -> None:
        engine = create_engine(f"{postgres}/postgres", isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{postgres}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def stored_rows(database_url: str) -> tuple[int, int]:
    """(tickets, timeline events) in the server's database."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            tickets = await connection.scalar(select(func.count()).select_from(models.Ticket))
            events = await connection.scalar(select(func.count()).select_from(models.TicketEvent))
    finally:
        await engine.dispose()
    return int(tickets or 0), int(events or 0)


async def first_ticket(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            number = await connection.scalar(select(models.Ticket.number).order_by(models.Ticket.id).limit(1))
    finally:
        await engine.dispose()
    if not number:
        raise SystemExit("the warm-up call left no ticket")
    return str(number)


# --------------------------------------------------------------------------- measurements

THINK_BUCKET = re.compile(rb'^ivr_agi_step_think_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)$', re.MULTILINE)


def server_think_buckets(server: Server) -> dict[float, float]:
    """The server's own think-time histogram (``ivr_agi_step_think_seconds``,
    cumulative counts by upper bound) from its /metrics; empty for a baseline."""
    if not server.http:
        return {}
    request = urllib.request.Request(f"{server.http}/metrics", headers={"Authorization": f"Bearer {server.token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError:  # a version without /metrics: client-side figures only
        return {}
    return {float(bound): float(count) for bound, count in THINK_BUCKET.findall(body)}


def server_think_line(before: dict[float, float], after: dict[float, float]) -> str:
    """Server-side p50/p99 of the steps between two scrapes, as histogram bucket bounds."""
    counts = {bound: after[bound] - before.get(bound, 0.0) for bound in after}
    total = counts.get(float("inf"), 0.0)
    if not total:
        return ""

    def bound(fraction: float) -> str:
        upper = min(b for b, n in counts.items() if n >= fraction * total)
        return "> 5 s" if upper == float("inf") else f"<= {upper * 1000:g} ms"

    return f"server-side think p50 {bound(0.5)}, p99 {bound(0.99)}"


def think_line(stats: Stats) -> str:
    ms = [value * 1000 for value in stats.think]
    return f"think p50 {percentile(ms, 0.5):6.2f}  p99 {percentile(ms, 0.99):7.2f}  max {max(ms, default=0):7.1f} ms"


def outcome_line(stats: Stats, expected: int) -> str:
    errors = len(stats.errors) + sum(stats.unexpected.values()) + expected - stats.calls
    text_ = f"errors {errors}"
    if stats.errors:
        text_ += f" (first: {stats.errors[0]})"
    if stats.unexpected:
        text_ += f" {stats.unexpected}"
    if stats.resets:
        text_ += f", {stats.resets} connections reset by the server after its last command"
    return text_


async def moderate(server: Server, walk: Walk, calls: int, concurrency: int) -> dict[str, Any]:
    stats = Stats()
    think_before = server_think_buckets(server)
    sampler = Sampler(server.process.pid)
    await closed_loop(server.port, walk, calls, concurrency, stats)
    wall, cpu = await sampler.stop()
    return {
        "cpu_ms": cpu * 1000 / calls,
        "calls_per_s": calls / wall,
        "stats": stats,
        "server_think": server_think_line(think_before, server_think_buckets(server)),
    }


async def level(server: Server, table: dict[str, Walk], calls: int, pace: float, ramp: float) -> dict[str, Any]:
    stats = Stats()
    before = await stored_rows(server.database_url)
    think_before = server_think_buckets(server)
    client_cpu = time.process_time()
    sampler = Sampler(server.process.pid)
    mix = itertools.cycle(MIX)

    async def placed(delay: float, walk: Walk) -> None:
        await asyncio.sleep(delay)
        await drive(server.port, walk, stats, pace=pace)

    await asyncio.gather(*(placed(ramp * i / calls, table[next(mix)]) for i in range(calls)))
    wall, cpu = await sampler.stop()
    client_cpu = time.process_time() - client_cpu
    after = await stored_rows(server.database_url)
    setup_ms = [value * 1000 for value in stats.setup]
    return {
        "stats": stats,
        "wall": wall,
        "cpu_ms": cpu * 1000 / calls,
        "setup_p99": percentile(setup_ms, 0.99),
        "rss_base": sampler.base_rss,
        "rss_peak": sampler.peak_rss,
        "tickets_per_s": (after[0] - before[0]) / wall,
        "events_per_s": (after[1] - before[1]) / wall,
        "server_think": server_think_line(think_before, server_think_buckets(server)),
        "client_cpu": client_cpu / wall,
    }


def print_level(calls: int, r: dict[str, Any]) -> None:
    stats: Stats = r["stats"]
    per_call = (r["rss_peak"] - r["rss_base"]) / max(1, stats.peak_active)
    print(
        f"  N={calls:5d}  peak active {stats.peak_active:5d}  {calls / r['wall']:6.1f} calls/s "
        f"(setup p99 {r['setup_p99']:.1f} ms)  {think_line(stats)}  steps {len(stats.think)}"
    )
    print(
        f"           {r['server_think']}; this client used {r['client_cpu'] * 100:.0f}% of a core "
        "(near 100%: the client-side think times are the client's)"
    )
    print(
        f"           RSS {r['rss_base'] / 1024:.1f} -> {r['rss_peak'] / 1024:.1f} MiB = "
        f"{per_call:.1f} KiB per active call  CPU {r['cpu_ms']:.2f} ms/call  "
        f"writes: {r['tickets_per_s']:.1f} tickets/s {r['events_per_s']:.0f} timeline rows/s  "
        f"{outcome_line(stats, calls)}  load {load_average()}"
    )


async def warm_up(server: Server, table: dict[str, Walk], show: bool) -> dict[str, list[bytes]]:
    """One call per walk: fills the caches, checks every walk ends OK, and
    captures the command sequence ``ivr serve`` sends for it."""
    sequences = {}
    for name, walk in table.items():
        stats = Stats()
        simulator = await drive(server.port, walk, stats)
        if show:
            print(f"--- {name}: keys {list(walk.keys)}, {len(simulator.record.commands)} commands")
            print(simulator.record.render())
        if stats.errors or stats.unexpected:
            raise SystemExit(f"walk {name} did not end OK: {stats.errors or stats.results}")
        sequences[name] = [line if line.endswith(b"\n") else line + b"\n" for line in simulator.record.commands]
    return sequences


async def bootstrap(server: Server, show: bool) -> tuple[dict[str, Walk], dict[str, list[bytes]]]:
    # The tracking walk needs a ticket: the message walk's warm-up call makes one.
    message = walks("")["message"]
    await drive(server.port, message, Stats())
    table = walks(await first_ticket(server.database_url))
    return table, await warm_up(server, table, show)


async def idle_cpu_ms_per_s(server: Server, seconds: float = 3.0) -> float:
    """The server's CPU with no call (its background loops), per second."""
    sampler = Sampler(server.process.pid)
    await asyncio.sleep(seconds)
    wall, cpu = await sampler.stop()
    return cpu * 1000 / wall


def run_moderate(
    server: Server, database: str, table: dict[str, Walk], sequences: dict[str, list[bytes]], args: argparse.Namespace
) -> None:
    idle = asyncio.run(idle_cpu_ms_per_s(server))
    print(
        f"\n[1] moderate load on {database}: {args.concurrency} channels, {args.moderate_calls} calls per walk, "
        f"no pacing; server CPU per call (idle server: {idle:.2f} ms CPU/s, included)"
    )
    for name in args.compare:
        walk, sequence = table[name], sequences[name]
        print(f"  walk '{name}': {len(sequence)} AGI commands, keys {list(walk.keys)}")
        figures = {"ivr serve": asyncio.run(moderate(server, walk, args.moderate_calls, args.concurrency))}
        if database == "sqlite":  # the baselines have no database: once is enough
            figures |= run_baselines(walk, sequence, args)
        for kind, r in figures.items():
            stats: Stats = r["stats"]
            print(
                f"    {kind:10s} CPU {r['cpu_ms']:6.2f} ms/call  {r['calls_per_s']:6.1f} calls/s  {think_line(stats)}  "
                f"{outcome_line(stats, args.moderate_calls)}"
            )
            if r["server_think"]:
                print(f"               {r['server_think']}")
        if "floor" in figures:
            ours, floor, panoramisk = figures["ivr serve"], figures["floor"], figures["panoramisk"]
            print(
                f"    ivr serve / floor CPU per call: {ours['cpu_ms'] / floor['cpu_ms']:.2f}x (target <= 3x); "
                f"throughput / panoramisk: {ours['calls_per_s'] / panoramisk['calls_per_s']:.2f}x; "
                f"load {load_average()}"
            )
        else:
            print(f"    (PostgreSQL's own CPU is not included) load {load_average()}")


def run_baselines(walk: Walk, sequence: list[bytes], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    figures = {}
    with tempfile.NamedTemporaryFile("wb", suffix=".txt") as commands:
        commands.write(b"".join(sequence))
        commands.flush()
        for kind in ("floor", "panoramisk"):
            baseline = start_baseline(kind, Path(commands.name))
            try:
                figures[kind] = asyncio.run(moderate(baseline, walk, args.moderate_calls, args.concurrency))
            finally:
                baseline.stop()
    return figures


def run_levels(server: Server, table: dict[str, Walk], levels: list[int], args: argparse.Namespace) -> None:
    for calls in levels:
        ramp = args.ramp if args.ramp is not None else calls / 100
        r = asyncio.run(level(server, table, calls, args.pace, ramp))
        print_level(calls, r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="*", default=[100, 500, 1000, 2000], help="concurrency levels")
    parser.add_argument("--pace", type=float, default=1.0, help="mean seconds the simulated channel takes per command")
    parser.add_argument("--ramp", type=float, help="seconds over which a level's calls start (default N/100)")
    parser.add_argument(
        "--moderate-calls", type=int, default=400, help="calls per walk in the moderate-load comparison"
    )
    parser.add_argument("--concurrency", type=int, default=10, help="channels in the moderate-load comparison")
    parser.add_argument("--compare", nargs="*", default=list(COMPARED), help="walks of the moderate-load comparison")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres", default=BASE_POSTGRES, help="server URL for the throwaway database")
    parser.add_argument("--skip", nargs="*", default=[], choices=["moderate", "levels"])
    parser.add_argument("--show", action="store_true", help="print each walk's conversation and exit")
    args = parse_args(parser, {"calls": [50, 200], "pace": 0.3, "moderate_calls": 100})
    levels = args.calls
    limit = raise_fd_limit()
    max_sessions = max(2000, max(levels) + 50)
    print(f"open files limit raised to {limit}; IVR_AGI_MAX_SESSIONS {max_sessions}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
        for database in databases:
            with database_url(database, folder, args.postgres) as url:
                server = start_ivr(folder / database, url, max_sessions)
                try:
                    table, sequences = asyncio.run(bootstrap(server, args.show))
                    if args.show:
                        return
                    if "moderate" not in args.skip:
                        run_moderate(server, database, table, sequences, args)
                    if "levels" not in args.skip:
                        # The database comparison: the other database at the top level only.
                        top = levels if database == databases[0] else [max(levels)]
                        print(f"\n[2] concurrency on {database}: mix {list(MIX)}, pace {args.pace} s/command (+-50%)")
                        run_levels(server, table, top, args)
                finally:
                    server.stop()


if __name__ == "__main__":
    main()
