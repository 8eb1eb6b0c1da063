"""``ivr serve`` as a process, stopped the way systemd and Docker stop it:
SIGTERM while a call is in progress. New calls are refused, the call in
progress finishes, the web app and its health check answer until it has, then
the process exits 0 with a last log line."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from ivr.simulator import place_call


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _until_healthy(url: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            assert process.returncode is None, "ivr serve exited during start-up"
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("ivr serve did not start")


async def test_sigterm_drains_the_call_with_the_web_app_still_up(
    tmp_path: Path, database_url: str, shared_recordings: Path
) -> None:
    agi_port, http_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "IVR_DATABASE_URL": database_url,
        "IVR_MIGRATE_ON_START": "false",  # the fixture's database has its schema
        "IVR_DATA_DIR": str(tmp_path / "data"),
        "IVR_RECORDINGS_DIR": str(shared_recordings),
        "IVR_AGI_PORT": str(agi_port),
        "IVR_HTTP_PORT": str(http_port),
        "IVR_SHUTDOWN_GRACE_SECONDS": "30",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr", "serve", env=env, stdout=log, stderr=log
        )
        try:
            health = f"http://127.0.0.1:{http_port}/api/health"
            await _until_healthy(health, process)
            in_call, checked = asyncio.Event(), asyncio.Event()

            async def caller(prompt: object) -> str:
                in_call.set()
                await checked.wait()
                return "h"

            call = asyncio.create_task(place_call("127.0.0.1", agi_port, caller_id="081234567890", key_source=caller))
            await asyncio.wait_for(in_call.wait(), 30)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(1)
            async with aiohttp.ClientSession() as http, http.get(health) as response:
                assert response.status == 200  # still answering while the call drains
                assert (await response.json())["active_calls"] == 1
            try:
                await asyncio.open_connection("127.0.0.1", agi_port)
                raise AssertionError("a new call was accepted during the drain")
            except OSError:
                pass
            checked.set()
            record = await asyncio.wait_for(call, 30)
            assert record.hangup_by == "caller"
            assert await asyncio.wait_for(process.wait(), 30) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    output = log_path.read_text(errors="replace")
    assert output.rstrip().endswith("stopped"), output[-2000:]
