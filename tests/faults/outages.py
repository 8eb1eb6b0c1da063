"""Ways to take the database away from a running server, and give it back.

PostgreSQL: a TCP proxy between the server and PostgreSQL. ``cut()`` stops
listening (new connections are refused) and resets every open one, as when
the database host goes down; ``restore()`` listens on the same port again.
The shared PostgreSQL server itself is never touched.

SQLite has no connection to cut: every statement on its engines fails as if
the file had become unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.storage.database import companion_engines


class PostgresProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, not a polite close
        self._writers.clear()

    async def restore(self) -> None:
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        await self.cut()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream_writer}
        pumps = {
            asyncio.create_task(self._pump(reader, upstream_writer)),
            asyncio.create_task(self._pump(upstream_reader, writer)),
        }
        self._pumps |= pumps
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        self._pumps -= pumps
        for end in (writer, upstream_writer):
            self._writers.discard(end)
            end.transport.abort()

    @staticmethod
    async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()


class EngineOutage:
    """SQLite: every statement fails while cut, on the server's engine and on
    the companion engines that write the same file from a thread."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engines = [engine.sync_engine, *companion_engines(engine)]
        self.cut_now = False

    def _refuse(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        raise OperationalError(statement, params, ConnectionRefusedError("database unreachable (test)"))

    async def cut(self) -> None:
        if not self.cut_now:
            for engine in self.engines:
                event.listen(engine, "before_cursor_execute", self._refuse)
            self.cut_now = True

    async def restore(self) -> None:
        if self.cut_now:
            for engine in self.engines:
                event.remove(engine, "before_cursor_execute", self._refuse)
            self.cut_now = False

    async def close(self) -> None:
        await self.restore()
