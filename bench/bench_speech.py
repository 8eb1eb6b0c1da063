"""Speech pipeline benchmark: real pyttsx3 + espeak-ng in forkserver worker pools.

Prints, for the current machine:

* cold start: pool start (forkserver, imports, engine init, warm-up) and the first
  render, and the first render's cost per second of audio;
* warm misses: normalize -> worker -> pyttsx3 -> soxr -> cache, per request and per
  second of audio, p50/p99;
* pool throughput with 1 and 2 workers for concurrent distinct misses, with the
  event-loop lag seen meanwhile (the server keeps answering calls during renders);
* cache hits: ``render()`` and ``cached()`` latency, p50/p99;
* recovery: time from a hung synthesis to the next successful render.

Run: ``.venv/bin/python bench/bench_speech.py [--quick] [--misses 40] [--burst 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from common import parse_args

from ivr.speech import audio, worker
from ivr.speech.tts import SpeechEngine, SpeechUnavailable, Voice
from ivr.speech.worker import SynthJob, SynthResult

SENTENCE = (
    "Agenda Bupati hari Senin, 11/08/2025. Pukul 08.30 WIB, sosialisasi Layanan Call Center "
    "Protokol di Pendopo Bupati, nomor {n}."
)


def synth_hanging_on_marker(job: SynthJob) -> SynthResult:
    """Worker seam for the recovery measurement (top-level: must pickle)."""
    if "macet" in job.text:
        time.sleep(3600)
    return worker.synthesize(job)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(label: str, values: list[float], unit: str = "ms") -> str:
    return (
        f"  {label:<34} p50 {statistics.median(values):8.2f} {unit}   p99 {pct(values, 0.99):8.2f} {unit}"
        f"   min {min(values):8.2f}   max {max(values):8.2f}   n={len(values)}"
    )


async def loop_lag_during(work: Callable[[], Awaitable[None]]) -> float:
    """Max extra delay of a 5 ms ticker while ``work`` runs (event-loop responsiveness)."""
    worst = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - before - 0.005)

    probe = asyncio.create_task(ticker())
    try:
        await work()
    finally:
        stop.set()
        await probe
    return worst * 1000


async def concurrent_misses(engine: SpeechEngine, texts: list[str]) -> tuple[float, float, list[float], float]:
    """Render ``texts`` all at once; return makespan (s), loop lag (ms), latencies (ms), audio (s)."""
    latencies: list[float] = []
    paths: list[Path] = []

    async def one(text: str) -> None:
        t = time.perf_counter()
        paths.append(await engine.render(text, timeout=60.0))
        latencies.append((time.perf_counter() - t) * 1000)

    async def all_at_once() -> None:
        async with asyncio.TaskGroup() as group:
            for text in texts:
                group.create_task(one(text))

    started = time.perf_counter()
    lag_ms = await loop_lag_during(all_at_once)
    makespan = time.perf_counter() - started
    return makespan, lag_ms, latencies, sum(audio.wav_info(p).seconds for p in paths)


async def bench(misses: int, burst: int) -> None:
    versions = worker.engine_versions()
    print(f"espeak-ng {versions['espeak']}, pyttsx3 {versions['pyttsx3']}, Python {sys.version.split()[0]}")
    print(f"voice {Voice()}\n")
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        cache = Path(tmp)

        # ---- cold start + warm misses (1 worker)
        t0 = time.perf_counter()
        engine = SpeechEngine(cache / "one", workers=1, timeout=10.0)
        await engine.start()
        started_ms = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        first = await engine.render(SENTENCE.format(n=0))
        first_ms = (time.perf_counter() - t1) * 1000
        first_audio = audio.wav_info(first).seconds
        print("Cold (1 worker)")
        print(f"  pool start incl. warm-up            {started_ms:8.1f} ms")
        print(f"  first render after start            {first_ms:8.1f} ms for {first_audio:.2f} s of audio")
        print(f"  cold total per second of audio      {(started_ms + first_ms) / first_audio:8.1f} ms/s")

        warm_ms: list[float] = []
        per_audio_s: list[float] = []
        for n in range(1, misses + 1):
            t = time.perf_counter()
            path = await engine.render(SENTENCE.format(n=n))
            elapsed = (time.perf_counter() - t) * 1000
            warm_ms.append(elapsed)
            per_audio_s.append(elapsed / audio.wav_info(path).seconds)
        print("\nWarm misses (1 worker, sequential; normalize + synth + soxr + atomic write + sidecar)")
        print(row("render() miss", warm_ms))
        print(row("per second of audio", per_audio_s, "ms/s"))

        hit_ms: list[float] = []
        cached_ms: list[float] = []
        for n in range(1, misses + 1):
            text = SENTENCE.format(n=n)
            t = time.perf_counter()
            await engine.render(text)
            hit_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            engine.cached(text)
            cached_ms.append((time.perf_counter() - t) * 1000)
        print("\nCache hits")
        print(row("render() hit", hit_ms))
        print(row("cached()", cached_ms))
        await engine.close()

        # ---- throughput with 1 and 2 workers
        print(f"\nPool throughput: {burst} concurrent distinct misses")
        for workers in (1, 2):
            async with SpeechEngine(cache / f"pool{workers}", workers=workers, timeout=10.0) as pool_engine:
                texts = [SENTENCE.format(n=1000 * workers + i) for i in range(burst)]
                makespan, lag_ms, latencies, audio_s = await concurrent_misses(pool_engine, texts)
                print(
                    f"  {workers} worker(s): makespan {makespan * 1000:7.1f} ms, {burst / makespan:6.1f} renders/s, "
                    f"{audio_s / makespan:6.1f} s of audio per s, loop lag max {lag_ms:5.1f} ms"
                )
                print(row(f"  per-request latency ({workers} w)", latencies))

        # ---- recovery from a hang
        timeout = 1.0
        async with SpeechEngine(
            cache / "hang", workers=1, timeout=timeout, synth=synth_hanging_on_marker
        ) as hang_engine:
            t = time.perf_counter()
            try:
                await hang_engine.render("Sistem macet.")
            except SpeechUnavailable:
                pass
            failed_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            await hang_engine.render("Sistem kembali normal.", timeout=30.0)
            recovered_ms = (time.perf_counter() - t) * 1000
            print(f"\nHang recovery (timeout {timeout:.1f} s)")
            print(f"  caller got SpeechUnavailable after  {failed_ms:8.1f} ms")
            print(f"  next render (new pool) took         {recovered_ms:8.1f} ms")
            print(f"  health: {hang_engine.health()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--misses", type=int, default=40, help="sequential warm misses (and hits) to time")
    parser.add_argument("--burst", type=int, default=16, help="concurrent misses for the throughput test")
    args = parse_args(parser, {"misses": 8, "burst": 4})
    logging.basicConfig(level=logging.WARNING, format="  [log] %(levelname)s %(name)s: %(message)s")
    asyncio.run(bench(args.misses, args.burst))


if __name__ == "__main__":  # required: forkserver workers re-import the main module
    main()
