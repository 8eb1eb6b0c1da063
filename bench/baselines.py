"""Two FastAGI servers with no IVR logic, for comparison with ``ivr serve``.

Both send a fixed command sequence (the one ``ivr serve`` sent for the same
walk, captured by bench_calls.py), read one reply per command, then close:

- ``floor``: the least an asyncio FastAGI server can do: read the environment
  up to the blank line, write each command, read lines until a final status
  (a ``HANGUP`` line or a ``100`` is skipped), half-close, read to EOF.
- ``panoramisk``: panoramisk's own ``fast_agi.Application`` with a route that
  calls ``request.send_command`` for each command.

    .venv/bin/python bench/baselines.py floor --port 4600 --commands walk.txt

``walk.txt`` holds one command per line, exactly as sent on the wire. The
server prints ``ready`` once it listens and serves until it is terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from panoramisk.fast_agi import Application


async def serve_floor(port: int, commands: list[bytes]) -> asyncio.Server:
    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline() not in (b"\n", b""):
                pass
            for command in commands:
                writer.write(command)
                await writer.drain()
                while True:
                    line = await reader.readline()
                    if not line or not (line == b"HANGUP\n" or line.startswith(b"100")):
                        break
                if not line:
                    break
            writer.write_eof()
            while await reader.read(4096):
                pass
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(session, "127.0.0.1", port, backlog=4096)


async def serve_panoramisk(port: int, commands: list[bytes], script: str) -> asyncio.Server:
    texts = [command.decode().rstrip("\n") for command in commands]

    async def walk(request: object) -> None:
        for text in texts:
            await request.send_command(text)  # type: ignore[attr-defined]

    application = Application()
    application.add_route(script, walk)
    return await asyncio.start_server(application.handler, "127.0.0.1", port, backlog=4096)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["floor", "panoramisk"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--commands", type=Path, required=True, help="one command per line, as sent on the wire")
    parser.add_argument("--script", default="main", help="the agi_network_script the calls ask for")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    commands = [line + b"\n" for line in args.commands.read_bytes().splitlines() if line]
    if args.kind == "floor":
        server = await serve_floor(args.port, commands)
    else:
        server = await serve_panoramisk(args.port, commands, args.script)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
