"""The one client driver every FastAGI benchmark uses, and process measurements.

A driven call is a ``SimulatedAsterisk`` channel (the transcripts' bytes) on a
real TCP connection. Think time is measured on this, the client side: from the
moment we finish writing a reply (or the environment) to the moment the
server's next command line has arrived. It is the server's work for one AGI
step plus loopback and this process's own scheduling delay, so it can only
overstate the server's think time.

Server CPU and memory are read from /proc for the server process and its
children (the speech workers), never for this process.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import random
import resource
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ivr.simulator import CallSetup, SimulatedAsterisk

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Walk:
    """A caller's path through the IVR: the keys pressed at each input moment
    and how dialed targets answer."""

    name: str
    keys: tuple[str, ...]
    caller_id: str = "081234567890"
    dial: tuple[tuple[str, str], ...] = (("*", "NOANSWER"),)
    #: The IVR_RESULT the dialplan gets at the end (None: the caller hangs up first).
    expect: str | None = "OK"

    def simulator(self) -> SimulatedAsterisk:
        setup = CallSetup(caller_id=self.caller_id)
        return SimulatedAsterisk(setup, keys=list(self.keys), dial_outcomes=dict(self.dial))


@dataclass
class Stats:
    """What the driven calls saw, for one measurement."""

    think: list[float] = field(default_factory=list)
    setup: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    results: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    resets: int = 0
    active: int = 0
    peak_active: int = 0

    def add_result(self, walk: Walk, result: str | None) -> None:
        key = "expected" if result == walk.expect else f"{walk.name}: IVR_RESULT={result}"
        self.results[key] = self.results.get(key, 0) + 1

    @property
    def unexpected(self) -> dict[str, int]:
        return {result: n for result, n in self.results.items() if result != "expected"}


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def drive(
    port: int,
    walk: Walk,
    stats: Stats,
    *,
    pace: float = 0.0,
    timeout: float = 600.0,
) -> SimulatedAsterisk:
    """Place one call. ``pace`` is how long, on average, the simulated channel
    takes per command (prompt playing, caller thinking): a uniformly random
    0.5-1.5 times it, so calls drift apart as real ones do."""
    simulator = walk.simulator()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        stats.errors.append(f"connect: {exc}")
        return simulator
    stats.active += 1
    stats.peak_active = max(stats.peak_active, stats.active)
    try:
        async with asyncio.timeout(timeout):
            writer.write(simulator.environment())
            await writer.drain()
            sent = started = time.perf_counter()
            first = True
            while True:
                try:
                    line = await reader.readline()
                except ConnectionResetError:
                    # The server closed with our last reply unread (panoramisk
                    # does): the call is over, but Asterisk would see a reset.
                    stats.resets += 1
                    break
                if not line:
                    break
                arrived = time.perf_counter()
                (stats.setup if first else stats.think).append(arrived - (started if first else sent))
                first = False
                reply = await simulator.execute(line)
                if not reply:  # ``failure``: Asterisk ends the AGI without a reply
                    break
                if pace:
                    await asyncio.sleep(pace * random.uniform(0.5, 1.5))
                writer.write(reply)
                await writer.drain()
                sent = time.perf_counter()
        stats.add_result(walk, simulator.record.result)
    except (TimeoutError, OSError) as exc:
        stats.errors.append(f"{walk.name}: {type(exc).__name__}: {exc}")
    finally:
        stats.active -= 1
        stats.calls += 1
        writer.close()
    return simulator


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one (2,000 calls need 2,000
    sockets on each side). Returns the new limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def server_child_setup() -> None:
    """``preexec_fn`` of a server the bench starts: the open-files limit
    raised, and SIGTERM when the bench dies (killed, not just ended), so that
    no server is left running and skewing the next run's figures."""
    raise_fd_limit()
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its live descendants."""
    total = 0.0
    for member in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


def rss_kib(pid: int) -> int:
    """Resident memory of the process itself (the calls live there, not in the speech workers)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler:
    """Samples a server's RSS while a measurement runs, and its CPU around it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.base_rss = rss_kib(pid)
        self.peak_rss = self.base_rss
        self.cpu_before = tree_cpu_seconds(pid)
        self.started = time.perf_counter()
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            self.peak_rss = max(self.peak_rss, rss_kib(self.pid))
            await asyncio.sleep(0.1)

    async def stop(self) -> tuple[float, float]:
        """Returns (wall seconds, server CPU seconds) since the start."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.peak_rss = max(self.peak_rss, rss_kib(self.pid))
        return time.perf_counter() - self.started, tree_cpu_seconds(self.pid) - self.cpu_before


async def closed_loop(port: int, walk: Walk, calls: int, concurrency: int, stats: Stats) -> None:
    """``concurrency`` channels, each placing calls back to back with no pacing
    (the fake answers at once) until ``calls`` are done."""
    remaining = iter(range(calls))

    async def channel() -> None:
        for _ in remaining:
            await drive(port, walk, stats)

    await asyncio.gather(*(channel() for _ in range(concurrency)))
