"""Concurrent simulated calls against a real ``ivr serve`` process.

Starts ``ivr serve`` (SQLite in a temporary folder, demo data), then places N
simultaneous calls over FastAGI from this process, each walking the main menu:
greeting, menu, operator (no answer), a 2 s voice message, the ticket number read
back, goodbye: about 30 AGI commands and three database checkpoints per call.

Server think time is the time from this client writing a reply to receiving the
server's next command (the server's work per AGI step plus loopback). RSS is the
server's, read from /proc: baseline before the calls, peak while they all run.

    .venv/bin/python bench/bench_calls.py                # N = 100, 500, 1000
    .venv/bin/python bench/bench_calls.py --calls 50 --pace 0
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ivr.simulator import CallSetup, SimulatedAsterisk

by_command: dict[str, list[float]] = {}
WALK = ["0", "rec:2", ""]
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def one_call(port: int, pace: float, think: list[float], errors: list[str]) -> None:
    simulator = SimulatedAsterisk(
        CallSetup(caller_id="081234567890"), keys=list(WALK), dial_outcomes={"*": "NOANSWER"}
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        errors.append(f"connect: {exc}")
        return
    try:
        async with asyncio.timeout(300):
            writer.write(simulator.environment())
            await writer.drain()
            sent = time.perf_counter()
            previous = "ENV"
            while True:
                line = await reader.readline()
                if not line:
                    break
                think.append(time.perf_counter() - sent)
                verb = line.split(b" ")[0].strip().decode(errors="replace")
                by_command.setdefault(f"{verb} after {previous}", []).append(think[-1])
                previous = verb
                reply = await simulator.execute(line)
                if pace:
                    await asyncio.sleep(pace)
                writer.write(reply)
                await writer.drain()
                sent = time.perf_counter()
        if simulator.record.result != "OK":
            errors.append(f"result {simulator.record.result}")
    except (TimeoutError, OSError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def run_level(port: int, calls: int, pace: float, server_pid: int) -> dict[str, float]:
    think: list[float] = []
    errors: list[str] = []
    baseline = rss_kib(server_pid, "VmRSS")
    cpu_before = cpu_seconds(server_pid)
    peak = baseline
    started = time.perf_counter()
    tasks = [asyncio.create_task(one_call(port, pace, think, errors)) for _ in range(calls)]
    pending = set(tasks)
    while pending:
        _, pending = await asyncio.wait(pending, timeout=0.2)
        peak = max(peak, rss_kib(server_pid, "VmRSS"))
    elapsed = time.perf_counter() - started
    ordered = sorted(think)
    return {
        "calls": calls,
        "errors": len(errors),
        "seconds": elapsed,
        "calls_per_s": calls / elapsed,
        "steps": len(think),
        "think_p50_ms": statistics.median(ordered) * 1000,
        "think_p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
        "think_max_ms": ordered[-1] * 1000,
        "baseline_rss_mib": baseline / 1024,
        "peak_rss_mib": peak / 1024,
        "rss_per_call_kib": (peak - baseline) / calls,
        "server_cpu_ms_per_call": (cpu_seconds(server_pid) - cpu_before) * 1000 / calls,
        "first_error": errors[0] if errors else "",
    }


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


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    agi, http = free_port(), free_port()
    env = {
        **os.environ,
        "IVR_DATA_DIR": str(folder / "data"),
        "IVR_RECORDINGS_DIR": str(folder / "recordings"),
        "IVR_AGI_PORT": str(agi),
        "IVR_HTTP_PORT": str(http),
        "IVR_LOG_LEVEL": "WARNING",
    }
    ivr = [sys.executable, "-m", "ivr"]
    subprocess.run([*ivr, "seed", "--demo"], env=env, check=True, capture_output=True)
    # Office hours would send an evening run to the after-hours menu: walk the main menu.
    subprocess.run([sys.executable, "-c", OPEN_OFFICE], env=env, check=True)
    server = subprocess.Popen([*ivr, "serve"], env=env, preexec_fn=raise_fd_limit)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/api/health", timeout=1):
                return server, agi
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("ivr serve did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="*", default=[100, 500, 1000])
    parser.add_argument("--pace", type=float, default=0.05, help="seconds the simulated Asterisk takes per command")
    args = parser.parse_args()
    raise_fd_limit()
    with tempfile.TemporaryDirectory() as tmp:
        server, port = start_server(Path(tmp))
        try:
            print(f"ivr serve pid {server.pid}; walk {WALK}; pace {args.pace * 1000:.0f} ms per command")
            header = "calls errors  calls/s  steps  think p50  p99   max ms  RSS base  peak MiB  KiB/call  CPU ms/call"
            print(header)
            for calls in args.calls:
                r = asyncio.run(run_level(port, calls, args.pace, server.pid))
                print(
                    f"{r['calls']:5d} {r['errors']:6d} {r['calls_per_s']:8.1f} {r['steps']:6d} "
                    f"{r['think_p50_ms']:9.2f} {r['think_p99_ms']:6.2f} {r['think_max_ms']:6.1f} "
                    f"{r['baseline_rss_mib']:9.1f} {r['peak_rss_mib']:9.1f} {r['rss_per_call_kib']:9.1f} "
                    f"{r['server_cpu_ms_per_call']:11.2f}"
                )
                if os.environ.get("BENCH_DETAIL"):
                    for name, values in sorted(by_command.items(), key=lambda kv: -max(kv[1])):
                        p50, worst = statistics.median(values) * 1000, max(values) * 1000
                        print(f"      {name:30s} n={len(values):5d} p50={p50:8.2f} max={worst:8.1f}")
                    by_command.clear()
                if r["first_error"]:
                    print(f"      first error: {r['first_error']}")
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
